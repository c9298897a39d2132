"""Dialing the backend: websocket handshake, TLS, heartbeats, backoff and URL order.

Why these pieces (runtime.md §1.2, §1.7, §1.8):

* :func:`open_connection` performs the upgrade with the Sensu handshake headers
  under ``backend-handshake-timeout`` and refuses a backend that chose protobuf.
  A refused upgrade becomes :class:`ConnectError` carrying the HTTP status (401
  bad credentials, 403, 404 namespace, 429 throttled, 503 starting up) so the
  caller can log it and back off (429 doubles the backoff for that attempt).
* :class:`Connection` serialises writes (keepalives, events and the heartbeat
  share one socket) and sends one binary frame per message. Closing sends 1001
  ``bye``; a received 1001 is an orderly close.
* :meth:`Connection.heartbeat` pings every ``backend-heartbeat-interval`` and
  declares the connection dead when a pong does not come back within
  ``backend-heartbeat-timeout`` (the backend only answers pings) -- unless
  one of our writes is blocked meanwhile *and* the kernel sees the backend
  acknowledge us (no retransmission, no unanswered window probe): then the
  backend is alive and pushing back (it stops reading while it is
  overloaded, and our ping waits in the same stream behind what it has not
  read), so the connection is kept for up to :data:`BACKPRESSURE_MAX_S`.
  Giving up on it would lose every message already written to it: they have
  left our queue. A backend that vanished does not acknowledge, so it is
  still declared dead after ``backend-heartbeat-timeout``.
* :class:`Backoff` is exponential from ``retry-min`` by ``retry-multiplier`` up
  to ``retry-max`` and resets once a connection is established.
* :class:`BackendPicker` walks ``backend-url`` in a random permutation, then a
  new permutation, so a fleet spreads over backends and a dead backend is not
  retried before the others were tried.

Resource handling: :func:`open_connection` owns the TCP (or TLS) stream and
the nursery of trio-websocket's reader task; leaving the context closes the
websocket (1001), ends the task and closes the stream.
"""

from __future__ import annotations

import logging
import random
import socket
import ssl
import urllib.parse
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any, Final

import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    ConnectionTimeout,
    HandshakeError,
    WebSocketConnection,
    wrap_client_stream,
)

from core.frames import MAX_MESSAGE_BYTES, Frame, ProtocolError, decode_frame, encode_frame

from .config import AgentConfig
from .protocol import CLOSE_GOING_AWAY, CLOSE_REASON, handshake_headers, negotiated_content_type

__all__ = [
    "MAX_MESSAGE_BYTES",
    "Backoff",
    "BackendPicker",
    "ConnectError",
    "Connection",
    "ConnectionLost",
    "build_ssl_context",
    "open_connection",
]

logger = logging.getLogger(__name__)

CLOSE_TIMEOUT_S: Final = 2.0
#: How long a write may stay blocked (the backend not reading) before missing pongs end the connection.
BACKPRESSURE_MAX_S: Final = 600.0
"""How long a closing handshake may take before the socket is just dropped."""


class ConnectError(Exception):
    """The backend could not be reached or refused the upgrade.

    ``status`` is the HTTP status of a refused upgrade (None for network errors);
    ``str()`` is one line naming the URL and the reason.
    """

    def __init__(self, url: str, reason: str, status: int | None = None) -> None:
        super().__init__(url, reason, status)
        self.url = url
        self.reason = reason
        self.status = status

    @property
    def throttled(self) -> bool:
        """429: the backend asks agents to back off harder (§1.3)."""
        return self.status == 429

    def __str__(self) -> str:
        return f"{self.url}: {self.reason}"


