"""agentd: the agent listener on ``agent-host:agent-port`` (runtime.md §1.1-§1.4).

Why a hand-rolled front on plain trio streams rather than hypercorn: memory
per idle agent. A bare trio-websocket connection costs about 19 KB; hypercorn
adds an ASGI scope, protocol objects and more tasks per connection. Our
target is under 40 KB per idle session (docs/performance.md), so we read the
HTTP request head ourselves and then either

* answer ``GET /health`` / ``GET /ready`` (and refusals, 404s) with a small
  ``Connection: close`` HTTP response, or
* run the §1.3 checks on the upgrade request and, if they pass, hand the
  stream (with the bytes already read replayed first) to trio-websocket,
  accept with the §1.4 response headers (JSON only) and run a
  :class:`~backend.agentd.session.Session`.

Resource handling: the listeners are opened (and the port bound) before
``task_status.started()``, so a taken port fails the node's start with a
one-line error naming ``agent-port``. Every connection runs in the daemon's
nursery; cancelling the daemon closes every session with 1001 ``bye``.

Error handling: a client that sends no complete request head within the
handshake timeout (15 s), or garbage, is disconnected; TLS handshake errors
end that connection only. Nothing a client sends can crash the daemon.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, Final

import trio
from trio_websocket import ConnectionClosed, HandshakeError, wrap_server_stream

from backend.config import BackendConfig
from core.event_processing import EventProcessor
from core.frames import MAX_MESSAGE_BYTES, ProtocolError
from cluster.errors import StoreError
from cluster.store import Store

from .auth import AgentAuthenticator, HandshakeRefused
from .fanout import Fanout
from .protocol import (
    MAX_HEAD_BYTES,
    RESPONSE_HEADERS,
    Handshake,
    HttpRequest,
    http_response,
    parse_handshake,
    parse_request_head,
)
from .intake import IntakeGate
from .session import KeepaliveHandler, Session, SessionServices
from .workers import ShardedWorkers

__all__ = ["AgentListenError", "Agentd", "HANDSHAKE_TIMEOUT_S"]

logger = logging.getLogger(__name__)

#: Read deadline for the upgrade request (runtime.md §1.1).
HANDSHAKE_TIMEOUT_S: Final = 15.0
#: Messages buffered between trio-websocket's reader and the session: one keeps
#: TCP backpressure on a flooding agent instead of growing memory.
WS_MESSAGE_QUEUE: Final = 1
#: Bytes of agent events a node holds between the socket and the end of their pipeline (with
#: ``eventd-buffer-size`` as the count): a few 16 MiB messages, or ~70,000 typical 1 KB results.
EVENT_INTAKE_MAX_BYTES: Final = 64 * 1024 * 1024
#: The same for keepalives (``keepalived-buffer-size`` as the count).
KEEPALIVE_INTAKE_MAX_BYTES: Final = 32 * 1024 * 1024
#: Receive buffer asked for on agent connections (the kernel doubles it, and no longer autotunes it
#: up to megabytes): what an agent can have in flight in our kernel while its session is not reading,
#: so a keepalive sent behind a backlog waits behind at most this much (docs/agents.md, "Overload").
AGENT_SOCKET_RCVBUF: Final = 32 * 1024

HealthFn = Callable[[], Awaitable[tuple[dict[str, Any], int]]]


class AgentListenError(Exception):
    """The agent port could not be opened; ``str()`` is one line naming ``agent-port``."""


class _ReplayStream(trio.abc.Stream):
    """A stream whose first bytes come from a buffer (the request head we already read).

    Why: we must read the head to route ``/health`` and to check
    credentials before trio-websocket exists, but wsproto wants to parse the
    same head itself.
    """

    __slots__ = ("_stream", "_buffer")

    def __init__(self, stream: trio.abc.Stream, buffered: bytes) -> None:
        self._stream = stream
        self._buffer = buffered

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._buffer:
            if max_bytes is None or max_bytes >= len(self._buffer):
                data, self._buffer = self._buffer, b""
            else:
                data, self._buffer = self._buffer[:max_bytes], self._buffer[max_bytes:]
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def send_eof(self) -> None:  # pragma: no cover - not used by wsproto
        if isinstance(self._stream, trio.abc.HalfCloseableStream):
            await self._stream.send_eof()


def _listen_host(host: str) -> str | None:
    """``[::]`` / ``::`` / empty mean every interface (both families), as Go's listener does."""
    host = host.strip()
    if host in ("", "[::]", "::", "*"):
        return None
    return host[1:-1] if host.startswith("[") and host.endswith("]") else host


