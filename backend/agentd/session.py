"""One connected agent: a receive loop, a bounded send queue, and its subscriptions.

Why this shape (and its memory): a backend holds thousands of idle agent
connections, so a session is one object with ``__slots__``, one task
receiving (plus trio-websocket's reader task) and one sender task draining a
bounded queue. Shared things (store, fanout, keepalived, counters) live in one
:class:`SessionServices` per node, not per session.

Inbound (runtime.md §1.6): each message is parsed and validated by
:mod:`.protocol`; a malformed frame, bad JSON, an invalid event or an
unknown type is **logged and dropped** (agent, type, reason) and the session
goes on, as in Sensu Go. Only an oversized message closes the connection
(1009: it cannot be skipped without reading it). A valid message first gets
room from the node's intake gate (:mod:`.intake`: events and keepalives each
have their own, bounded by count and bytes, held until the message is
finished), then goes to a bounded worker pool (:mod:`.workers`): keepalives
to keepalived, events to eventd's one door
(:class:`~core.event_processing.EventProcessor`), which stores them and hands
them to the pipeline. **While there is no room the session does not
read its socket**, however long that takes, so TCP pushes back on the agent
(backpressure; nothing read is dropped for lack of room). An event eventd
rejects is logged and the session continues; a store failure ends the
session (the agent reconnects).

Outbound: the fanout calls :meth:`Session.deliver_nowait`, which never
blocks it. The queue holds :data:`SEND_QUEUE_SIZE` messages; when it is full
the agent is too slow to keep up, so the request is dropped *and counted and
logged* and the session is closed, so the agent reconnects instead of
silently missing checks (STYLE §4: no silent loss).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final, Protocol

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from core.event_processing import EventProcessor
from core.frames import (
    MSG_ENTITY_CONFIG,
    MSG_KEEPALIVE,
    ProtocolError,
    decode_frame,
    decode_payload,
    encode_json_frame,
)
from core.resources import Event, ValidationError, keys
from core.resources.storage import decode_dict
from cluster.errors import StoreError
from cluster.store import Store

from .protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_POLICY,
    CLOSE_TOO_BIG,
    INBOUND_TYPES,
    close_reason,
    entity_config_payload,
    session_subscriptions,
    validate_agent_event,
)

from .intake import IntakeGate, Ticket
from .workers import ShardedWorkers

if TYPE_CHECKING:
    from .fanout import Fanout

__all__ = ["KeepaliveHandler", "SEND_QUEUE_SIZE", "Session", "SessionServices"]

logger = logging.getLogger(__name__)

#: Backend per-session request queue (runtime.md §10).
SEND_QUEUE_SIZE: Final = 100
#: How long a closing handshake may take before the socket is just dropped.
CLOSE_TIMEOUT_S: Final = 2.0
#: WebSocket close code an agent may use when it stops on purpose (1001 is the other).
CLOSE_NORMAL: Final = 1000
#: Close reason of a session ended by a store failure.
STORE_FAILURE: Final = "backend store unavailable"
#: Overload log lines (a session stops reading, messages shed) are written at most this often per node.
LOG_EVERY_S: Final = 10.0


class KeepaliveHandler(Protocol):
    """What a session needs from keepalived."""

    async def handle_keepalive(self, event: Event, *, received_at: float) -> None: ...

    async def agent_left(self, namespace: str, name: str) -> None: ...


@dataclass(slots=True)
class SessionServices:
    """Everything sessions share on one node (one object, not one per session)."""

    store: Store
    fanout: "Fanout"
    keepalives: KeepaliveHandler
    eventd: EventProcessor
    keepalive_workers: ShardedWorkers
    event_workers: ShardedWorkers
    keepalive_gate: IntakeGate
    event_gate: IntakeGate
    node: str
    write_timeout: float
    stats: dict[str, int] = field(default_factory=lambda: {
        "sessions_opened": 0, "sessions_closed": 0, "keepalives": 0, "events": 0, "events_rejected": 0,
        "protocol_errors": 0, "too_big": 0, "requests_sent": 0, "dropped": 0, "write_timeouts": 0,
        "store_errors": 0, "event_bytes_count": 0, "event_bytes_sum": 0,
    })
    #: when a "not reading" / "shed" line was last logged (trio clock), to log each at most every LOG_EVERY_S
    last_logged: dict[str, float] = field(default_factory=dict)

    def log_limited(self, what: str, msg: str, *args: Any, extra: dict[str, Any], level: int = logging.WARNING) -> None:
        """Log ``msg`` at most once per :data:`LOG_EVERY_S` per ``what`` on this node (overload is loud)."""
        now = trio.current_time()
        if now - self.last_logged.get(what, -math.inf) >= LOG_EVERY_S:
            self.last_logged[what] = now
            logger.log(level, msg, *args, extra=extra)


class Session:
    """One agent connection, from the accepted upgrade to the close."""

    __slots__ = ("services", "ws", "namespace", "agent_name", "subscriptions", "_send", "_recv", "_scope",
                 "_close", "_config_fingerprint", "_extra", "_agent_left")

    def __init__(self, services: SessionServices, ws: WebSocketConnection, *, namespace: str, agent_name: str,
                 subscriptions: tuple[str, ...]) -> None:
        self.services = services
        self.ws = ws
        self.namespace = namespace
        self.agent_name = agent_name
        self.subscriptions = session_subscriptions(subscriptions, agent_name)
        self._send, self._recv = trio.open_memory_channel[bytes](SEND_QUEUE_SIZE)
        self._scope: trio.CancelScope | None = None
        self._close: tuple[int, str] = (CLOSE_GOING_AWAY, "bye")
        self._agent_left = False
        self._config_fingerprint: dict[str, Any] | None = None
        self._extra = {"namespace": namespace, "entity": agent_name, "node": services.node}

    def __repr__(self) -> str:
        return f"Session({self.namespace}/{self.agent_name})"

    @property
    def key(self) -> tuple[str, str]:
        return self.namespace, self.agent_name

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        """Serve the agent until it disconnects, breaks the protocol, or the node stops.

        Cleanup: the session leaves the fanout, and the WebSocket is closed
        with the recorded code and reason (1001 ``bye`` normally), shielded
        and bounded by :data:`CLOSE_TIMEOUT_S`.
        """
        services = self.services
        services.stats["sessions_opened"] += 1
        entity = await self._load_entity()
        if entity is not None:  # §1.8 step 3: the stored entity is authoritative
            self.subscriptions = session_subscriptions(entity.get("subscriptions") or (), self.agent_name)
        services.fanout.register(self)
        logger.info("agent connected", extra={**self._extra, "subscriptions": list(self.subscriptions)})
        try:
            async with trio.open_nursery() as nursery:
                self._scope = nursery.cancel_scope
                if self._close != (CLOSE_GOING_AWAY, "bye"):  # closed (replaced, deleted) while starting
                    nursery.cancel_scope.cancel()
                self._queue_entity_config(entity)
                nursery.start_soon(self._sender)
                await self._receive_loop()
                nursery.cancel_scope.cancel()
        finally:
            services.fanout.unregister(self)
            services.stats["sessions_closed"] += 1
            self._send.close()
            code, reason = self._close
            with trio.CancelScope(shield=True), trio.move_on_after(CLOSE_TIMEOUT_S):
                await self.ws.aclose(code, close_reason(reason))
            logger.info("agent disconnected", extra={**self._extra, "close_code": code, "reason": reason})
        if self._agent_left:  # the agent said goodbye (its process is stopping): ephemeral ones go now
            try:
                await services.keepalives.agent_left(self.namespace, self.agent_name)
            except StoreError as exc:
                logger.warning("could not deregister the departed agent: %s", exc, extra=self._extra)

    def close_nowait(self, code: int, reason: str) -> None:
        """Ask the session to end (from the fanout or the sender); idempotent."""
        if self._close == (CLOSE_GOING_AWAY, "bye"):
            self._close = (code, reason)
        if self._scope is not None:
            self._scope.cancel()

    # ------------------------------------------------------------------ outbound

    def deliver_nowait(self, frame: bytes) -> bool:
        """Queue ``frame`` for the agent without blocking; False if it was not queued.

        A full queue means the agent does not keep up: the message is dropped,
        counted and logged, and the session is closed so the agent reconnects.
        """
        try:
            self._send.send_nowait(frame)
            return True
        except trio.WouldBlock:
            self.services.stats["dropped"] += 1
            logger.warning("agent send queue full (%d messages); dropping the message and disconnecting the "
                           "slow agent", SEND_QUEUE_SIZE, extra=self._extra)
            self.close_nowait(CLOSE_POLICY, "send queue full")
            return False
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            return False

    async def _sender(self) -> None:
        timeout = self.services.write_timeout
        async for frame in self._recv:
            with trio.move_on_after(timeout if timeout else math.inf) as scope:
                try:
                    await self.ws.send_message(frame)
                except ConnectionClosed:
                    return
            if scope.cancelled_caught:
                self.services.stats["write_timeouts"] += 1
                logger.warning("agent write timed out after %.0fs; disconnecting", timeout, extra=self._extra)
                self.close_nowait(CLOSE_POLICY, "write timeout")
                return
            self.services.stats["requests_sent"] += 1

    def _queue_entity_config(self, entity: dict[str, Any] | None) -> None:
        payload = entity_config_payload(entity, self.namespace)
        if payload == self._config_fingerprint:
            return
        self._config_fingerprint = payload
        self.deliver_nowait(encode_json_frame(MSG_ENTITY_CONFIG, payload))

    def on_entity_changed(self, entity: dict[str, Any] | None) -> None:
        """Live entity updates (§1.8), called by the fanout's entity watch.

        A deleted entity ends the session (the agent reconnects and
        re-registers). A changed configuration is sent as ``entity_config``
        and the session's subscriptions follow the stored ones; changes the
        agent does not see (``last_seen``, system facts) send nothing.
        """
        if entity is None:
            logger.info("entity deleted; closing the agent session", extra=self._extra)
            self.close_nowait(CLOSE_GOING_AWAY, "entity deleted")
            return
        subs = session_subscriptions(entity.get("subscriptions") or (), self.agent_name)
        if subs != self.subscriptions:
            self.services.fanout.update_subscriptions(self, subs)
        self._queue_entity_config(entity)

    async def _load_entity(self) -> dict[str, Any] | None:
        """The stored entity as a plain dict (decoding to :class:`Entity` is not needed here)."""
        kv = await self.services.store.get(keys.key_for("entities", self.namespace, self.agent_name))
        return decode_dict(kv.value) if kv is not None else None

    # ------------------------------------------------------------------ inbound

    async def _receive_loop(self) -> None:
        stats = self.services.stats
        while True:
            try:
                data = await self.ws.get_message()
            except ConnectionClosed as exc:
                reason = exc.reason
                if reason is not None and reason.code in (CLOSE_NORMAL, CLOSE_GOING_AWAY) \
                        and self._close == (CLOSE_GOING_AWAY, "bye"):
                    self._agent_left = True
                if reason is not None and reason.code == CLOSE_TOO_BIG:
                    stats["too_big"] += 1
                    logger.warning("closing agent connection: %s", reason.reason or "message too big",
                                   extra=self._extra)
                return
            received_at = time.time()
            read_at = trio.current_time()
            stats["event_bytes_count"] += 1
            stats["event_bytes_sum"] += len(data)
            msg_type = ""
            try:
                frame = decode_frame(data)
                msg_type = frame.type
                if frame.type not in INBOUND_TYPES:
                    raise ProtocolError(f"unknown message type {frame.type!r}")
                event = validate_agent_event(frame.type, decode_payload(frame), namespace=self.namespace,
                                             agent_name=self.agent_name)
            except ProtocolError as exc:
                # Sensu Go logs a message it cannot handle and goes on with the session: one
                # bad message (a newer agent's type, a buggy plugin's event) must not cost the
                # agent its connection and every result queued behind it.
                stats["protocol_errors"] += 1
                logger.warning("dropping invalid message from agent: %s", exc.reason,
                               extra={**self._extra, "agent": self.agent_name, "type": msg_type[:64],
                                      "reason": exc.reason})
                continue
            if not await self._handle(frame.type, event, received_at, len(data), read_at):
                return

    async def _handle(self, msg_type: str, event: Event, received_at: float, nbytes: int, read_at: float) -> bool:
        """Get room for one valid message, then hand it to its worker pool; waits as long as it takes.

        While this waits the session reads nothing more, so the agent's
        socket fills and TCP pushes back on it. Returns False when the
        session must end (a store failure reported by an earlier job). If
        the session ends while waiting, the message is counted as shed and
        logged: it was read, and will not be processed.
        """
        if self._close[1] == STORE_FAILURE:
            return False
        services = self.services
        keepalive = msg_type == MSG_KEEPALIVE
        gate = services.keepalive_gate if keepalive else services.event_gate
        pool = services.keepalive_workers if keepalive else services.event_workers
        check = event.check.proxy_entity_name + "/" + event.check_name if event.check is not None else ""
        key = f"{self.namespace}/{event.entity_name}/{check}"
        ticket = gate.acquire_nowait(nbytes, read_at)  # the common case: room, no wait set up
        queued = False
        try:
            if ticket is None:
                st = gate.statistics()
                services.log_limited(
                    "full:" + gate.name, "agentd %s intake full (%d messages, %d bytes in flight, %d sessions "
                    "waiting); not reading from those agents until some finish", gate.name, st["in_flight"],
                    st["in_flight_bytes"], st["waiting"] + 1,
                    extra={**self._extra, "agent": self.agent_name, "type": msg_type})
                ticket = await gate.acquire(nbytes, read_at)
            job = partial(self._process, msg_type, event, received_at, ticket)
            if not pool.submit_nowait(key, job):
                await pool.submit(key, job)
            queued = True
        finally:
            if not queued:
                if ticket is not None:
                    ticket.release()
                gate.shed()
                services.log_limited("shed:" + gate.name, "agent session ended with a %s read but not processed; "
                                     "it is lost (%d such so far on this node)", msg_type, gate.stats["shed"],
                                     extra={**self._extra, "agent": self.agent_name, "check": event.check_name})
        return True

    async def _process(self, msg_type: str, event: Event, received_at: float, ticket: Ticket) -> None:
        """Runs in a worker: keepalive processing, or the event into eventd (and on to the pipeline).

        The ticket's room is given back when the message is finished: for an
        event, by the pipeline once its handlers ran (it is handed over with
        the event), so the gate bounds everything between the socket and the
        handler; otherwise here.
        """
        stats = self.services.stats
        extra: dict[str, Any] = {**self._extra, "check": event.check_name}
        handed = False
        try:
            # agent traffic is throughput-first: its writes may wait a few ms to share Raft entries
            with self.services.store.lingering():
                if msg_type == MSG_KEEPALIVE:
                    stats["keepalives"] += 1
                    await self.services.keepalives.handle_keepalive(event, received_at=received_at)
                    ticket.finished()
                else:
                    stats["events"] += 1
                    # once this returns the pipeline owns the ticket and calls finished() after the handlers
                    await self.services.eventd.submit(event, now=int(received_at), done=ticket.finished)
                    handed = True
        except ValidationError as exc:
            stats["events_rejected"] += 1
            logger.warning("rejected %s from agent: %s", msg_type, exc.reason, extra=extra)
        except StoreError as exc:
            # only store failures end a session (runtime.md §1.6): the agent reconnects and resends
            stats["store_errors"] += 1
            logger.error("store error while handling %s; ending the session: %s", msg_type, exc, extra=extra)
            self.close_nowait(CLOSE_GOING_AWAY, STORE_FAILURE)
        finally:
            if not handed:
                ticket.release()  # a no-op once finished() ran
