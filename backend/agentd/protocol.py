"""The agent wire protocol (runtime.md §1), as pure functions: no I/O, no clock.

Why a module of its own: the session, the listener, the tests and the load
generator must agree byte for byte on frames, handshake headers and message
checks, and all of it is easier to trust when it can be unit-tested without a
socket.

* **Handshake** (§1.2-§1.4): the HTTP request head is parsed here
  (:func:`parse_request_head`), the Sensu headers read
  (:func:`parse_handshake`), and the response headers fixed
  (:data:`RESPONSE_HEADERS`). We speak JSON only, so we advertise only
  ``application/json``: a Go agent then never picks protobuf.
* **Framing** (§1.5): one binary WebSocket message is ``<type>\\n<payload>``;
  the codec, shared with the agent, is :mod:`core.frames`.
* **Messages** (§1.6): ``keepalive`` and ``event`` come in; ``check_request``
  and ``entity_config`` go out. Anything else inbound is a
  :class:`ProtocolError`: the session logs it (agent, type, reason) and drops
  that one message, as Sensu Go does, so one bad message from a newer or
  buggy agent never costs its other results.
* **Size** (:data:`core.frames.MAX_MESSAGE_BYTES`): Sensu Go sets no read
  limit on the agent socket and leaves the size of results to
  ``max_output_size``; we cap a message at 16 MiB (the same cap the agent
  applies to what it receives), so a 2 MB check output is stored whole while
  one agent still cannot make the backend buffer an unbounded message. A
  bigger message closes the connection (WebSocket 1009): it cannot be
  dropped without being read.

Every error is a :class:`ProtocolError` whose ``reason`` is a short human
text, used both in the log line and as the WebSocket close reason.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from core.frames import MSG_EVENT, MSG_KEEPALIVE, ProtocolError
from core.resources import Entity, Event, ValidationError, entity_subscription
from core.resources.entity import ENTITY_CLASS_AGENT, MANAGED_BY_LABEL

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_POLICY",
    "CLOSE_TOO_BIG",
    "CONTENT_TYPE_JSON",
    "CONTENT_TYPE_PROTOBUF",
    "HEADER_AGENT_NAME",
    "HEADER_NAMESPACE",
    "HEADER_SUBSCRIPTIONS",
    "HEADER_USER",
    "Handshake",
    "HttpRequest",
    "INBOUND_TYPES",
    "MAX_HEAD_BYTES",
    "NOT_FOUND_ENTITY_NAME",
    "RESPONSE_HEADERS",
    "close_reason",
    "entity_config_payload",
    "http_response",
    "parse_basic_auth",
    "parse_handshake",
    "parse_request_head",
    "session_subscriptions",
    "validate_agent_event",
]

INBOUND_TYPES: Final = frozenset({MSG_KEEPALIVE, MSG_EVENT})

#: Largest HTTP request head (request line + headers) accepted on the agent port.
MAX_HEAD_BYTES: Final = 16 * 1024

CONTENT_TYPE_JSON: Final = "application/json"
CONTENT_TYPE_PROTOBUF: Final = "application/octet-stream"

#: §1.4 response headers of a JSON-only backend: no ``application/octet-stream``.
RESPONSE_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"Accept", CONTENT_TYPE_JSON.encode()),
    (b"Content-Type", CONTENT_TYPE_JSON.encode()),
)

HEADER_NAMESPACE: Final = "sensu-namespace"
HEADER_AGENT_NAME: Final = "sensu-agentname"
HEADER_USER: Final = "sensu-user"
HEADER_SUBSCRIPTIONS: Final = "sensu-subscriptions"

#: ``metadata.name`` of the ``entity_config`` sent when no entity is stored (§1.8).
NOT_FOUND_ENTITY_NAME: Final = "not found"

CLOSE_GOING_AWAY: Final = 1001
CLOSE_POLICY: Final = 1008
CLOSE_TOO_BIG: Final = 1009

_REASONS: Final = {
    200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
    405: "Method Not Allowed", 408: "Request Timeout", 429: "Too Many Requests",
    431: "Request Header Fields Too Large", 500: "Internal Server Error", 503: "Service Unavailable",
}


# ---------------------------------------------------------------------------- HTTP head


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """A parsed HTTP/1.x request head; header names are lower case, repeats joined by ``, ``."""

    method: str
    target: str
    headers: Mapping[str, str]

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]

    @property
    def is_websocket_upgrade(self) -> bool:
        upgrade = self.headers.get("upgrade", "").lower()
        connection = self.headers.get("connection", "").lower()
        return "websocket" in upgrade and "upgrade" in connection


def parse_request_head(head: bytes) -> HttpRequest:
    """Parse ``head`` (everything before the blank line); raises :class:`ProtocolError`.

    Only what the agent port needs: the request line and the headers. Header
    values are decoded as latin-1, as HTTP/1.1 allows.
    """
    try:
        text = head.decode("latin-1")
    except UnicodeDecodeError:  # pragma: no cover - latin-1 decodes every byte
        raise ProtocolError("undecodable request head") from None
    lines = text.split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise ProtocolError("malformed HTTP request line")
    method, target, _version = parts
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if not line:
            continue
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise ProtocolError("malformed HTTP header line")
        key = name.lower()
        value = value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return HttpRequest(method=method, target=target, headers=headers)


def http_response(status: int, body: str = "", *, content_type: str = "text/plain; charset=utf-8",
                  extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """A complete ``Connection: close`` HTTP/1.1 response (used for refusals and /health).

    Go's ``http.Error`` ends the text with a newline; so do we, so agents and
    curl users see the same bytes.
    """
    payload = body.encode()
    lines = [
        f"HTTP/1.1 {status} {_REASONS.get(status, 'Unknown')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(payload)}",
        "Connection: close",
        *(f"{k}: {v}" for k, v in extra),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


# ---------------------------------------------------------------------------- handshake


@dataclass(frozen=True, slots=True)
class Handshake:
    """What an agent says about itself in the upgrade request (§1.2).

    ``credentials`` is ``None`` when there is no usable Basic ``Authorization``
    header. The password is kept only as long as the handshake object lives
    (it is never logged).
    """

    namespace: str
    agent_name: str
    user: str
    subscriptions: tuple[str, ...]
    accept: str
    credentials: tuple[str, str] | None

    def __repr__(self) -> str:  # never show the password
        return (f"Handshake(namespace={self.namespace!r}, agent_name={self.agent_name!r}, "
                f"user={self.user!r}, subscriptions={self.subscriptions!r})")


def parse_basic_auth(value: str) -> tuple[str, str] | None:
    """``Basic base64(user:password)`` -> ``(user, password)``; ``None`` if absent or unreadable."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic" or not token.strip():
        return None
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    user, sep, password = decoded.partition(":")
    if not sep:
        return None
    return user, password


