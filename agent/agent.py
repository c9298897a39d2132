"""The composition root: one ``sensu-agent start`` process.

Start order (STYLE §3): the durable queue first (outermost, so it closes last
and holds its directory lock the whole time), then the first system-facts
gathering (so the first keepalive carries them), the local API (an address in
use is a one-line startup error), and finally the connection loop. Check
executions run in a nursery of their own that outlives connections.

Resource handling: SIGTERM/SIGINT cancel everything; the open websocket is
closed with 1001 ``bye``, running checks' process groups are killed, and the
queue keeps whatever was not sent yet for the next start.

Error handling: a startup failure (cache-dir locked or unwritable, API port in
use) becomes :class:`StartupError`, printed as one line with exit code 1.
Connection problems are never fatal: they are logged and retried with backoff.
"""

from __future__ import annotations

import logging
import signal
import ssl
import sys
import time
from typing import Final

import trio

from core.frames import encode_json
from core.logging import configure_logging, stop_logging
from core.resources.entity import Entity
from core.resources.event import Event

from .api import ApiBindError, serve_api
from .config import AgentConfig
from .entity import SYSTEM_REFRESH_S, EntityState, collect_system
from .executor import Executor, encode_event
from .queue import ORIGIN_API, ORIGIN_CHECK, EventQueue, QueueError, QueueFullError, open_event_queue
from .session import RateLimiter, Session
from .transport import Backoff, BackendPicker, ConnectError, ConnectionLost, build_ssl_context, open_connection

__all__ = ["Agent", "StartupError", "run"]

logger = logging.getLogger(__name__)

GRACE_S: Final = 5.0


class StartupError(Exception):
    """The agent could not start; ``str()`` is the one-line reason."""


