"""The agent side of the agent <-> backend handshake (runtime.md §1.2-§1.4).

Why a module of its own: the handshake is, with the framing, what a Go backend
and this agent must agree on exactly, so it lives in one small pure module
with no I/O, tested on its own. The frame codec both sides share is
:mod:`core.frames`.

* This agent speaks JSON only: it sends ``Accept: application/json`` and refuses a
  backend that answers with protobuf (``Content-Type: application/octet-stream``).
* A local close uses code 1001, reason ``bye``; a received 1001 is an orderly close.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Final

from core.frames import ProtocolError

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_REASON",
    "CONTENT_JSON",
    "CONTENT_PROTOBUF",
    "handshake_headers",
    "negotiated_content_type",
]

CONTENT_JSON: Final = "application/json"
CONTENT_PROTOBUF: Final = "application/octet-stream"

CLOSE_GOING_AWAY: Final = 1001
CLOSE_REASON: Final = "bye"


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