def client_cert_cn(stream: trio.abc.Stream) -> str:
    """Common name of the client certificate TLS verified on ``stream``, or ``""``.

    With ``--trusted-ca-file`` the listener asks for a client certificate
    (optional) and the handshake fails on one the CA did not sign, so a
    non-empty result is an identity the CA vouches for.
    """
    if not isinstance(stream, trio.SSLStream):
        return ""
    try:
        cert = stream.getpeercert()
    except (ValueError, AttributeError):  # handshake not finished
        return ""
    for rdn in (cert or {}).get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                return str(value)
    return ""


def _ssl_context(config: BackendConfig) -> ssl.SSLContext | None:
    if not (config.cert_file and config.key_file):
        return None
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(config.cert_file, config.key_file)
    if config.trusted_ca_file:
        ctx.load_verify_locations(config.trusted_ca_file)
        ctx.verify_mode = ssl.CERT_OPTIONAL  # client certificates are accepted, not required
    return ctx


class Agentd:
    """The agent WebSocket listener and its fanout."""

    name = "agentd"

    def __init__(self, store: Store, config: BackendConfig, *, node: str, keepalives: KeepaliveHandler,
                 eventd: EventProcessor, health: HealthFn | None = None) -> None:
        self._store = store
        self._config = config
        self._node = node
        self._health = health
        self.fanout = Fanout(store, node=node)
        self.auth = AgentAuthenticator(store)
        self.keepalive_workers = ShardedWorkers("keepalived", workers=config.keepalived_workers,
                                                buffer=config.keepalived_buffer_size, node=node)
        self.event_workers = ShardedWorkers("eventd", workers=config.eventd_workers,
                                            buffer=config.eventd_buffer_size, node=node)
        # what a node holds of agent traffic, from the read to the end of processing (events: of the pipeline)
        self.event_gate = IntakeGate("event", max_items=config.eventd_buffer_size,
                                     max_bytes=EVENT_INTAKE_MAX_BYTES, node=node)
        self.keepalive_gate = IntakeGate("keepalive", max_items=config.keepalived_buffer_size,
                                         max_bytes=KEEPALIVE_INTAKE_MAX_BYTES, node=node)
        self.services = SessionServices(store=store, fanout=self.fanout, keepalives=keepalives,
                                        eventd=eventd, keepalive_workers=self.keepalive_workers,
                                        event_workers=self.event_workers, keepalive_gate=self.keepalive_gate,
                                        event_gate=self.event_gate, node=node,
                                        write_timeout=float(config.agent_write_timeout))
        self._serving_since: float | None = None
        self.listeners: list[trio.SocketListener | trio.SSLListener[trio.SocketStream]] = []
        self.stats = {"connections": 0, "refused": 0, "http": 0, "bad_requests": 0}

    @property
    def bind(self) -> str:
        return f"{self._config.agent_host}:{self._config.agent_port}"

    async def run(self, *, task_status: trio.TaskStatus[list[Any]] = trio.TASK_STATUS_IGNORED) -> None:
        """Bind, start the fanout, report ``started(listeners)``, serve until cancelled.

        Raises :class:`AgentListenError` before ``started()`` if the port cannot
        be bound or the TLS files cannot be loaded.
        """
        port = int(self._config.agent_port)
        host = _listen_host(self._config.agent_host)
        try:
            context = _ssl_context(self._config)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise AgentListenError(f"agent-port: cannot serve TLS on {self.bind}: {exc}") from exc
        try:
            tcp_listeners = await trio.open_tcp_listeners(port, host=host, backlog=4096)
        except OSError as exc:
            raise AgentListenError(f"agent-port: cannot listen on {self.bind}: {exc.strerror or exc}") from exc
        for tcp_listener in tcp_listeners:  # accepted connections inherit it (and size their window scale from it)
            tcp_listener.socket.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, AGENT_SOCKET_RCVBUF)
        # TLS as trio.open_ssl_over_tcp_listeners sets it up, over the listeners above
        listeners: list[trio.SocketListener | trio.SSLListener[trio.SocketStream]] = (
            list(tcp_listeners) if context is None
            else [trio.SSLListener(tcp_listener, context, https_compatible=True) for tcp_listener in tcp_listeners])
        self.listeners = listeners
        try:
            async with trio.open_nursery() as nursery:
                await nursery.start(self.auth.run)
                await nursery.start(self.keepalive_workers.run)
                await nursery.start(self.event_workers.run)
                await nursery.start(self.fanout.run)
                self._serving_since = trio.current_time()
                await nursery.start(trio.serve_listeners, self._handle_connection, listeners)
                logger.info("agentd listening", extra={"node": self._node, "address": self.bind,
                                                       "tls": context is not None})
                task_status.started(listeners)
        finally:
            for listener in listeners:
                with trio.CancelScope(shield=True):
                    await listener.aclose()

    def statistics(self) -> dict[str, Any]:
        return {**self.stats, **self.services.stats, **self.fanout.statistics(), **self.auth.stats,
                "keepalives_queued": self.keepalive_workers.queued(), "events_queued": self.event_workers.queued(),
                "event_intake": self.event_gate.statistics(), "keepalive_intake": self.keepalive_gate.statistics()}

    # ------------------------------------------------------------------ one connection

    async def _handle_connection(self, stream: trio.abc.Stream) -> None:
        self.stats["connections"] += 1
        try:
            accepted = await self._handshake(stream)
            if accepted is not None:
                await self._serve_session(stream, *accepted)
        except ProtocolError as exc:
            self.stats["bad_requests"] += 1
            logger.info("bad request on the agent port: %s", exc.reason, extra={"node": self._node})
            try:
                await stream.send_all(http_response(400, exc.reason + "\n"))
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError, ConnectionClosed,
                HandshakeError) as exc:
            logger.debug("agent connection broke: %s", exc, extra={"node": self._node})
        except Exception:  # one connection's bug must not stop every other agent's session
            logger.exception("agent connection failed", extra={"node": self._node})
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(1.0):
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError, ssl.SSLError):
                    pass

    async def _handshake(self, stream: trio.abc.Stream) -> tuple[bytes, Handshake] | None:
        """Read and answer the request head; returns what a session needs, or None when done.

        Plain HTTP requests and refused upgrades are answered here. Raises
        :class:`ProtocolError` for a malformed head.
        """
        with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
            head, buffered = await self._read_head(stream)
            request = parse_request_head(head)
            if not request.is_websocket_upgrade:
                self.stats["http"] += 1
                await stream.send_all(await self._http(request))
                return None
            hs = parse_handshake(request.headers)
            refusal = await self._check_upgrade(request, hs, client_cert_cn(stream))
            if refusal is not None:
                self.stats["refused"] += 1
                await stream.send_all(http_response(refusal.status, refusal.message + "\n"))
                return None
            return buffered, hs
        logger.info("agent connection sent no complete request within %.0fs", HANDSHAKE_TIMEOUT_S,
                    extra={"node": self._node})
        return None

    async def _read_head(self, stream: trio.abc.Stream) -> tuple[bytes, bytes]:
        """Read up to the blank line; returns (head, everything read so far)."""
        buffer = b""
        while True:
            end = buffer.find(b"\r\n\r\n")
            if end >= 0:
                return buffer[:end], buffer
            if len(buffer) > MAX_HEAD_BYTES:
                raise ProtocolError("request head too large")
            data = await stream.receive_some(4096)
            if not data:
                raise trio.BrokenResourceError("connection closed before the request head was complete")
            buffer += data

    async def _check_upgrade(self, request: HttpRequest, hs: Handshake,
                             cert_cn: str = "") -> HandshakeRefused | None:
        """§1.3 in order; returns the refusal to send, or None to accept."""
        extra = {"namespace": hs.namespace, "entity": hs.agent_name, "node": self._node, "user": hs.user}
        if request.path != "/":
            return HandshakeRefused(404, "404 page not found")
        if request.method != "GET" or not request.headers.get("sec-websocket-key"):
            return HandshakeRefused(400, "bad websocket upgrade request")
        wait = float(self._config.agent_serve_wait_time or 0)
        if wait and self._serving_since is not None and trio.current_time() - self._serving_since < wait:
            return HandshakeRefused(503, "agentd temporarily unavailable during startup")
        if not hs.agent_name:
            return HandshakeRefused(400, "missing Sensu-AgentName header")
        try:
            await self.auth.check(hs, client_cert_cn=cert_cn)
        except HandshakeRefused as refusal:
            logger.warning("agent handshake refused: %d %s", refusal.status, refusal.message, extra=extra)
            return refusal
        except StoreError as exc:
            logger.error("agent handshake failed on a store error: %s", exc, extra=extra)
            return HandshakeRefused(503, "backend store unavailable")
        return None

    async def _serve_session(self, stream: trio.abc.Stream, buffered: bytes, hs: Handshake) -> None:
        extra = {"namespace": hs.namespace, "entity": hs.agent_name, "node": self._node}
        async with trio.open_nursery() as nursery:
            with trio.move_on_after(HANDSHAKE_TIMEOUT_S) as scope:
                request = await wrap_server_stream(nursery, _ReplayStream(stream, buffered),
                                                   message_queue_size=WS_MESSAGE_QUEUE,
                                                   max_message_size=MAX_MESSAGE_BYTES)
                ws = await request.accept(extra_headers=list(RESPONSE_HEADERS))
            if scope.cancelled_caught:
                logger.warning("websocket upgrade did not complete", extra=extra)
                nursery.cancel_scope.cancel()
                return
            session = Session(self.services, ws, namespace=hs.namespace, agent_name=hs.agent_name,
                              subscriptions=hs.subscriptions)
            try:
                await session.run()
            finally:
                nursery.cancel_scope.cancel()

    # ------------------------------------------------------------------ plain HTTP

    async def _http(self, request: HttpRequest) -> bytes:
        if request.method not in ("GET", "HEAD"):
            return http_response(405, "method not allowed\n")
        if request.path == "/health":
            if self._health is None:
                status = self._store.raft_status()
                return http_response(200 if status.has_quorum else 503,
                                     json.dumps({"Healthy": status.has_quorum}),
                                     content_type="application/json")
            try:
                body, status_code = await self._health()
            except StoreError as exc:
                return http_response(503, json.dumps({"message": str(exc)}), content_type="application/json")
            return http_response(status_code, json.dumps(body), content_type="application/json")
        if request.path == "/ready":
            ready = self._store.raft_status().has_quorum and self._serving_since is not None
            wait = float(self._config.agent_serve_wait_time or 0)
            if ready and wait and self._serving_since is not None:
                ready = trio.current_time() - self._serving_since >= wait
            return http_response(200 if ready else 503, "ready\n" if ready else "not ready\n")
        return http_response(404, "404 page not found\n")