def parse_handshake(headers: Mapping[str, str]) -> Handshake:
    """Read the Sensu headers of an upgrade request (lower-case names)."""
    subscriptions = tuple(s.strip() for s in headers.get(HEADER_SUBSCRIPTIONS, "").split(",") if s.strip())
    return Handshake(
        namespace=headers.get(HEADER_NAMESPACE, "").strip(),
        agent_name=headers.get(HEADER_AGENT_NAME, "").strip(),
        user=headers.get(HEADER_USER, "").strip(),
        subscriptions=subscriptions,
        accept=headers.get("accept", "").strip(),
        credentials=parse_basic_auth(headers.get("authorization", "")),
    )


def session_subscriptions(subscriptions: Iterable[str], agent_name: str) -> tuple[str, ...]:
    """Subscriptions a session listens on: the given ones (empties dropped, first
    occurrence kept) plus ``entity:<agent>`` (§1.8 step 2)."""
    seen: dict[str, None] = {}
    for sub in subscriptions:
        if sub:
            seen.setdefault(sub, None)
    seen.setdefault(entity_subscription(agent_name), None)
    return tuple(seen)


# ---------------------------------------------------------------------------- close


def close_reason(text: str) -> str:
    """A WebSocket close reason: at most 123 UTF-8 bytes (RFC 6455 §5.5)."""
    raw = text.encode("utf-8")
    if len(raw) <= 123:
        return text
    return raw[:120].decode("utf-8", errors="ignore") + "..."


