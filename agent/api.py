"""The agent's local HTTP API on ``api-host:api-port`` (runtime.md §2.6).

Routes: ``POST /events`` (202 queued, 400 invalid, 413 too large, 503 queue
full), ``GET /healthz`` (200 ``ok`` while connected to a backend, else 503
``sensu backend unavailable``), ``GET /version`` (``{"version": ...}``) and
``GET /metrics`` (Prometheus text: queue and connection gauges).

Why a minimal server on ``h11`` rather than hypercorn + quart-trio: the agent
runs on every monitored host, serves four tiny routes on loopback and must
start fast and stay small; h11 (already installed with httpx, hypercorn and
wsproto) does the HTTP/1.1 parsing, and ~150 lines of trio serve it. Keep-alive
is supported; each request must arrive within :data:`REQUEST_TIMEOUT_S` and
bodies are limited to :data:`MAX_BODY_BYTES` (the backend's API limit).

The event rules live in :func:`prepare_api_event` (pure, unit-tested).
"""

from __future__ import annotations

import http
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import h11
import trio

from core.resources.entity import Entity
from core.resources.errors import ValidationError, WireTypeError
from core.resources.event import Event

from .queue import QueueFullError
from .version import AGENT_VERSION

__all__ = [
    "MAX_BODY_BYTES",
    "REQUEST_TIMEOUT_S",
    "ApiBackend",
    "ApiBindError",
    "Response",
    "handle_request",
    "prepare_api_event",
    "serve_api",
]

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 512000
REQUEST_TIMEOUT_S: Final = 15.0
UNAVAILABLE: Final = "sensu backend unavailable"


class ApiBindError(Exception):
    """The API could not listen; ``str()`` names the flag and the address."""


class ApiBackend(Protocol):
    """What the API needs from the agent."""

    @property
    def name(self) -> str: ...

    @property
    def namespace(self) -> str: ...

    @property
    def connected(self) -> bool: ...

    def agent_entity(self, now: int) -> Entity: ...

    def now(self) -> int: ...

    async def enqueue_api_event(self, event: Event) -> None:
        """Queue durably; raises ``QueueFullError`` or ``OSError``."""
        ...

    def metrics(self) -> dict[str, float]: ...


@dataclass(frozen=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def _text(status: int, text: str) -> Response:
    return Response(status, (text + "\n").encode() if text else b"")


def _json(status: int, doc: Any) -> Response:
    return Response(status, json.dumps(doc).encode(), "application/json")


# ---------------------------------------------------------------------------------
# POST /events
# ---------------------------------------------------------------------------------


def prepare_api_event(doc: Any, *, agent_entity: Entity, namespace: str, agent_name: str, now: int,
                      new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> Event:
    """Turn a posted event into the one the agent forwards (runtime.md §2.6).

    Fills ``metadata.namespace`` (always the agent's), ``timestamp``,
    ``check.interval`` (1 if 0), ``check.executed``, ``processed_by`` and a new
    ``id``. An entity named after another host becomes ``check.proxy_entity_name``
    and the agent's own entity is used. Raises ``WireTypeError`` or
    ``ValidationError`` (both mean 400).
    """
    if not isinstance(doc, dict):
        raise WireTypeError("", "expected a JSON object")
    event = Event.from_wire(doc)
    if event.check is None and event.metrics is None:
        raise ValidationError("check", "must have check or metrics", verbatim=True)
    foreign = event.entity.metadata.name if event.entity is not None else ""
    event.entity = agent_entity
    event.metadata.namespace = namespace
    if event.timestamp == 0:
        event.timestamp = now
    event.id = new_id()
    if event.check is not None:
        check = event.check
        if foreign and foreign != agent_name and not check.proxy_entity_name:
            check.proxy_entity_name = foreign
        check.metadata.namespace = namespace
        if check.interval == 0:
            check.interval = 1
        if check.executed == 0:
            check.executed = now
        check.processed_by = agent_name
    event.validate()
    return event


# ---------------------------------------------------------------------------------
# Routing
# ---------------------------------------------------------------------------------


async def handle_request(backend: ApiBackend, method: str, target: str, body: bytes) -> Response:
    """Route one request; never raises for a client mistake."""
    path = target.split("?", 1)[0]
    if path == "/events":
        if method != "POST":
            return Response(405, b"method not allowed\n", headers=(("Allow", "POST"),))
        return await _post_event(backend, body)
    if path == "/healthz":
        if method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers=(("Allow", "GET"),))
        return _text(200, "ok") if backend.connected else _text(503, UNAVAILABLE)
    if path == "/version":
        if method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers=(("Allow", "GET"),))
        return _json(200, {"version": AGENT_VERSION})
    if path == "/metrics":
        if method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", headers=(("Allow", "GET"),))
        lines = []
        for key, value in sorted(backend.metrics().items()):
            lines.append(f"# TYPE sensu_agent_{key} gauge\nsensu_agent_{key} {value:g}")
        return Response(200, ("\n".join(lines) + "\n").encode(), "text/plain; version=0.0.4")
    return _text(404, "not found")