class ConnectionLost(Exception):
    """An established connection ended; ``orderly`` when the backend closed with 1001."""

    def __init__(self, reason: str, *, orderly: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.orderly = orderly


# ---------------------------------------------------------------------------------
# Backoff and URL order
# ---------------------------------------------------------------------------------


class Backoff:
    """Exponential reconnect delays: ``retry-min`` x ``retry-multiplier`` up to ``retry-max``."""

    def __init__(self, minimum: float, maximum: float, multiplier: float) -> None:
        self.minimum = minimum
        self.maximum = maximum
        self.multiplier = multiplier
        self._current = minimum

    def next_delay(self, *, throttled: bool = False) -> float:
        """The delay before the next attempt, then grow. A 429 doubles it (and the
        bounds) for this attempt only, as the Go agent does."""
        delay = self._current
        if throttled:
            delay = min(delay * 2, self.maximum * 2)
        self._current = min(self._current * self.multiplier, self.maximum)
        return delay

    def reset(self) -> None:
        """A connection was established: the next failure starts from ``retry-min`` again."""
        self._current = self.minimum


class BackendPicker:
    """Cycles through backend URLs, each round a fresh random permutation.

    Consecutive rounds never start with the URL the previous round ended on when
    there is a choice, so a failed backend is not dialed twice in a row.
    """

    def __init__(self, urls: Sequence[str], rng: random.Random | None = None) -> None:
        if not urls:
            raise ValueError("at least one backend URL is required")
        self._urls = list(urls)
        self._rng = rng or random.Random()
        self._round: list[str] = []
        self._last: str | None = None

    def next(self) -> str:
        if not self._round:
            self._round = self._rng.sample(self._urls, len(self._urls))
            if len(self._round) > 1 and self._round[0] == self._last:
                self._round.append(self._round.pop(0))
        self._last = self._round.pop(0)
        return self._last


# ---------------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------------


def build_ssl_context(config: AgentConfig) -> ssl.SSLContext | None:
    """The client TLS context for ``wss://`` backends, or None when every URL is ``ws://``.

    Reads the CA bundle and client key pair, so it is called once at startup
    (synchronously, before the event loop) and bad files are a one-line error.
    Raises ``OSError`` or ``ssl.SSLError``.
    """
    if not any(url.startswith("wss://") for url in config.backend_url):
        return None
    context = ssl.create_default_context(cafile=config.trusted_ca_file or None)
    if config.insecure_skip_tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if config.cert_file and config.key_file:
        context.load_cert_chain(config.cert_file, config.key_file)
    return context


# ---------------------------------------------------------------------------------
# The connection
# ---------------------------------------------------------------------------------


def _tcp_socket(stream: trio.abc.Stream) -> Any:
    """The socket under a plain or TLS trio stream (None if there is none)."""
    if isinstance(stream, trio.SSLStream):
        stream = stream.transport_stream
    return getattr(stream, "socket", None)


def peer_acknowledges(sock: Any) -> bool:
    """Whether the kernel has nothing unacknowledged to retransmit and no unanswered window probe.

    Reads ``tcpi_retransmits`` and ``tcpi_probes`` (bytes 2 and 3 of Linux's
    ``struct tcp_info``): a live peer with a full receive buffer answers the
    zero-window probes, a vanished one answers nothing. False when unknown
    (no socket, no ``TCP_INFO``), which keeps the plain heartbeat rule.
    """
    if sock is None or not hasattr(socket, "TCP_INFO"):
        return False
    try:
        info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)
    except OSError:
        return False
    return len(info) >= 4 and info[2] == 0 and info[3] == 0