# ---------------------------------------------------------------------------- messages


def validate_agent_event(msg_type: str, body: Mapping[str, Any], *, namespace: str, agent_name: str) -> Event:
    """Decode and validate an inbound ``keepalive``/``event`` (§1.6).

    The session namespace is filled in where the agent left it empty; a
    different namespace is refused (the handshake authorized this agent for
    its namespace only). ``entity:<entity name>`` is added to the entity's
    subscriptions. A keepalive must carry a non-zero ``timestamp`` and an
    entity named after the agent. Raises :class:`ProtocolError`.
    """
    if msg_type not in INBOUND_TYPES:
        raise ProtocolError(f"unknown message type {msg_type!r}")
    try:
        event = Event.from_wire(body)
    except ValidationError as exc:  # WireTypeError is a ValidationError
        raise ProtocolError(f"invalid {msg_type}: {exc.reason}") from None
    for meta_ns in (event.metadata.namespace, event.entity.metadata.namespace if event.entity else ""):
        if meta_ns and meta_ns != namespace:
            raise ProtocolError(f"invalid {msg_type}: namespace {meta_ns!r} is not the session's {namespace!r}")
    event.metadata.namespace = namespace
    if event.entity is not None:
        event.entity.metadata.namespace = event.entity.metadata.namespace or namespace
        if msg_type == MSG_KEEPALIVE and event.entity.metadata.name != agent_name:
            raise ProtocolError(
                f"invalid keepalive: entity {event.entity.metadata.name!r} is not the agent {agent_name!r}")
    if event.check is not None and not event.check.metadata.namespace:
        event.check.metadata.namespace = namespace
    try:
        event.validate()
    except ValidationError as exc:
        raise ProtocolError(f"invalid {msg_type}: {exc.reason}") from None
    if msg_type == MSG_KEEPALIVE and event.timestamp == 0:
        raise ProtocolError("invalid keepalive: timestamp must be non-zero")
    assert event.entity is not None  # validate() guarantees it
    subs = list(event.entity.subscriptions or ())
    own = entity_subscription(event.entity.metadata.name)
    if own not in subs:
        subs.append(own)
    event.entity.subscriptions = subs
    return event


def entity_config_payload(entity: Entity | Mapping[str, Any] | None, namespace: str) -> dict[str, Any]:
    """The ``entity_config`` body (§1.6, §1.8), from an :class:`Entity` or its stored dict.

    ``None`` (no stored entity) yields the literal ``not found`` placeholder of
    class ``agent``, which tells the agent to keep its local definition. The
    ``sensu.io/managed_by`` label is stripped, as the reference does. Working
    on the stored dict lets a session compare configurations on every entity
    write (each keepalive writes ``last_seen``) without decoding the entity.
    """
    if entity is None:
        return {"metadata": {"name": NOT_FOUND_ENTITY_NAME, "namespace": namespace},
                "entity_class": ENTITY_CLASS_AGENT}
    data: Mapping[str, Any] = entity.to_store() if isinstance(entity, Entity) else entity
    meta_in = data.get("metadata") or {}
    meta: dict[str, Any] = {k: v for k, v in meta_in.items() if v and k in (
        "name", "namespace", "labels", "annotations", "created_by")}
    labels = {k: v for k, v in (meta_in.get("labels") or {}).items() if k != MANAGED_BY_LABEL}
    if labels:
        meta["labels"] = labels
    else:
        meta.pop("labels", None)
    return {
        "metadata": meta,
        "entity_class": data.get("entity_class") or ENTITY_CLASS_AGENT,
        "user": data.get("user") or "",
        "subscriptions": list(data.get("subscriptions") or []),
        "deregister": bool(data.get("deregister")),
        "deregistration": dict(data.get("deregistration") or {}),
        "keepalive_handlers": list(data.get("keepalive_handlers") or []),
        "redact": list(data.get("redact") or []),
    }
