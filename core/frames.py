"""The agent <-> backend websocket frame codec (runtime.md §1.5, §1.6), shared by both sides.

Why one module: the agent and the backend must agree byte for byte on how a
message is framed, and two copies of the rule had already drifted (one read
the message type as UTF-8, the other as ASCII). Pure functions, no I/O.

* Every message is ONE websocket message: ``<type>`` + ``"\\n"`` + ``<payload>``,
  split at the first newline. A message without a newline is invalid.
* The type is ASCII, surrounding whitespace ignored: every type of the protocol
  is an ASCII word, so anything else is a broken or foreign peer. Text messages
  are accepted too (a lenient peer might send them) and read as UTF-8 bytes.
* Payloads are compact JSON objects.
* A message over :data:`MAX_MESSAGE_BYTES` is refused (both sides also give the
  cap to their websocket layer).

Decoding is tolerant in the sense the protocol asks for: every problem is a
:class:`ProtocolError` whose ``reason`` is a short text, and the receiver logs it
and drops that one message (only an oversized message closes a connection, in
the websocket layer, since it cannot be skipped without being read).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "MAX_MESSAGE_BYTES",
    "MSG_CHECK_REQUEST",
    "MSG_ENTITY_CONFIG",
    "MSG_EVENT",
    "MSG_KEEPALIVE",
    "Frame",
    "ProtocolError",
    "decode_frame",
    "decode_json",
    "decode_payload",
    "encode_frame",
    "encode_json",
    "encode_json_frame",
]

MSG_KEEPALIVE: Final = "keepalive"
MSG_EVENT: Final = "event"
MSG_CHECK_REQUEST: Final = "check_request"
MSG_ENTITY_CONFIG: Final = "entity_config"

#: Largest message either side accepts. Sensu Go sets no read limit on the agent socket and
#: leaves the size of results to ``max_output_size``; 16 MiB keeps multi-MB outputs working
#: while bounding what one peer can make the other buffer (docs/agents.md).
MAX_MESSAGE_BYTES: Final = 16 << 20


class ProtocolError(ValueError):
    """The peer broke the agent protocol; ``reason`` says how, in a few words.

    A ``ValueError`` because it is one (bad input); ``reason`` is kept apart from
    ``str()`` so it can be used as a log field and a websocket close reason.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Frame:
    """One message: its type and its still-encoded payload."""

    type: str
    payload: bytes


def encode_frame(msg_type: str, payload: bytes) -> bytes:
    """``<type>\\n<payload>`` as one message; raises ``ValueError`` for an empty type or one with a newline."""
    if not msg_type or "\n" in msg_type:
        raise ValueError(f"invalid message type {msg_type!r}")
    return msg_type.encode("utf-8") + b"\n" + payload


def encode_json(doc: Any, *, ascii_only: bool = False) -> bytes:
    """Compact JSON bytes, as Go's encoder writes them.

    ``ascii_only`` escapes non-ASCII characters (``\\u00e9``): what the backend
    has always sent, kept so its frames stay byte-identical; the agent sends
    UTF-8. Both are the same JSON to any decoder.
    """
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=ascii_only).encode("utf-8")


def encode_json_frame(msg_type: str, body: Any) -> bytes:
    """``<type>\\n<compact JSON>``, non-ASCII escaped: the one encoding the backend sends."""
    return encode_frame(msg_type, encode_json(body, ascii_only=True))


def decode_frame(message: bytes | str, *, max_bytes: int = MAX_MESSAGE_BYTES) -> Frame:
    """Split a received message at its first newline; raises :class:`ProtocolError`.

    The size cap is enforced here as well as in the websocket layer, so the
    rule holds whatever the transport.
    """
    raw = message.encode("utf-8") if isinstance(message, str) else bytes(message)
    if len(raw) > max_bytes:
        raise ProtocolError(f"message of {len(raw)} bytes exceeds the {max_bytes}-byte limit")
    head, sep, payload = raw.partition(b"\n")
    if not sep:
        raise ProtocolError("malformed frame: no newline after the message type")
    try:
        msg_type = head.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ProtocolError("malformed frame: message type is not ASCII") from None
    if not msg_type:
        raise ProtocolError("malformed frame: empty message type")
    return Frame(msg_type, payload)


def decode_json(payload: bytes, msg_type: str) -> dict[str, Any]:
    """The JSON object in a ``msg_type`` message's payload; raises :class:`ProtocolError` for anything else.

    Absurdly deep nesting (``RecursionError``) is bad input like any other.
    """
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise ProtocolError(f"invalid JSON in {msg_type} message: {type(exc).__name__}: {exc}") from None
    if not isinstance(body, dict):
        raise ProtocolError(f"{msg_type} payload is not a JSON object")
    return body


def decode_payload(frame: Frame) -> dict[str, Any]:
    """The frame's JSON object; raises :class:`ProtocolError` for anything else."""
    return decode_json(frame.payload, frame.type)