class Connection:
    """One established websocket to a backend: framed sends, receives, heartbeat."""

    def __init__(self, ws: WebSocketConnection, url: str, *, sock: Any = None) -> None:
        self.ws = ws
        self.url = url
        self._sock = sock  # the TCP socket under the websocket, to ask the kernel whether the peer acknowledges
        self._send_lock = trio.Lock()
        self._writing_since: float | None = None  # trio time a write started, while one is under way
        self.sent_messages = 0
        self.dead = False  # the peer stopped answering: closing politely would only wait

    async def send(self, msg_type: str, payload: bytes) -> None:
        """Write one frame; returns once it was handed to the socket.

        Raises :class:`ConnectionLost` when the connection is gone.
        """
        frame = encode_frame(msg_type, payload)
        async with self._send_lock:
            self._writing_since = trio.current_time()
            try:
                await self.ws.send_message(frame)
            except ConnectionClosed as exc:
                raise _lost(exc) from None
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise ConnectionLost(f"write failed: {exc}") from None
            finally:
                self._writing_since = None
        self.sent_messages += 1

    async def receive(self) -> Frame | None:
        """The next frame; None for a malformed one (logged and dropped, §1.5).

        Raises :class:`ConnectionLost` when the connection is gone.
        """
        try:
            message = await self.ws.get_message()
        except ConnectionClosed as exc:
            raise _lost(exc) from None
        try:
            return decode_frame(message)
        except ProtocolError as exc:
            logger.warning("dropping malformed message from backend: %s", exc, extra={"backend": self.url})
            return None

    async def heartbeat(self, interval: float, timeout: float) -> None:
        """Ping every ``interval`` s; raise :class:`ConnectionLost` if a pong takes over ``timeout`` s."""
        while True:
            await trio.sleep(interval)
            with trio.move_on_after(timeout) as scope:
                try:
                    await self.ws.ping()
                except ConnectionClosed as exc:
                    raise _lost(exc) from None
            if scope.cancelled_caught:
                since = self._writing_since
                if since is not None and trio.current_time() - since < BACKPRESSURE_MAX_S \
                        and peer_acknowledges(self._sock):
                    logger.info("no heartbeat answer within %gs, but the backend is not reading our messages "
                                "(backpressure): keeping the connection", timeout, extra={"backend": self.url})
                    continue
                self.dead = True
                raise ConnectionLost(f"no heartbeat answer within {timeout:g}s")

    async def aclose(self) -> None:
        """Close with 1001 ``bye``, bounded and shielded so it also runs while cancelled.

        A peer that stopped answering heartbeats gets no closing handshake: the
        caller closes the stream right after.
        """
        if self.dead:
            return
        with trio.CancelScope(shield=True, deadline=trio.current_time() + CLOSE_TIMEOUT_S):
            try:
                await self.ws.aclose(code=CLOSE_GOING_AWAY, reason=CLOSE_REASON)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                pass


def _lost(exc: ConnectionClosed) -> ConnectionLost:
    reason = exc.reason
    code = getattr(reason, "code", None)
    text = getattr(reason, "reason", None) or getattr(reason, "name", "")
    return ConnectionLost(f"connection closed ({code} {text})".strip(), orderly=code == CLOSE_GOING_AWAY)


