"""How resources are kept in the store: msgpack of ``to_store()``.

One encoding for every type, so any node (and any daemon) can read what
another wrote. Decoding is lenient like the wire decoders: a value written by
an older version with fewer keys still loads.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Protocol, TypeVar

import msgpack

__all__ = ["encode", "decode", "encode_dict", "decode_dict", "decode_cached", "decode_dict_cached", "derive_cached"]


class _Storable(Protocol):
    def to_store(self) -> dict[str, Any]: ...


T = TypeVar("T")


def encode_dict(data: dict[str, Any]) -> bytes:
    return msgpack.packb(data, use_bin_type=True)


def decode_dict(value: bytes) -> dict[str, Any]:
    data = msgpack.unpackb(value, raw=False, strict_map_key=False)
    if not isinstance(data, dict):
        raise ValueError("stored value is not a map")
    return data


def encode(obj: _Storable) -> bytes:
    return encode_dict(obj.to_store())


def decode(cls: type[T], value: bytes) -> T:
    return cls.from_store(decode_dict(value))  # type: ignore[attr-defined,no-any-return]


#: Decoded objects per store, by (key, mod_revision, decoder). Cleared whole when full: simple, and
#: a (key, mod_revision) pair names one value forever, so an entry is never stale, only unused.
_DECODED_MAX = 8192
_decoded: "weakref.WeakKeyDictionary[object, dict[tuple[str, int, object], Any]]" = weakref.WeakKeyDictionary()


class _StoredValue(Protocol):
    key: str
    mod_revision: int
    value: bytes


def _cached(owner: object, kv: _StoredValue, how: object, decoder: Callable[[bytes], Any]) -> Any:
    cache = _decoded.get(owner)
    if cache is None:
        cache = _decoded[owner] = {}
    ident = (kv.key, kv.mod_revision, how)
    obj = cache.get(ident)
    if obj is None:
        if len(cache) >= _DECODED_MAX:
            cache.clear()
        obj = cache[ident] = decoder(kv.value)
    return obj


def decode_cached(owner: object, cls: type[T], kv: _StoredValue) -> T:
    """``decode(cls, kv.value)``, decoded once per ``owner`` (the store), key and revision.

    Why: the hot paths (event processing, the pipeline, RBAC) read the same
    entities, handlers, silences and roles for every event or request, and
    decoding them was a large share of the per-event cost. The result is
    shared: callers must not modify it (copy first).
    """
    return _cached(owner, kv, cls, lambda value: decode(cls, value))  # type: ignore[no-any-return]


def decode_dict_cached(owner: object, kv: _StoredValue) -> dict[str, Any]:
    """``decode_dict(kv.value)`` shared like :func:`decode_cached`: read it, never modify it."""
    return _cached(owner, kv, dict, decode_dict)  # type: ignore[no-any-return]


def derive_cached(owner: object, kv: _StoredValue, how: object, derive: Callable[[bytes], T]) -> T:
    """``derive(kv.value)`` remembered like :func:`decode_cached`, under the hashable ``how``.

    For results that depend only on the stored bytes, such as the JSON body
    the API answers a GET with. Shared: never modify the result.
    """
    return _cached(owner, kv, how, derive)  # type: ignore[no-any-return]
