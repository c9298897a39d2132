"""The per-store cache of decoded values: one slot per key and decoder, keyed by revision."""

from __future__ import annotations

from core.resources import storage
from core.resources.storage import decode_dict_cached, derive_cached, encode_dict, remember_cached
from cluster.statemachine import KeyValue


class _Store:
    """Only an identity: the cache is kept per store object."""


def _kv(key: str, revision: int, data: dict) -> KeyValue:  # type: ignore[type-arg]
    return KeyValue(key, encode_dict(data), 1, revision, revision, 0)


def test_a_revision_is_decoded_once_and_a_new_revision_replaces_its_slot() -> None:
    store = _Store()
    calls: list[int] = []

    def derive(value: bytes) -> int:
        calls.append(1)
        return len(value)

    first = _kv("/a", 5, {"v": 1})
    assert derive_cached(store, first, "len", derive) == derive_cached(store, first, "len", derive)
    assert len(calls) == 1
    assert decode_dict_cached(store, first) == {"v": 1}  # another decoder: its own slot
    newer = _kv("/a", 9, {"v": 22222})
    assert derive_cached(store, newer, "len", derive) == len(newer.value)
    assert len(calls) == 2
    assert len(storage._decoded[store]) == 2  # ("/a", "len") and ("/a", dict): no slot per old revision


def test_a_remembered_value_serves_that_revision_only() -> None:
    store = _Store()
    remember_cached(store, "/b", 7, "len", -1)
    assert derive_cached(store, _kv("/b", 7, {"v": 1}), "len", len) == -1  # no decode
    assert derive_cached(store, _kv("/b", 8, {"v": 1}), "len", len) == len(encode_dict({"v": 1}))
