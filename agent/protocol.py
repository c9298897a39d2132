"""The agent side of the agent <-> backend wire protocol (runtime.md §1.2-§1.6).

Why a module of its own: framing and the handshake are the only things a Go
backend and this agent must agree on byte for byte, so they live in one small
pure module with no I/O, tested on their own.

* Every message is ONE binary websocket frame: ``<type>`` + ``"\\n"`` + ``<payload>``,
  split at the first newline. A frame without a newline is invalid.
* This agent speaks JSON only: it sends ``Accept: application/json`` and refuses a
  backend that answers with protobuf (``Content-Type: application/octet-stream``).
* A local close uses code 1001, reason ``bye``; a received 1001 is an orderly close.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_REASON",
    "CONTENT_JSON",
    "CONTENT_PROTOBUF",
    "MSG_CHECK_REQUEST",
    "MSG_ENTITY_CONFIG",
    "MSG_EVENT",
    "MSG_KEEPALIVE",
    "Frame",
    "ProtocolError",
    "decode_frame",
    "decode_json",
    "encode_frame",
    "encode_json",
    "handshake_headers",
    "negotiated_content_type",
]

MSG_KEEPALIVE: Final = "keepalive"
MSG_EVENT: Final = "event"
MSG_CHECK_REQUEST: Final = "check_request"
MSG_ENTITY_CONFIG: Final = "entity_config"

CONTENT_JSON: Final = "application/json"
CONTENT_PROTOBUF: Final = "application/octet-stream"

CLOSE_GOING_AWAY: Final = 1001
CLOSE_REASON: Final = "bye"


class ProtocolError(ValueError):
    """A frame or handshake answer this agent cannot use; the message says why."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded message: its type and the raw payload bytes."""

    type: str
    payload: bytes


def encode_frame(msg_type: str, payload: bytes) -> bytes:
    """``<type>\\n<payload>`` as one binary message; the type must not contain a newline."""
    if not msg_type or "\n" in msg_type:
        raise ValueError(f"invalid message type {msg_type!r}")
    return msg_type.encode("utf-8") + b"\n" + payload


def decode_frame(message: bytes | str) -> Frame:
    """Split a received message at its first newline; raises :class:`ProtocolError`.

    Text frames are accepted too (a lenient peer might send them) and read as UTF-8.
    """
    data = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    head, sep, payload = data.partition(b"\n")
    if not sep:
        raise ProtocolError("invalid frame: no newline after the message type")
    try:
        msg_type = head.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("invalid frame: message type is not UTF-8") from None
    if not msg_type:
        raise ProtocolError("invalid frame: empty message type")
    return Frame(msg_type, payload)


def encode_json(doc: Mapping[str, Any]) -> bytes:
    """Compact UTF-8 JSON, as Go's encoder writes it."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def decode_json(payload: bytes) -> dict[str, Any]:
    """A JSON object payload; raises :class:`ProtocolError` for anything else."""
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise ProtocolError(f"invalid JSON payload: {exc}") from None
    if not isinstance(doc, dict):
        raise ProtocolError("invalid payload: expected a JSON object")
    return doc


def handshake_headers(
    *,
    namespace: str,
    agent_name: str,
    subscriptions: Iterable[str],
    user: str,
    password: str,
    client_cert: bool = False,
) -> list[tuple[bytes, bytes]]:
    """The upgrade request headers of runtime.md §1.2, in order.

    With a client certificate the agent authenticates by TLS, so ``Sensu-User``
    and ``Authorization`` are omitted. ``Accept`` asks for JSON, which a JSON-only
    backend (and a Go backend) then uses.
    """
    headers = [
        (b"Sensu-Namespace", namespace.encode("utf-8")),
        (b"Sensu-AgentName", agent_name.encode("utf-8")),
    ]
    if not client_cert:
        credentials = base64.b64encode(f"{user}:{password}".encode("utf-8"))
        headers.append((b"Sensu-User", user.encode("utf-8")))
        headers.append((b"Authorization", b"Basic " + credentials))
    headers.append((b"Sensu-Subscriptions", ",".join(s for s in subscriptions if s).encode("utf-8")))
    headers.append((b"Accept", CONTENT_JSON.encode("ascii")))
    return headers


def negotiated_content_type(response_headers: Iterable[tuple[bytes, bytes]]) -> str:
    """The encoding the backend chose (its ``Content-Type``), JSON when it says nothing.

    A 5.x backend sends no ``Content-Type``; that means JSON. Raises
    :class:`ProtocolError` when the backend picked protobuf, which this agent
    does not speak.
    """
    for name, value in response_headers:
        if name.lower() == b"content-type":
            content_type = value.decode("latin-1").split(";", 1)[0].strip().lower()
            if content_type == CONTENT_PROTOBUF:
                raise ProtocolError("backend chose protobuf (application/octet-stream); this agent speaks JSON only")
            return content_type or CONTENT_JSON
    return CONTENT_JSON