async def _post_event(backend: ApiBackend, body: bytes) -> Response:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _text(400, f"invalid JSON: {exc}")
    now = backend.now()
    try:
        event = prepare_api_event(doc, agent_entity=backend.agent_entity(now), namespace=backend.namespace,
                                  agent_name=backend.name, now=now)
    except (WireTypeError, ValidationError) as exc:
        logger.info("rejected event from the agent API: %s", exc, extra={"entity": backend.name})
        return _text(400, f"invalid event: {exc}")
    try:
        await backend.enqueue_api_event(event)
    except QueueFullError as exc:
        logger.error("refused event from the agent API: %s", exc,
                     extra={"entity": backend.name, "check": event.check_name})
        return Response(503, f"{exc}\n".encode(), headers=(("Retry-After", "10"),))
    except OSError as exc:
        logger.error("cannot queue event from the agent API: %s", exc,
                     extra={"entity": backend.name, "check": event.check_name})
        return _text(503, f"cannot queue event: {exc.strerror or exc}")
    logger.debug("queued event from the agent API", extra={"entity": backend.name, "check": event.check_name})
    return Response(202)


# ---------------------------------------------------------------------------------
# The HTTP/1.1 server
# ---------------------------------------------------------------------------------


_REASONS: Final = {s.value: s.phrase.encode() for s in http.HTTPStatus}


class _BodyTooLarge(Exception):
    pass


async def _next_event(conn: h11.Connection, stream: trio.SocketStream) -> Any:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await stream.receive_some(65536))
            continue
        return event


async def _send(conn: h11.Connection, stream: trio.SocketStream, response: Response, *, head: bool) -> None:
    headers = [("Content-Type", response.content_type), ("Content-Length", str(len(response.body))),
               ("Server", f"sensu-agent/{AGENT_VERSION}"), *response.headers]
    reason = _REASONS.get(response.status, b"")
    await stream.send_all(conn.send(h11.Response(status_code=response.status, headers=headers, reason=reason)))
    if response.body and not head:
        await stream.send_all(conn.send(h11.Data(data=response.body)))
    await stream.send_all(conn.send(h11.EndOfMessage()))


Handler = Callable[[str, str, bytes], Awaitable[Response]]


async def _serve_connection(stream: trio.SocketStream, handler: Handler) -> None:
    """Serve requests on one connection until the client closes, errs or idles out."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    try:
        while True:
            response: Response | None = None
            method = ""
            with trio.move_on_after(REQUEST_TIMEOUT_S):
                event = await _next_event(conn, stream)
                if isinstance(event, h11.ConnectionClosed):
                    return
                assert isinstance(event, h11.Request)
                method = event.method.decode("ascii", errors="replace").upper()
                target = event.target.decode("utf-8", errors="replace")
                body = bytearray()
                try:
                    while True:
                        part = await _next_event(conn, stream)
                        if isinstance(part, h11.Data):
                            body.extend(part.data)
                            if len(body) > MAX_BODY_BYTES:
                                raise _BodyTooLarge
                        elif isinstance(part, h11.EndOfMessage):
                            break
                        else:
                            return
                except _BodyTooLarge:
                    response = _text(413, f"request body exceeds {MAX_BODY_BYTES} bytes")
                if response is None:
                    response = await handler(method, target, bytes(body))
            if response is None:  # timed out waiting for the request
                return
            await _send(conn, stream, response, head=method == "HEAD")
            if conn.our_state is h11.MUST_CLOSE or response.status == 413:
                return
            conn.start_next_cycle()
    except h11.RemoteProtocolError as exc:
        if conn.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            try:
                await _send(conn, stream, _text(exc.error_status_hint, f"bad request: {exc}"), head=False)
            except (h11.LocalProtocolError, trio.BrokenResourceError, trio.ClosedResourceError):
                pass
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.LocalProtocolError):
        pass
    finally:
        with trio.CancelScope(shield=True, deadline=trio.current_time() + 1):
            await stream.aclose()


async def serve_api(backend: ApiBackend, host: str, port: int, *,
                    task_status: trio.TaskStatus[list[trio.SocketListener]] = trio.TASK_STATUS_IGNORED) -> None:
    """Listen on ``host:port`` and serve until cancelled.

    ``task_status.started(listeners)`` is called once it is listening (so the
    caller learns the real port when ``port`` is 0). Raises
    :class:`ApiBindError` before ``started()`` when the address cannot be bound.
    Each connection is served in its own task; errors on one connection are
    logged and never stop the server.
    """
    try:
        listeners = await trio.open_tcp_listeners(port, host=host)
    except OSError as exc:
        raise ApiBindError(f"api-host/api-port: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    bound = [listener.socket.getsockname() for listener in listeners]
    logger.info("agent API listening", extra={"address": [f"{a[0]}:{a[1]}" for a in bound]})

    async def handler(method: str, target: str, body: bytes) -> Response:
        try:
            return await handle_request(backend, method, target, body)
        except Exception:  # a bug must cost one request, not the agent; logged with an id
            request_id = uuid.uuid4().hex[:12]
            logger.exception("agent API request failed", extra={"request_id": request_id, "path": target})
            return _text(500, f"internal error (request id {request_id})")

    async def serve_one(stream: trio.SocketStream) -> None:
        await _serve_connection(stream, handler)

    task_status.started(listeners)
    await trio.serve_listeners(serve_one, listeners)
