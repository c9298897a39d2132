"""runtime.md §5.2: history, occurrences, watermark, last_ok, flap score, state."""

from __future__ import annotations

import ctypes
from typing import Any

import pytest

from backend.eventd.merge import (
    HISTORY_LENGTH,
    OUTPUT_TRUNCATED_LABEL,
    merge_event,
    output_truncated_bytes,
    persisted_copy,
    total_state_change,
)
from core.resources.event import has_metrics, is_flapping_end, is_flapping_start, is_incident, is_resolution

NOW = 1_700_000_000


def result(status: int, executed: int, **check: Any) -> dict[str, Any]:
    return {
        "timestamp": executed,
        "entity": {"metadata": {"name": "web-01", "namespace": "default"}},
        "check": {"metadata": {"name": "disk", "namespace": "default"}, "status": status, "executed": executed, **check},
    }


def run(statuses: list[int], **check: Any) -> list[dict[str, Any]]:
    """Feed results through merge_event like eventd does; return every merged event."""
    prev: dict[str, Any] | None = None
    out = []
    for i, status in enumerate(statuses):
        prev = merge_event(result(status, 1000 + i, **check), prev, NOW)
        out.append(prev)
    return out


def test_first_result_ok() -> None:
    ev = merge_event(result(0, 1000), None, NOW)
    c = ev["check"]
    assert c["history"] == [{"status": 0, "executed": 1000}]
    assert (c["occurrences"], c["occurrences_watermark"]) == (1, 1)
    assert c["last_ok"] == 1000
    assert c["state"] == "passing"
    assert c["total_state_change"] == 0


def test_first_result_failing_keeps_sent_last_ok() -> None:
    ev = merge_event(result(2, 1000, last_ok=900), None, NOW)
    assert ev["check"]["last_ok"] == 900
    assert ev["check"]["state"] == "failing"
    assert (ev["check"]["occurrences"], ev["check"]["occurrences_watermark"]) == (1, 1)


def test_inputs_not_mutated() -> None:
    new = result(1, 1001)
    prev = merge_event(result(0, 1000), None, NOW)
    snapshot_new, snapshot_prev = repr(new), repr(prev)
    merge_event(new, prev, NOW)
    assert repr(new) == snapshot_new and repr(prev) == snapshot_prev


def test_ok_streak_counts_occurrences() -> None:
    events = run([0, 0, 0])
    assert [e["check"]["occurrences"] for e in events] == [1, 2, 3]
    assert [e["check"]["occurrences_watermark"] for e in events] == [1, 2, 3]
    assert [e["check"]["last_ok"] for e in events] == [1000, 1001, 1002]


def test_watermark_resets_on_ok_to_failure_and_keeps_peak() -> None:
    # OK x3, then critical x4, then OK x6.
    events = run([0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0, 0, 0])
    occ = [e["check"]["occurrences"] for e in events]
    wm = [e["check"]["occurrences_watermark"] for e in events]
    assert occ == [1, 2, 3, 1, 2, 3, 4, 1, 2, 3, 4, 5, 6]
    # Reset to 1 on OK -> non-OK, grows with the streak, keeps the incident's peak (4)
    # after recovery until the OK streak exceeds it.
    assert wm == [1, 2, 3, 1, 2, 3, 4, 4, 4, 4, 4, 5, 6]


def test_warning_to_critical_does_not_reset_watermark() -> None:
    events = run([0, 1, 1, 2, 2, 2])
    assert [e["check"]["occurrences"] for e in events] == [1, 1, 2, 1, 2, 3]
    assert [e["check"]["occurrences_watermark"] for e in events] == [1, 1, 2, 2, 2, 3]


def test_last_ok_only_moves_on_ok() -> None:
    events = run([0, 2, 2, 0])
    assert [e["check"]["last_ok"] for e in events] == [1000, 1000, 1000, 1003]
    assert [e["check"]["state"] for e in events] == ["passing", "failing", "failing", "passing"]


def test_history_capped_at_21() -> None:
    events = run([0] * 30)
    last = events[-1]["check"]["history"]
    assert len(last) == HISTORY_LENGTH == 21
    assert last[0]["executed"] == 1009 and last[-1]["executed"] == 1029
    assert events[-1]["check"]["occurrences"] == 30


def test_executed_and_issued_stay_as_sent_timestamp_filled() -> None:
    new = result(0, 0)
    new["timestamp"] = 0
    new["check"]["issued"] = 0
    ev = merge_event(new, None, NOW)
    assert ev["timestamp"] == NOW
    assert ev["check"]["executed"] == 0 and ev["check"]["issued"] == 0
    kept = merge_event(result(0, 5), None, NOW)
    assert kept["timestamp"] == 5


def f32(x: float) -> float:
    return float(ctypes.c_float(x).value)


def test_total_state_change_needs_21_entries() -> None:
    assert total_state_change([{"status": i % 2} for i in range(20)]) == 0


