"""``limit`` and ``continue`` for list requests (spec §1.8), with Go's token format.

A token is base64url without padding of ``<name>\\x00`` (one namespace) or
``<namespace>/<name>\\x00`` (all namespaces), meaning "resume after this key".  Event
names are ``<entity>/<check>``.  A token that does not decode is ignored (the list starts
from the beginning), as Go does.  While items remain the response carries
``Sensu-Continue: <token>``.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Final

from core.resources import keys
from core.resources.registry import ResourceType

__all__ = [
    "CONTINUE_HEADER",
    "UNLIMITED",
    "ContinueToken",
    "decode_continue",
    "encode_continue",
    "parse_limit",
    "start_key",
    "token_for",
]

UNLIMITED: Final = 0
"""``parse_limit`` result meaning "no limit"."""

CONTINUE_HEADER: Final = "Sensu-Continue"


def parse_limit(value: str | None) -> int:
    """The ``limit`` query parameter; missing, invalid, negative or 0 is :data:`UNLIMITED`."""
    if value is None:
        return UNLIMITED
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        return UNLIMITED
    return int(text)


@dataclass(frozen=True, slots=True)
class ContinueToken:
    """A decoded token: resume after ``name`` (in ``namespace`` for cross-namespace lists)."""

    name: str
    namespace: str | None = None


def encode_continue(name: str, namespace: str | None = None) -> str:
    """Go's token for the last item returned; pass ``namespace`` for all-namespace lists."""
    raw = f"{namespace}/{name}\x00" if namespace is not None else f"{name}\x00"
    return base64.urlsafe_b64encode(raw.encode("utf-8", "surrogatepass")).decode("ascii").rstrip("=")


def decode_continue(token: str | None, *, all_namespaces: bool = False) -> ContinueToken | None:
    """The token's position, or ``None`` when absent or undecodable (then it is ignored).

    With ``all_namespaces`` the text before the first ``/`` is the namespace (namespaces
    cannot contain ``/``; asset names can, so single-namespace tokens are not split).
    """
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        raw = base64.b64decode(padded.encode("ascii"), altchars=b"-_", validate=True).decode("utf-8", "surrogatepass")
    except (binascii.Error, UnicodeError, ValueError):
        return None
    if raw.endswith("\x00"):
        raw = raw[:-1]
    if not raw:
        return None
    if all_namespaces:
        namespace, sep, name = raw.partition("/")
        if not sep or not namespace or not name:
            return None
        return ContinueToken(name, namespace)
    return ContinueToken(raw)


def token_for(rtype: ResourceType[Any], obj: Any, *, all_namespaces: bool) -> str:
    """The ``Sensu-Continue`` value after returning ``obj`` as a page's last item."""
    namespace = rtype.namespace_of(obj) if all_namespaces and rtype.namespaced else None
    return encode_continue(rtype.name_of(obj), namespace)


def start_key(collection: str, namespace: str | None, token: ContinueToken | None) -> str | None:
    """The first store key a resumed scan may return, or ``None`` to start at the prefix.

    ``namespace`` is the request's namespace (``None`` for all namespaces, and for
    cluster-wide collections).  A token that cannot name a key is ignored.
    """
    if token is None:
        return None
    ns = token.namespace if token.namespace is not None else namespace
    try:
        if collection == "events":
            entity, sep, check = token.name.partition("/")
            if not sep or ns is None:
                return None
            key = keys.event_key(ns, entity, check)
        elif collection in keys.NAMESPACED_COLLECTIONS:
            if ns is None:
                return None
            key = keys.key_for(collection, ns, token.name)
        else:
            key = keys.key_for(collection, None, token.name)
    except ValueError:
        return None
    return keys.after_key(key)
