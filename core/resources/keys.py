"""Every store key, built here and nowhere else.

Layout::

    /sensu.io/<collection>/<namespace>/<name>      namespaced types (checks, assets, ...)
    /sensu.io/events/<namespace>/<entity>/<check>  events
    /sensu.io/<collection>/<name>                  cluster-wide types (users, namespaces, ...)
    /sensu.io/<singleton>                          single objects (tessen, cluster id, ...)
    /sensu.io/_internal/<area>/<part>/...          daemon bookkeeping (rings, timers, ...)

Each segment is percent-encoded for ``%``, ``/`` and NUL (asset names contain ``/``),
so a prefix scan of ``/sensu.io/checks/<ns>/`` lists exactly one namespace and a key
never splits into the wrong segments.  Keys of one collection sort by name, except that
an encoded ``/`` (``%2F``) sorts before ``-`` and ``.`` instead of after them; list order
and continue tokens both follow key order, so pagination stays consistent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

__all__ = [
    "CLUSTER_COLLECTIONS",
    "COLLECTIONS",
    "NAMESPACED_COLLECTIONS",
    "ROOT",
    "KeyParts",
    "after_key",
    "decode_segment",
    "encode_segment",
    "event_key",
    "event_prefix",
    "internal_key",
    "internal_prefix",
    "key_for",
    "name_from_key",
    "parse_key",
    "prefix_for",
    "singleton_key",
]

ROOT: Final = "/sensu.io/"

NAMESPACED_COLLECTIONS: Final = frozenset({
    "assets", "checks", "entities", "events", "filters", "handlers", "hooks", "mutators", "pipelines",
    "rolebindings", "roles", "silenced",
})
CLUSTER_COLLECTIONS: Final = frozenset({"apikeys", "clusterrolebindings", "clusterroles", "namespaces", "users"})
COLLECTIONS: Final = NAMESPACED_COLLECTIONS | CLUSTER_COLLECTIONS

_INTERNAL: Final = "_internal"
_ENCODE: Final = {"%": "%25", "/": "%2F", "\x00": "%00"}
_ENCODE_RE: Final = re.compile(r"[%/\x00]")
_DECODE: Final = {v: k for k, v in _ENCODE.items()}
_DECODE_RE: Final = re.compile(r"%(?:25|2F|00)")


def encode_segment(text: str) -> str:
    """Percent-encode ``%``, ``/`` and NUL so ``text`` is exactly one key segment."""
    return _ENCODE_RE.sub(lambda m: _ENCODE[m.group(0)], text)


def decode_segment(segment: str) -> str:
    """Inverse of :func:`encode_segment`."""
    return _DECODE_RE.sub(lambda m: _DECODE[m.group(0)], segment)


def _segment(text: str, what: str) -> str:
    if not text:
        raise ValueError(f"empty {what} in a store key")
    return encode_segment(text)


def _check_collection(collection: str) -> None:
    if collection not in COLLECTIONS:
        raise ValueError(f"unknown collection {collection!r}")


def key_for(collection: str, namespace: str | None, name: str) -> str:
    """The key of one object.  ``namespace`` must be set exactly for namespaced types.

    Raises ``ValueError`` on an unknown collection, a namespace mismatch or an empty
    segment (these are programming errors, not client errors).  Events use
    :func:`event_key`.
    """
    _check_collection(collection)
    if collection == "events":
        raise ValueError("event keys are built with event_key()")
    if collection in NAMESPACED_COLLECTIONS:
        if not namespace:
            raise ValueError(f"{collection} are namespaced: a namespace is required")
        return f"{ROOT}{collection}/{_segment(namespace, 'namespace')}/{_segment(name, 'name')}"
    if namespace:
        raise ValueError(f"{collection} are cluster-wide: no namespace allowed")
    return f"{ROOT}{collection}/{_segment(name, 'name')}"


def prefix_for(collection: str, namespace: str | None = None) -> str:
    """The scan prefix of a collection, in one namespace or (``None``) all of them."""
    _check_collection(collection)
    if namespace:
        if collection not in NAMESPACED_COLLECTIONS:
            raise ValueError(f"{collection} are cluster-wide: no namespace allowed")
        return f"{ROOT}{collection}/{encode_segment(namespace)}/"
    return f"{ROOT}{collection}/"


def event_key(namespace: str, entity: str, check: str) -> str:
    """``/sensu.io/events/<ns>/<entity>/<check>``."""
    return (
        f"{ROOT}events/{_segment(namespace, 'namespace')}/{_segment(entity, 'entity')}/"
        f"{_segment(check, 'check')}"
    )


def event_prefix(namespace: str, entity: str | None = None) -> str:
    """Events of a namespace, or of one entity in it (all namespaces: ``prefix_for("events")``)."""
    prefix = f"{ROOT}events/{_segment(namespace, 'namespace')}/"
    if entity:
        prefix += f"{encode_segment(entity)}/"
    return prefix


def singleton_key(name: str) -> str:
    """``/sensu.io/<name>`` for one-of-a-kind objects (``tessen``, ``cluster_id``, ...)."""
    if name in COLLECTIONS or name == _INTERNAL:
        raise ValueError(f"{name!r} is a collection, not a singleton")
    return f"{ROOT}{_segment(name, 'name')}"


def internal_key(area: str, *parts: str) -> str:
    """A daemon's bookkeeping key, ``/sensu.io/_internal/<area>/<part>/...``."""
    if not parts:
        raise ValueError("internal_key needs at least one part after the area")
    return f"{ROOT}{_INTERNAL}/{_segment(area, 'area')}/" + "/".join(_segment(p, "part") for p in parts)


def internal_prefix(area: str, *parts: str) -> str:
    """Scan prefix of :func:`internal_key` keys sharing ``area`` and ``parts``."""
    tail = "".join(f"{_segment(p, 'part')}/" for p in parts)
    return f"{ROOT}{_INTERNAL}/{_segment(area, 'area')}/{tail}"


def after_key(key: str) -> str:
    """The smallest key greater than ``key``: where a "resume after" scan starts."""
    return key + "\x00"


@dataclass(frozen=True, slots=True)
class KeyParts:
    """A resource key taken apart; ``entity`` is set for events only."""

    collection: str
    namespace: str | None
    name: str
    entity: str | None = None


def parse_key(key: str) -> KeyParts:
    """Split a key built by :func:`key_for` or :func:`event_key`; ``ValueError`` otherwise."""
    if not key.startswith(ROOT):
        raise ValueError(f"not a resource key: {key!r}")
    segments = key[len(ROOT):].split("/")
    collection = segments[0]
    if collection == "events" and len(segments) == 4:
        ns, entity, check = (decode_segment(s) for s in segments[1:])
        return KeyParts(collection, ns, check, entity)
    if collection in NAMESPACED_COLLECTIONS and collection != "events" and len(segments) == 3:
        return KeyParts(collection, decode_segment(segments[1]), decode_segment(segments[2]))
    if collection in CLUSTER_COLLECTIONS and len(segments) == 2:
        return KeyParts(collection, None, decode_segment(segments[1]))
    raise ValueError(f"not a resource key: {key!r}")


def name_from_key(key: str) -> str:
    """The decoded last segment: the object's name (an event's check name)."""
    return decode_segment(key.rstrip("/").rsplit("/", 1)[-1])