def test_total_state_change_alternating_is_98_not_99() -> None:
    # 20 transitions, weights 0.80, 0.82, ..., 1.18: sum = 20 * 0.80 + 0.02 * (0 + ... + 19)
    # = 16 + 3.8 = 19.8.  In float64 19.8 / 20 * 100 = 99, but Go converts to float32:
    # f32(19.8) = 19.7999992..., / 20 -> 0.98999995, * 100 -> 98.9999924 -> uint32 98.
    assert f32(f32(f32(19.8) / 20) * 100) < 99
    assert total_state_change([{"status": i % 2} for i in range(21)]) == 98


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ([0] * 21, 0),
        ([0] * 20 + [1], 5),  # one change at step 20, weight 1.18 -> 5.9 -> 5
        ([1] + [0] * 20, 4),  # one change at step 1, weight 0.80 -> 4.0 -> 4
        ([i % 2 if i <= 10 else 0 for i in range(21)], 44),  # steps 1..10: 8 + 0.9 = 8.9 -> 44.5
        ([0, 1, 2] * 7, 98),  # every step changes status (non-zero to non-zero counts too)
    ],
)
def test_total_state_change_known_values(statuses: list[int], expected: int) -> None:
    assert total_state_change([{"status": s, "executed": 0} for s in statuses]) == expected


def test_flapping_when_both_thresholds_set_and_score_reaches_high() -> None:
    events = run([i % 2 for i in range(21)], low_flap_threshold=10, high_flap_threshold=50)
    assert events[-1]["check"]["total_state_change"] == 98
    assert events[-1]["check"]["state"] == "flapping"
    assert all(e["check"]["state"] != "flapping" for e in events[:-1])  # needs 21 entries
    assert is_flapping_start(events[-1])
    assert not is_flapping_end(events[-1])


def test_flapping_threshold_compares_the_float32_score() -> None:
    events = run([i % 2 for i in range(21)], low_flap_threshold=10, high_flap_threshold=99)
    assert events[-1]["check"]["state"] != "flapping"
    events = run([i % 2 for i in range(21)], low_flap_threshold=10, high_flap_threshold=98)
    assert events[-1]["check"]["state"] == "flapping"


@pytest.mark.parametrize(("low", "high"), [(0, 50), (10, 0), (0, 0)])
def test_no_flapping_without_both_thresholds(low: int, high: int) -> None:
    events = run([i % 2 for i in range(21)], low_flap_threshold=low, high_flap_threshold=high)
    assert events[-1]["check"]["total_state_change"] == 98
    assert events[-1]["check"]["state"] in ("passing", "failing")


def test_flapping_ok_result_does_not_move_last_ok() -> None:
    # 22 results 1,0,1,...,1,0: the 20th (OK, history of 20) still passes and sets
    # last_ok 1019; the 21st and 22nd flap, so the final OK leaves last_ok alone.
    events = run([i % 2 for i in range(1, 23)], low_flap_threshold=10, high_flap_threshold=50)
    assert events[19]["check"]["state"] == "passing" and events[19]["check"]["last_ok"] == 1019
    last = events[-1]["check"]
    assert last["status"] == 0 and last["state"] == "flapping"
    assert last["last_ok"] == 1019


def test_incident_and_resolution_predicates() -> None:
    ok, fail, back, again = run([0, 2, 0, 0])
    assert not is_incident(ok) and not is_resolution(ok)
    assert is_incident(fail) and not is_resolution(fail)
    assert not is_incident(back) and is_resolution(back)
    assert not is_resolution(again)


def test_metrics_only_event() -> None:
    ev = {"entity": {"metadata": {"name": "a"}}, "metrics": {"points": []}, "timestamp": 0}
    merged = merge_event(ev, None, NOW)
    assert merged["timestamp"] == NOW and "check" not in merged
    assert has_metrics(merged) and not is_incident(merged) and not is_resolution(merged)


def test_previous_event_without_check_is_rejected() -> None:
    with pytest.raises(ValueError, match="invalid previous event"):
        merge_event(result(0, 1), {"entity": {}}, NOW)


def test_persisted_copy_drops_metrics_and_truncates_bytes() -> None:
    ev = merge_event(result(0, 1000, output="héllo world", max_output_size=2), None, NOW)
    ev["metrics"] = {"points": [{"name": "x", "value": 1}]}
    stored = persisted_copy(ev)
    assert "metrics" not in stored
    # "h" + the first byte of "é": the split character is dropped, not stored half.
    assert stored["check"]["output"] == "h"
    assert output_truncated_bytes(ev) == len("héllo world".encode()) - 2 == 10
    assert stored["metadata"]["labels"][OUTPUT_TRUNCATED_LABEL] == "10"
    # The pipeline copy keeps everything.
    assert ev["check"]["output"] == "héllo world" and "metrics" in ev


def test_persisted_copy_without_limit_is_untouched() -> None:
    ev = merge_event(result(0, 1000, output="x" * 50, max_output_size=0), None, NOW)
    stored = persisted_copy(ev)
    assert stored["check"]["output"] == "x" * 50
    assert OUTPUT_TRUNCATED_LABEL not in (stored.get("metadata") or {}).get("labels", {})
