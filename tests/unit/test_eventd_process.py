"""eventd's projected merge (backend/eventd/process.py) must equal merge_event exactly."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backend.eventd.merge import merge_event
from backend.eventd.process import _merge, _merge_state, _previous, _remember
from core.resources.storage import decode_dict, encode_dict
from cluster.statemachine import KeyValue


def event(status: int, executed: int, **check: Any) -> dict[str, Any]:
    return {
        "timestamp": executed,
        "metadata": {"namespace": "default", "labels": {"a": "b"}},
        "entity": {"metadata": {"name": "web", "namespace": "default"}, "entity_class": "agent",
                   "system": {"network": {"interfaces": [{"name": "eth0", "addresses": ["10.0.0.1/8"]}]}}},
        "check": {"metadata": {"name": "disk", "namespace": "default"}, "command": "true", "interval": 10,
                  "status": status, "executed": executed, "output": "x", "handlers": ["h"], **check},
    }


@pytest.mark.parametrize("new, prev", [
    (event(0, 10), None),
    (event(2, 10), None),
    (event(1, 20), event(0, 10, history=[{"status": 0, "executed": 10}], last_ok=10, occurrences=1,
                                  occurrences_watermark=1)),
    (event(0, 20, low_flap_threshold=5, high_flap_threshold=20), None),
    ({**event(0, 0), "timestamp": 0}, None),
])
def test_projected_merge_equals_merge_event(new: dict[str, Any], prev: dict[str, Any] | None) -> None:
    before = copy.deepcopy(new)
    assert _merge(new, prev, 99) == merge_event(new, prev, 99)
    assert new == before  # the input is not modified


@settings(max_examples=200, deadline=None)
@given(statuses=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=30),
       low=st.sampled_from([0, 5, 20]), high=st.sampled_from([0, 30, 60]))
def test_projected_merge_matches_over_a_history(statuses: list[int], low: int, high: int) -> None:
    prev_a: dict[str, Any] | None = None
    prev_b: dict[str, Any] | None = None
    for i, status in enumerate(statuses):
        new = event(status, 100 + i, low_flap_threshold=low, high_flap_threshold=high)
        a = _merge(new, prev_a, 1000 + i)
        b = merge_event(new, prev_b, 1000 + i)
        assert a == b
        prev_a, prev_b = copy.deepcopy(a), b


class _Store:
    """Only an identity: the remembered merge state is kept per store object."""


@settings(max_examples=100, deadline=None)
@given(statuses=st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=30))
def test_the_remembered_previous_event_merges_like_the_stored_one(statuses: list[int]) -> None:
    store = _Store()
    stored: KeyValue | None = None
    prev_full: dict[str, Any] | None = None
    for i, status in enumerate(statuses):
        new = event(status, 100 + i, low_flap_threshold=5, high_flap_threshold=30)
        prev = _previous(store, stored) if stored is not None else None  # type: ignore[arg-type]
        merged = _merge(new, prev, 1000 + i)
        assert merged == _merge(new, prev_full, 1000 + i)
        prev_full = copy.deepcopy(merged)
        revision = 10 + i
        stored = KeyValue("/events/web/disk", encode_dict(merged), 10, revision, i + 1, 0)
        _remember(store, stored.key, revision, merged)  # type: ignore[arg-type]
    assert stored is not None
    assert _previous(store, stored) == {"check": {f: prev_full["check"][f] for f in  # type: ignore[arg-type,index]
                                                  ("history", "last_ok", "occurrences", "occurrences_watermark")}}
    elsewhere = copy.deepcopy(prev_full)  # another node wrote a newer revision: read from its bytes
    elsewhere["check"]["occurrences"] += 100
    written_elsewhere = stored._replace(value=encode_dict(elsewhere), mod_revision=stored.mod_revision + 5)
    assert _previous(store, written_elsewhere) == _merge_state(decode_dict(written_elsewhere.value))  # type: ignore[arg-type]
    assert _previous(store, written_elsewhere)["check"]["occurrences"] == prev_full["check"]["occurrences"] + 100  # type: ignore[arg-type]
