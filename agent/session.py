"""One connection's life on the agent side (runtime.md §1.8).

On every (re)connect, in this order:

1. reset the per-check sequence counters and drop the adopted entity config;
2. read frames; ``check_request``\\ s are *ignored* (logged) until the first
   ``entity_config`` arrives or :data:`ENTITY_CONFIG_GATE_S` pass -- no wait
   with ``agent-managed-entity`` -- because a check must not run with an
   entity the backend is about to replace;
3. send a keepalive at once, then every ``keepalive-interval``;
4. drain the durable queue: send the oldest event, remove it only once it was
   written, repeat (API events at ``events-rate-limit``).

The heartbeat runs from the start. Any task losing the socket ends the session
with :class:`~agent.transport.ConnectionLost`; ``max-session-length`` ends it
normally. Check executions do not belong to the session (see
:mod:`agent.executor`), so a disconnect never kills a running check.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Final

import trio

from core.frames import (
    MSG_CHECK_REQUEST,
    MSG_ENTITY_CONFIG,
    MSG_EVENT,
    MSG_KEEPALIVE,
    ProtocolError,
    decode_json,
    encode_json,
)
from core.resources.errors import WireTypeError

from .config import AgentConfig
from .entity import EntityState
from .executor import Executor
from .keepalive import build_keepalive
from .queue import ORIGIN_API, EventQueue
from .transport import Connection, ConnectionLost

__all__ = ["ENTITY_CONFIG_GATE_S", "RateLimiter", "Session"]

logger = logging.getLogger(__name__)

ENTITY_CONFIG_GATE_S: Final = 10.0


class RateLimiter:
    """Token bucket: ``rate`` tokens per second, at most ``burst`` saved up; rate 0 = unlimited.

    Lives as long as the agent, so a reconnect does not hand out a fresh burst.
    """

    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self._tokens = float(self.burst)
        self._stamp: float | None = None

    async def acquire(self) -> None:
        """Wait until a token is available and take it."""
        if self.rate <= 0:
            return
        while True:
            now = trio.current_time()
            if self._stamp is not None:
                self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await trio.sleep((1 - self._tokens) / self.rate)


class Session:
    """Runs one established connection until it is lost or expires."""

    def __init__(
        self,
        config: AgentConfig,
        connection: Connection,
        *,
        entity: EntityState,
        executor: Executor,
        queue: EventQueue,
        checks: trio.Nursery,
        api_limiter: RateLimiter,
        stop: trio.Event | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.connection = connection
        self.entity = entity
        self.executor = executor
        self.queue = queue
        self.checks = checks
        self.api_limiter = api_limiter
        self._stop = stop if stop is not None else trio.Event()
        self._clock = clock
        self._rng = rng or random.Random()
        self._accept_checks = False
        self._got_entity_config = trio.Event()
        self._keepalive_sequence = 0
        self.events_sent = 0

    @property
    def accepting_checks(self) -> bool:
        return self._accept_checks

    def _log_extra(self, **more: object) -> dict[str, object]:
        return {"entity": self.config.name, "namespace": self.config.namespace,
                "backend": self.connection.url, **more}

    async def run(self) -> None:
        """Serve the connection; returns when ``max-session-length`` expires or ``stop`` is set.

        Raises :class:`ConnectionLost` (unwrapped) when the socket goes away.
        """
        self.executor.reset_sequences()
        self.entity.reset()
        lost: list[ConnectionLost] = []
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_loop, name="agent reader")
                nursery.start_soon(self.connection.heartbeat, float(self.config.backend_heartbeat_interval),
                                   self.config.effective_heartbeat_timeout, name="agent heartbeat")
                nursery.start_soon(self._stop_when_asked, nursery.cancel_scope, name="agent session stop")
                if self.config.max_session_length > 0:
                    nursery.start_soon(self._expire, nursery.cancel_scope, name="agent session timer")
                if not self.config.agent_managed_entity:
                    with trio.move_on_after(ENTITY_CONFIG_GATE_S) as gate:
                        await self._got_entity_config.wait()
                    if gate.cancelled_caught:
                        logger.warning("no entity_config within %gs; using the local entity definition",
                                       ENTITY_CONFIG_GATE_S, extra=self._log_extra())
                self._accept_checks = True
                await self.send_keepalive()
                nursery.start_soon(self._keepalive_loop, name="agent keepalives")
                nursery.start_soon(self._drain_queue, name="agent event sender")
        except* ConnectionLost as group:
            lost.extend(e for e in _leaves(group) if isinstance(e, ConnectionLost))
        finally:
            self._accept_checks = False
        if lost:
            raise lost[0]

    async def _stop_when_asked(self, scope: trio.CancelScope) -> None:
        await self._stop.wait()
        scope.cancel()

    async def _expire(self, scope: trio.CancelScope) -> None:
        """``max-session-length`` x (1 - U[0, 0.5)), so a fleet does not reconnect in lockstep."""
        length = self.config.max_session_length * (1 - self._rng.uniform(0, 0.5))
        await trio.sleep(length)
        logger.info("max-session-length reached; reconnecting", extra=self._log_extra())
        scope.cancel()

    # --- inbound -----------------------------------------------------------------------

    async def _read_loop(self) -> None:
        while True:
            frame = await self.connection.receive()
            if frame is None:
                continue
            if frame.type == MSG_ENTITY_CONFIG:
                self._on_entity_config(frame.payload)
            elif frame.type == MSG_CHECK_REQUEST:
                self._on_check_request(frame.payload)
            else:
                logger.warning("ignoring message of unknown type %r", frame.type, extra=self._log_extra())

    def _on_entity_config(self, payload: bytes) -> None:
        try:
            self.entity.adopt(decode_json(payload, MSG_ENTITY_CONFIG))
        except (ProtocolError, WireTypeError) as exc:
            logger.error("invalid entity_config from backend: %s", exc, extra=self._log_extra())
        self._got_entity_config.set()

    def _on_check_request(self, payload: bytes) -> None:
        try:
            doc = decode_json(payload, MSG_CHECK_REQUEST)
        except ProtocolError as exc:
            logger.error("invalid check_request from backend: %s", exc, extra=self._log_extra())
            return
        if not self._accept_checks:
            logger.warning("check request arrived before entity_config; dropped",
                           extra=self._log_extra(check=Executor.guard_key(doc.get("config") or {})
                                                 if isinstance(doc.get("config"), dict) else ""))
            return
        self.executor.try_start(self.checks, doc)

    # --- outbound ------------------------------------------------------------------------

    async def send_keepalive(self) -> None:
        self._keepalive_sequence += 1
        now = int(self._clock())
        event = build_keepalive(self.config, self.entity.current(now), sequence=self._keepalive_sequence, now=now)
        await self.connection.send(MSG_KEEPALIVE, encode_json(event.to_store()))
        logger.debug("sent keepalive", extra=self._log_extra(sequence=self._keepalive_sequence))

    async def _keepalive_loop(self) -> None:
        while True:
            await trio.sleep(self.config.keepalive_interval)
            await self.send_keepalive()

    async def _drain_queue(self) -> None:
        """Send queued events oldest first; an event leaves the queue only once written."""
        while True:
            item = await self.queue.wait_oldest()
            if item.origin == ORIGIN_API:
                await self.api_limiter.acquire()
            payload = await self.queue.read(item)
            if payload is None:
                continue
            await self.connection.send(MSG_EVENT, payload)
            await self.queue.remove(item)
            self.events_sent += 1


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        out: list[BaseException] = []
        for inner in exc.exceptions:
            out.extend(_leaves(inner))
        return out
    return [exc]
