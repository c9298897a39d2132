"""How resources are kept in the store: msgpack of ``to_store()``.

One encoding for every type, so any node (and any daemon) can read what
another wrote. Decoding is lenient like the wire decoders: a value written by
an older version with fewer keys still loads.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Protocol, Self, TypeVar, cast

import msgpack

__all__ = [
    "encode",
    "decode",
    "encode_dict",
    "decode_dict",
    "decode_cached",
    "decode_dict_cached",
    "derive_cached",
    "remember_cached",
]


class _Storable(Protocol):
    def to_store(self) -> dict[str, Any]: ...


class _Loadable(Protocol):
    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self: ...


T = TypeVar("T")
L = TypeVar("L", bound=_Loadable)


def encode_dict(data: dict[str, Any]) -> bytes:
    return msgpack.packb(data, use_bin_type=True)


def decode_dict(value: bytes) -> dict[str, Any]:
    data = msgpack.unpackb(value, raw=False, strict_map_key=False)
    if not isinstance(data, dict):
        raise ValueError("stored value is not a map")
    return data


def encode(obj: _Storable) -> bytes:
    return encode_dict(obj.to_store())


def decode(cls: type[L], value: bytes) -> L:
    return cls.from_store(decode_dict(value))


#: Decoded objects per store: (key, decoder) -> (mod_revision, object), the newest revision read
#: or written. One slot per key and decoder, so a key written for every event (an event's merge
#: state) replaces its own entry instead of filling the cache with old revisions. Cleared whole
#: when full: simple, and a miss only costs a decode.
_DECODED_MAX = 16_384
_decoded: "weakref.WeakKeyDictionary[object, dict[tuple[str, object], tuple[int, object]]]" = weakref.WeakKeyDictionary()


class _StoredValue(Protocol):
    """What a read from the store gives (``cluster.store.KeyValue``); read-only, as that is frozen."""

    @property
    def key(self) -> str: ...

    @property
    def mod_revision(self) -> int: ...

    @property
    def value(self) -> bytes: ...


def _slots(owner: object) -> dict[tuple[str, object], tuple[int, object]]:
    cache = _decoded.get(owner)
    if cache is None:
        cache = _decoded[owner] = {}
    return cache


def _store_slot(cache: dict[tuple[str, object], tuple[int, object]], ident: tuple[str, object], revision: int,
                obj: object) -> None:
    if ident not in cache and len(cache) >= _DECODED_MAX:
        cache.clear()
    cache[ident] = (revision, obj)


def _cached(owner: object, kv: _StoredValue, how: object, decoder: Callable[[bytes], T]) -> T:
    cache = _slots(owner)
    ident = (kv.key, how)
    slot = cache.get(ident)
    if slot is not None and slot[0] == kv.mod_revision:
        # The cache holds every decoder's results; the slot is keyed by ``how``, which stands
        # for one decoder (callers never share a ``how`` between decoders), so it holds a T.
        return cast(T, slot[1])
    obj = decoder(kv.value)
    _store_slot(cache, ident, kv.mod_revision, obj)
    return obj


def decode_cached(owner: object, cls: type[L], kv: _StoredValue) -> L:
    """``decode(cls, kv.value)``, decoded once per ``owner`` (the store), key and revision.

    Why: the hot paths (event processing, the pipeline, RBAC) read the same
    entities, handlers, silences and roles for every event or request, and
    decoding them was a large share of the per-event cost. The result is
    shared: callers must not modify it (copy first).
    """
    return _cached(owner, kv, cls, lambda value: decode(cls, value))


def decode_dict_cached(owner: object, kv: _StoredValue) -> dict[str, Any]:
    """``decode_dict(kv.value)`` shared like :func:`decode_cached`: read it, never modify it."""
    return _cached(owner, kv, dict, decode_dict)


def derive_cached(owner: object, kv: _StoredValue, how: object, derive: Callable[[bytes], T]) -> T:
    """``derive(kv.value)`` remembered like :func:`decode_cached`, under the hashable ``how``.

    For results that depend only on the stored bytes, such as the JSON body
    the API answers a GET with. Shared: never modify the result.
    """
    return _cached(owner, kv, how, derive)


def remember_cached(owner: object, key: str, mod_revision: int, how: object, obj: object) -> None:
    """Seed :func:`derive_cached` with what ``derive`` would return for the value just written.

    For a writer that already holds the result: the next read of that
    revision, on this node, then costs no decode. ``obj`` must equal
    ``derive`` of the stored bytes, and is shared like every cached result.
    """
    _store_slot(_slots(owner), (key, how), mod_revision, obj)