@asynccontextmanager
async def open_connection(config: AgentConfig, url: str, ssl_context: ssl.SSLContext | None,
                          subscriptions: Sequence[str]) -> AsyncIterator[Connection]:
    """Dial ``url`` with the Sensu handshake and yield the :class:`Connection`.

    Raises :class:`ConnectError` when the backend cannot be reached, refuses the
    upgrade, does not answer within ``backend-handshake-timeout`` or insists on
    protobuf. Exceptions from the body pass through unwrapped. On exit the
    websocket is closed with 1001 ``bye`` and the TCP stream is closed -- also
    after a refused upgrade, which trio-websocket's own helpers leave open.
    """
    headers = handshake_headers(
        namespace=config.namespace,
        agent_name=config.name,
        subscriptions=subscriptions,
        user=config.user,
        password=config.password,
        client_cert=config.uses_client_cert,
    )
    host, port, host_header, resource, tls = _split_url(url)
    timeout = float(config.backend_handshake_timeout)
    stream: trio.abc.Stream | None = None
    try:
        with trio.fail_after(timeout):
            if tls:
                stream = await trio.open_ssl_over_tcp_stream(
                    host, port, ssl_context=ssl_context or ssl.create_default_context(), https_compatible=True)
                await stream.do_handshake()
            else:
                stream = await trio.open_tcp_stream(host, port)
    except BaseException as exc:
        if stream is not None:
            await trio.aclose_forcefully(stream)
        if isinstance(exc, trio.TooSlowError):
            raise ConnectError(url, f"handshake timed out after {timeout:g}s") from None
        if isinstance(exc, (OSError, trio.BrokenResourceError)):
            raise _connect_error(url, exc, timeout) from None
        raise
    assert stream is not None
    established = False
    try:
        async with trio.open_nursery() as nursery:
            try:
                with trio.fail_after(timeout):
                    ws = await wrap_client_stream(
                        nursery, stream, host_header, resource, extra_headers=headers,
                        message_queue_size=16, max_message_size=MAX_MESSAGE_BYTES)
            except trio.TooSlowError:
                raise ConnectError(url, f"handshake timed out after {timeout:g}s") from None
            connection = Connection(ws, url, sock=_tcp_socket(stream))
            try:
                try:
                    negotiated_content_type(ws.handshake_headers)
                except ProtocolError as exc:
                    raise ConnectError(url, str(exc)) from None
                established = True
                yield connection
            finally:
                await connection.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        raise _unwrap(group, url, timeout, established=established) from None
    finally:
        await trio.aclose_forcefully(stream)


def _split_url(url: str) -> tuple[str, int, str, str, bool]:
    """(host, port, Host header, resource, tls) of a normalized ``ws``/``wss`` URL."""
    parts = urllib.parse.urlsplit(url)
    tls = parts.scheme == "wss"
    host = parts.hostname or ""
    port = parts.port or (443 if tls else 80)
    shown = f"[{host}]" if ":" in host else host
    host_header = shown if port in (80, 443) else f"{shown}:{port}"
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return host, port, host_header, resource, tls


def _unwrap(group: BaseExceptionGroup[BaseException], url: str, timeout: float, *,
            established: bool) -> BaseException:
    """The one exception a caller should see from the connection's nursery.

    The websocket's reader task and the body share a nursery, so a refused
    upgrade (raised in the reader) or the body's own error arrive wrapped; the
    caller wants :class:`ConnectError` / :class:`ConnectionLost` as such. Pure
    cancellation is returned as the group, untouched, for trio to handle.
    """
    leaves: list[BaseException] = []

    def walk(exc: BaseException) -> None:
        if isinstance(exc, BaseExceptionGroup):
            for inner in exc.exceptions:
                walk(inner)
        else:
            leaves.append(exc)

    walk(group)
    errors = [e for e in leaves if not isinstance(e, trio.Cancelled)]
    if not errors:
        return group
    first = errors[0]
    if not established and isinstance(first, (HandshakeError, OSError, trio.BrokenResourceError)):
        return _connect_error(url, first, timeout)
    if isinstance(first, ConnectionClosed):
        return _lost(first)
    return first if len(errors) == 1 else group


def _connect_error(url: str, exc: BaseException, handshake_timeout: float) -> ConnectError:
    """One line saying why dialing ``url`` failed."""
    if isinstance(exc, ConnectionRejected):
        body = (exc.body or b"").decode("utf-8", errors="replace").strip()
        return ConnectError(url, f"upgrade refused with HTTP {exc.status_code}: {body or 'no reason given'}",
                            status=exc.status_code)
    if isinstance(exc, ConnectionTimeout):
        return ConnectError(url, f"handshake timed out after {handshake_timeout:g}s")
    cause = exc.__cause__ if isinstance(exc, (HandshakeError, trio.BrokenResourceError)) else exc
    if isinstance(cause, ssl.SSLError):
        return ConnectError(url, f"TLS error: {cause.reason or cause}")
    if isinstance(cause, OSError):
        return ConnectError(url, f"cannot connect: {cause.strerror or cause}")
    return ConnectError(url, f"handshake failed: {cause or exc}")
