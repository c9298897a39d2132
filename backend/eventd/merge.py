"""Pure merge of a new check result into the stored event (runtime.md §5.2).

Sensu Go keeps per-(entity, check) state inside the stored event itself: the last 21
``{status, executed}`` entries, the streak counters and the flap score.  Occurrence-based
filters (``event.check.occurrences == 1``) and ``is_incident``/``is_resolution`` depend on
these numbers being exactly the reference's, so the arithmetic here mirrors
``corev2.Check.MergeWith``, ``updateCheckState``, ``totalStateChange`` and eventd's
``updateOccurrences`` step by step, including Go's float32 rounding of the flap score.

Everything operates on plain JSON-shaped dicts with Sensu's wire names and never mutates
its arguments; callers own the I/O (store read, CAS write, silence deletion).
"""

from __future__ import annotations

import copy
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from core.resources.event import HISTORY_LENGTH, STATE_FAILING, STATE_FLAPPING, STATE_PASSING, has_check

__all__ = [
    "HISTORY_LENGTH",
    "OUTPUT_TRUNCATED_LABEL",
    "STATE_FAILING",
    "STATE_FLAPPING",
    "STATE_PASSING",
    "merge_event",
    "merge_event_in_place",
    "output_truncated_bytes",
    "persisted_copy",
    "total_state_change",
]

OUTPUT_TRUNCATED_LABEL: Final = "sensu.io/output_truncated_bytes"
"""Event label recording how many output bytes ``max_output_size`` cut off."""

_FLAP_FIRST_WEIGHT: Final = 0.80
_FLAP_WEIGHT_STEP: Final = 0.02


def _f32(x: float) -> float:
    """Round ``x`` to the nearest IEEE-754 single, as a Go ``float32`` conversion does."""
    return float(struct.unpack("<f", struct.pack("<f", x))[0])


def _status(entry: Mapping[str, Any] | None) -> int:
    if not entry:
        return 0
    return int(entry.get("status") or 0)


def total_state_change(history: Sequence[Mapping[str, Any]]) -> int:
    """Weighted percentage (0..100) of status changes across a full history.

    Zero unless ``history`` holds at least 21 entries.  Each transition between entry
    ``i-1`` and ``i`` (i = 1..len-1) adds the current weight, which starts at 0.80 and
    grows by 0.02 per step whether or not the status changed.  The sum is a float64 in Go;
    the final ``uint32(float32(sum) / 20 * 100)`` is evaluated in float32 arithmetic,
    which we reproduce operation by operation so borderline scores (e.g. 99 vs 98) match.
    """
    if len(history) < HISTORY_LENGTH:
        return 0
    changes = 0.0
    weight = _FLAP_FIRST_WEIGHT
    previous = _status(history[0])
    for entry in history[1:]:
        current = _status(entry)
        if current != previous:
            changes += weight
        weight += _FLAP_WEIGHT_STEP
        previous = current
    score = _f32(_f32(_f32(changes) / _f32(20.0)) * _f32(100.0))
    return int(score)


def merge_event(new: Mapping[str, Any], prev: Mapping[str, Any] | None, now: int) -> dict[str, Any]:
    """Return ``new`` merged with the stored ``prev`` event per runtime.md §5.2.

    ``now`` (Unix seconds, supplied by the caller so the function stays pure) replaces a
    zero or missing ``timestamp``; ``check.executed`` and ``check.issued`` stay as sent.
    A metrics-only event (no check) is returned as a copy with only the timestamp rule
    applied.  Raises ``ValueError`` if ``prev`` exists but has no check, like Go's
    "invalid previous event".
    """
    return merge_event_in_place(copy.deepcopy(dict(new)), prev, now)