class Agent:
    """The running agent: entity, queue, executor, API and connection loop."""

    def __init__(self, config: AgentConfig, *, ssl_context: ssl.SSLContext | None = None) -> None:
        self.config = config
        self.ssl_context = ssl_context
        self.entity = EntityState(config)
        self._queue: EventQueue | None = None
        self._connected = False
        self.connected_url: str | None = None
        self.connections = 0
        self.dropped_results = 0
        self._stop = trio.Event()
        self.api_limiter = RateLimiter(config.events_rate_limit, config.events_burst_limit)
        self.executor = Executor(
            agent_name=config.name,
            namespace=config.namespace,
            entity=self.entity.current,
            template_data=self.entity.template_data,
            deliver=self._deliver_check_result,
            env=config.process_env,
        )

    # --- what the API and the executor see -------------------------------------------

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def namespace(self) -> str:
        return self.config.namespace

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def queue(self) -> EventQueue:
        assert self._queue is not None, "agent is not running"
        return self._queue

    def now(self) -> int:
        return int(time.time())

    def agent_entity(self, now: int) -> Entity:
        return self.entity.current(now)

    async def enqueue_api_event(self, event: Event) -> None:
        await self.queue.put(encode_json(event.to_store()), ORIGIN_API)

    def metrics(self) -> dict[str, float]:
        stats = self.queue.statistics() if self._queue is not None else {}
        return {
            "connected": 1.0 if self._connected else 0.0,
            "connections_total": float(self.connections),
            "event_queue_events": float(stats.get("events", 0)),
            "event_queue_bytes": float(stats.get("bytes", 0)),
            "event_queue_max_events": float(stats.get("max_events", 0)),
            "event_queue_refused_total": float(stats.get("refused", 0)),
            "event_queue_sent_total": float(stats.get("sent", 0)),
            "check_results_dropped_total": float(self.dropped_results),
            "checks_in_progress": float(len(self.executor.in_progress())),
        }

    async def _deliver_check_result(self, event: Event) -> None:
        """Every check result goes through the durable queue (sent in order by the session)."""
        payload = encode_event(event)
        if payload is None:
            self.dropped_results += 1
            logger.error("dropping check result: it cannot be cut below the message size limit", extra={
                "entity": self.name, "check": event.check_name, "dropped_total": self.dropped_results})
            return
        try:
            await self.queue.put(payload, ORIGIN_CHECK)
        except QueueFullError as exc:
            self.dropped_results += 1
            logger.error("dropping check result: %s", exc, extra={
                "entity": self.name, "check": event.check_name, "dropped_total": self.dropped_results})
        except OSError as exc:
            self.dropped_results += 1
            logger.error("dropping check result: cannot write to cache-dir: %s", exc.strerror or exc, extra={
                "entity": self.name, "check": event.check_name, "dropped_total": self.dropped_results})

    # --- daemons ---------------------------------------------------------------------------

    async def _refresh_system(self) -> None:
        system = await trio.to_thread.run_sync(lambda: collect_system(strip_networks=self.config.strip_networks))
        self.entity.set_system(system)

    async def _refresh_system_loop(self) -> None:
        while True:
            await trio.sleep(SYSTEM_REFRESH_S)
            await self._refresh_system()

    def request_stop(self) -> None:
        """Ask the agent to stop gracefully: the session ends, the socket is closed
        with 1001 while its reader still runs, then everything else is cancelled."""
        self._stop.set()

    async def _connection_loop(self, checks: trio.Nursery) -> None:
        """Connect, run a session, and on any loss back off and try the next backend,
        until :meth:`request_stop`."""
        picker = BackendPicker(self.config.backend_url)
        backoff = Backoff(self.config.retry_min, self.config.retry_max, self.config.retry_multiplier)
        subscriptions = list(self.config.subscriptions)
        while not self._stop.is_set():
            url = picker.next()
            throttled = False
            try:
                async with open_connection(self.config, url, self.ssl_context, subscriptions) as connection:
                    backoff.reset()
                    self.connections += 1
                    self._connected = True
                    self.connected_url = url
                    logger.info("connected to backend", extra={"backend": url, "entity": self.name,
                                                                "namespace": self.namespace})
                    try:
                        await Session(self.config, connection, entity=self.entity, executor=self.executor,
                                      queue=self.queue, checks=checks, api_limiter=self.api_limiter,
                                      stop=self._stop).run()
                    finally:
                        self._connected = False
                        self.connected_url = None
            except ConnectError as exc:
                throttled = exc.throttled
                logger.warning("cannot connect to backend: %s", exc.reason, extra={"backend": url,
                                                                                   "entity": self.name})
            except ConnectionLost as exc:
                log = logger.info if exc.orderly else logger.warning
                log("disconnected from backend: %s", exc.reason, extra={"backend": url, "entity": self.name})
            if self._stop.is_set():
                break
            delay = backoff.next_delay(throttled=throttled)
            logger.debug("reconnecting in %.2fs", delay, extra={"entity": self.name})
            with trio.move_on_after(delay):
                await self._stop.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start everything, call ``task_status.started()``, run until :meth:`request_stop`
        (or cancelled).

        Raises :class:`StartupError` before ``started()``.
        """
        try:
            async with open_event_queue(self.config.cache_dir, max_events=self.config.cache_max_events,
                                        max_bytes=self.config.cache_max_bytes) as queue:
                self._queue = queue
                try:
                    await self._run(task_status)
                except* StartupError as group:
                    raise _first_leaf(group) from None  # one plain error for the caller, as trio's start()
                finally:
                    self._queue = None
        except QueueError as exc:
            raise StartupError(f"cache-dir: {exc}") from exc
        except OSError as exc:
            raise StartupError(f"cache-dir: cannot use {self.config.cache_dir}: {exc.strerror or exc}") from exc

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        await self._refresh_system()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._refresh_system_loop, name="agent system facts")
            if not self.config.disable_api:
                try:
                    await nursery.start(serve_api, self, self.config.api_host, self.config.api_port)
                except ApiBindError as exc:
                    raise StartupError(str(exc)) from exc
            async with trio.open_nursery() as checks:
                loop_done = trio.Event()

                async def connection_loop() -> None:
                    try:
                        await self._connection_loop(checks)
                    finally:
                        loop_done.set()

                checks.start_soon(connection_loop, name="agent connection")
                logger.info("sensu-agent started", extra={
                    "entity": self.name, "namespace": self.namespace, "backends": list(self.config.backend_url),
                    "api": None if self.config.disable_api else f"{self.config.api_host}:{self.config.api_port}",
                    "queued_events": len(self.queue)})
                task_status.started()
                await self._stop.wait()
                with trio.move_on_after(GRACE_S):
                    await loop_done.wait()
                checks.cancel_scope.cancel()  # running checks: their process groups are killed
            nursery.cancel_scope.cancel()
        logger.info("sensu-agent stopped", extra={"entity": self.name, "queued_events": len(self.queue)})


async def _serve_until_signal(agent: Agent) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                logger.info("received %s, stopping", signal.Signals(signum).name, extra={"entity": agent.name})
                agent.request_stop()
                nursery.cancel_scope.deadline = trio.current_time() + 2 * GRACE_S  # hard bound
                break


def _first_leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup):
        exc = exc.exceptions[0]
    return exc


def run(config: AgentConfig) -> int:
    """Run the agent until SIGTERM/SIGINT; returns the process exit code."""
    configure_logging(config.log_level)
    for key, reason in config.ignored_settings().items():
        logger.debug("%s: %s", key, reason, extra={"key": key, "source": config.source_of(key)})
    failure: list[str] = []
    try:
        ssl_context = build_ssl_context(config)
    except (OSError, ssl.SSLError) as exc:
        stop_logging()
        print(f"sensu-agent: TLS: cannot load trusted-ca-file/cert-file/key-file: {exc}", file=sys.stderr)
        return 1
    try:
        trio.run(_serve_until_signal, Agent(config, ssl_context=ssl_context))
    except* StartupError as group:
        failure.append(str(_first_leaf(group)))
    finally:
        stop_logging()
    if failure:
        print(f"sensu-agent: {failure[0]}", file=sys.stderr)
        return 1
    return 0
