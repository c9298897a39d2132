"""How resources are kept in the store: msgpack of ``to_store()``.

One encoding for every type, so any node (and any daemon) can read what
another wrote. Decoding is lenient like the wire decoders: a value written by
an older version with fewer keys still loads.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

import msgpack

__all__ = ["encode", "decode", "encode_dict", "decode_dict"]


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