def merge_event_in_place(event: dict[str, Any], prev: Mapping[str, Any] | None, now: int) -> dict[str, Any]:
    """:func:`merge_event` writing into ``event`` itself (the caller owns it); ``prev`` is only read.

    Why: eventd builds a fresh dict of just the fields the merge reads, once
    per event, and deep-copying it again was pure cost. History entries of
    ``prev`` are shared with the result, never modified.
    """
    if not event.get("timestamp"):
        event["timestamp"] = now
    if not has_check(event):
        return event
    check: dict[str, Any] = event["check"]
    status = _status(check)
    executed = int(check.get("executed") or 0)
    entry = {"status": status, "executed": executed}

    if prev is not None:
        if not has_check(prev):
            raise ValueError("invalid previous event: it has no check")
        prev_check = prev["check"]
        history = list((prev_check.get("history") or [])[-(HISTORY_LENGTH - 1):])
        history.append(entry)
        last_ok = int(prev_check.get("last_ok") or 0)
        occurrences = int(prev_check.get("occurrences") or 0)
        watermark = int(prev_check.get("occurrences_watermark") or 0)
    else:
        history = list((check.get("history") or [])[-(HISTORY_LENGTH - 1):])
        history.append(entry)
        last_ok = executed if status == 0 else int(check.get("last_ok") or 0)
        occurrences = int(check.get("occurrences") or 0)
        watermark = int(check.get("occurrences_watermark") or 0)
    history = history[-HISTORY_LENGTH:]

    tsc = total_state_change(history)
    low = int(check.get("low_flap_threshold") or 0)
    high = int(check.get("high_flap_threshold") or 0)
    flapping = low != 0 and high != 0 and tsc >= high
    if flapping:
        state = STATE_FLAPPING
    elif status == 0:
        state = STATE_PASSING
        last_ok = executed
    else:
        state = STATE_FAILING

    same = len(history) > 1 and history[-1]["status"] == history[-2]["status"]
    occurrences = occurrences + 1 if same else 1
    if len(history) > 1 and history[-1]["status"] != 0 and history[-2]["status"] == 0:
        watermark = 1
    elif occurrences > watermark:
        watermark += 1

    check["history"] = history
    check["total_state_change"] = tsc
    check["state"] = state
    check["last_ok"] = last_ok
    check["occurrences"] = occurrences
    check["occurrences_watermark"] = watermark
    return event


def output_truncated_bytes(event: Mapping[str, Any]) -> int:
    """How many UTF-8 bytes of ``check.output`` exceed ``check.max_output_size`` (0 if none).

    Go stores ``Output[:max_output_size]`` (a byte slice) and labels the event with the
    number of bytes removed.
    """
    check = event.get("check") or {}
    limit = int(check.get("max_output_size") or 0)
    if limit <= 0:
        return 0
    size = len(str(check.get("output") or "").encode("utf-8"))
    return max(0, size - limit)


def persisted_copy(event: Mapping[str, Any]) -> dict[str, Any]:
    """The copy of a merged event that goes to the store (runtime.md §5.1 step 5).

    Drops ``metrics`` (never persisted) and, when ``max_output_size`` > 0 and the output
    is longer, cuts the output to that many bytes (a multi-byte character split by the
    cut is dropped rather than stored half) and sets the event label
    ``sensu.io/output_truncated_bytes`` to the number of bytes removed.  The pipeline
    keeps the full output: callers publish the event they passed in, not this copy.
    (Go also writes the label onto the pipeline event; use ``output_truncated_bytes`` to
    do the same.)
    """
    persisted: dict[str, Any] = copy.deepcopy(dict(event))
    persisted.pop("metrics", None)
    cut = output_truncated_bytes(persisted)
    if cut > 0:
        check = persisted["check"]
        limit = int(check["max_output_size"])
        raw = str(check.get("output") or "").encode("utf-8")
        check["output"] = raw[:limit].decode("utf-8", errors="ignore")
        metadata = persisted.setdefault("metadata", {})
        labels = dict(metadata.get("labels") or {})
        labels[OUTPUT_TRUNCATED_LABEL] = str(cut)
        metadata["labels"] = labels
    return persisted
