"""runtime.md §6.1 (handler sets) and §6.2 (built-ins, ``when``, allow/deny)."""

from __future__ import annotations

import gc
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from backend.eventd.merge import merge_event
from backend.pipeline.filters import (
    BUILTIN_FILTERS,
    builtin_filter_passes,
    evaluate_when,
    filter_decision,
    handler_set_expand,
    parse_kitchen_time,
    validate_when,
    when_gate,
)

# 2024-01-01 was a Monday.
MONDAY = datetime(2024, 1, 1, tzinfo=timezone.utc)


def at(day_offset: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return MONDAY + timedelta(days=day_offset, hours=hour, minutes=minute, seconds=second)


def check_event(*statuses: int, silenced: list[str] | None = None) -> dict[str, Any]:
    prev = None
    for i, status in enumerate(statuses):
        new = {
            "entity": {"metadata": {"name": "e"}},
            "check": {"metadata": {"name": "c"}, "status": status, "executed": 100 + i, "silenced": silenced or []},
        }
        prev = merge_event(new, prev, 100 + i)
    assert prev is not None
    return prev


# --- built-ins ---


def test_builtin_names_are_reserved() -> None:
    assert set(BUILTIN_FILTERS) == {"is_incident", "not_silenced", "has_metrics"}
    with pytest.raises(KeyError):
        builtin_filter_passes("my_filter", check_event(0))


def test_is_incident_builtin() -> None:
    assert builtin_filter_passes("is_incident", check_event(2))
    assert builtin_filter_passes("is_incident", check_event(0, 1))
    assert builtin_filter_passes("is_incident", check_event(2, 0))  # resolution
    assert not builtin_filter_passes("is_incident", check_event(0, 0))  # OK -> OK
    assert not builtin_filter_passes("is_incident", check_event(0))
    metrics_only: dict[str, Any] = {"entity": {}, "metrics": {"points": []}}
    assert not builtin_filter_passes("is_incident", metrics_only)


def test_not_silenced_and_has_metrics_builtins() -> None:
    assert builtin_filter_passes("not_silenced", check_event(2))
    assert not builtin_filter_passes("not_silenced", check_event(2, silenced=["linux:*"]))
    assert not builtin_filter_passes("has_metrics", check_event(2))
    with_metrics = dict(check_event(2), metrics={"points": []})
    assert builtin_filter_passes("has_metrics", with_metrics)


# --- when windows ---


def test_kitchen_times() -> None:
    assert parse_kitchen_time("9:00AM") == (9, 0)
    assert parse_kitchen_time("9:00 PM") == (21, 0)  # spaces ignored (Sensu 1 style)
    assert parse_kitchen_time("12:00AM") == (0, 0)
    assert parse_kitchen_time("12:30PM") == (12, 30)
    for bad in ("9AM", "9:00", "13:00PM", "9:60AM", "9:00am", "09:00:00", ""):
        with pytest.raises(ValueError):
            parse_kitchen_time(bad)


def test_business_hours_all_days_inclusive_at_minute_precision() -> None:
    when = {"days": {"all": [{"begin": "9:00AM", "end": "5:00PM"}]}}
    assert not evaluate_when(when, at(0, 8, 59, 59))
    assert evaluate_when(when, at(0, 9))
    assert evaluate_when(when, at(2, 17, 0, 0))  # the end minute itself is inside
    assert not evaluate_when(when, at(2, 17, 0, 1))


def test_day_specific_windows_use_utc_weekday() -> None:
    when = {"days": {"saturday": [{"begin": "10:00 AM", "end": "2:00 PM"}]}}
    assert evaluate_when(when, at(5, 12))  # Saturday
    assert not evaluate_when(when, at(6, 12))  # Sunday
    # A non-UTC clock is converted to UTC first: Sat 12:00 UTC == Sat 07:00 -05:00.
    est = timezone(timedelta(hours=-5))
    assert evaluate_when(when, at(5, 12).astimezone(est))
    # Naive datetimes are taken as UTC.
    assert evaluate_when(when, at(5, 12).replace(tzinfo=None))


def test_window_wrapping_midnight() -> None:
    when = {"days": {"all": [{"begin": "10:00PM", "end": "2:00AM"}]}}
    assert evaluate_when(when, at(0, 23, 30))
    assert evaluate_when(when, at(0, 0, 0))
    assert evaluate_when(when, at(0, 1, 59, 59))
    # Go quirk kept: in a wrapped window the end instant itself is outside (the morning
    # part is [00:00, end) because Go tests "now before end" to pick the part).
    assert not evaluate_when(when, at(0, 2, 0))
    assert not evaluate_when(when, at(0, 2, 1))
    assert not evaluate_when(when, at(0, 12))
    assert evaluate_when(when, at(0, 23, 59, 59))


def test_day_windows_combine_with_all() -> None:
    when = {"days": {"all": [{"begin": "1:00AM", "end": "2:00AM"}], "monday": [{"begin": "3:00PM", "end": "4:00PM"}]}}
    assert evaluate_when(when, at(0, 1, 30)) and evaluate_when(when, at(0, 15, 30))
    assert not evaluate_when(when, at(1, 15, 30))  # Tuesday


def test_bad_window_raises_and_validates() -> None:
    when = {"days": {"all": [{"begin": "nine", "end": "5:00PM"}]}}
    with pytest.raises(ValueError):
        evaluate_when(when, at(0, 10))
    assert validate_when(when) is not None and "when.days.all: begin" in (validate_when(when) or "")
    assert validate_when({"days": {"all": [{"begin": "9:00AM", "end": "5:00PM"}]}}) is None
    assert validate_when(None) is None


# --- allow / deny ---


def flt(action: str, n: int = 2, when: dict[str, Any] | None = None) -> dict[str, Any]:
    f: dict[str, Any] = {"action": action, "expressions": [f"e{i}" for i in range(n)]}
    if when is not None:
        f["when"] = when
    return f


EV = check_event(2)


@pytest.mark.parametrize(
    ("results", "passes"),
    [
        ([True, True], True),
        ([True, False], False),
        ([False, False], False),
        ([True, None], True),  # a throwing expression is skipped
        ([None, None], True),
        ([], True),  # no expressions -> pass
    ],
)
def test_allow_is_and(results: list[bool | None], passes: bool) -> None:
    assert filter_decision(flt("allow", len(results)), EV, results, now_utc=MONDAY) is passes


@pytest.mark.parametrize(
    ("results", "passes"),
    [
        ([True, True], False),
        ([True, False], False),  # 6.9+: any true denies (OR)
        ([False, True], False),
        ([False, False], True),
        ([None, False], True),
        ([None, True], False),
        ([None], True),
        ([], True),
    ],
)
def test_deny_is_or(results: list[bool | None], passes: bool) -> None:
    assert filter_decision(flt("deny", len(results)), EV, results, now_utc=MONDAY) is passes


def test_when_gates_allow_and_deny() -> None:
    office = {"days": {"all": [{"begin": "9:00AM", "end": "5:00PM"}]}}
    inside, outside = at(0, 10), at(0, 20)
    # allow outside every window -> deny without evaluating expressions.
    assert when_gate(flt("allow", when=office), outside) is False
    assert filter_decision(flt("allow", when=office), EV, [True, True], now_utc=outside) is False
    # allow inside -> expressions decide.
    assert when_gate(flt("allow", when=office), inside) is None
    assert filter_decision(flt("allow", when=office), EV, [True, True], now_utc=inside) is True
    # deny outside every window -> the deny filter is not in force (Go: pass).
    assert when_gate(flt("deny", when=office), outside) is True
    assert filter_decision(flt("deny", when=office), EV, [True, True], now_utc=outside) is True
    # deny inside -> expressions decide.
    assert when_gate(flt("deny", when=office), inside) is None
    assert filter_decision(flt("deny", when=office), EV, [True, False], now_utc=inside) is False
    assert filter_decision(flt("deny", when=office), EV, [False, False], now_utc=inside) is True


def test_unparseable_when_passes_like_go() -> None:
    bad = {"days": {"all": [{"begin": "soon", "end": "later"}]}}
    assert filter_decision(flt("allow", when=bad), EV, [False], now_utc=MONDAY) is True


def test_unknown_action_passes() -> None:
    assert filter_decision({"action": "maybe", "expressions": ["x"]}, EV, [True], now_utc=MONDAY) is True


# --- handler sets ---


def handlers(**defs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"metadata": {"name": name}, **d} for name, d in defs.items()}


def test_plain_handlers_deduplicated_and_sorted() -> None:
    store = handlers(slack={"type": "pipe"}, email={"type": "pipe"}, pager={"type": "tcp"})
    result = handler_set_expand(["slack", "pager", "email", "slack", "ghost"], store.get)
    assert [h["metadata"]["name"] for h in result.handlers] == ["email", "pager", "slack"]
    assert result.missing == ["ghost"]
    assert result.dropped_sets == []


def test_sets_expand_up_to_three_levels() -> None:
    store = handlers(
        top={"type": "set", "handlers": ["mid", "email"]},
        mid={"type": "set", "handlers": ["slack", "pager"]},
        email={"type": "pipe"},
        slack={"type": "pipe"},
        pager={"type": "pipe"},
    )
    # check.handlers are level 1, top's members level 2, mid's members level 3: all fine.
    result = handler_set_expand(["top"], store.get)
    assert [h["metadata"]["name"] for h in result.handlers] == ["email", "pager", "slack"]
    assert result.dropped_sets == []


def test_fourth_level_set_is_dropped() -> None:
    store = handlers(
        a={"type": "set", "handlers": ["b", "h1"]},
        b={"type": "set", "handlers": ["c", "h2"]},
        c={"type": "set", "handlers": ["d", "h3"]},
        d={"type": "set", "handlers": ["h4"]},
        h1={"type": "pipe"},
        h2={"type": "pipe"},
        h3={"type": "pipe"},
        h4={"type": "pipe"},
    )
    result = handler_set_expand(["a"], store.get)
    # a's members are level 2, b's level 3, c's would be level 4 > 3: c (and d with it)
    # is dropped, while h1 and h2 still run.
    assert [h["metadata"]["name"] for h in result.handlers] == ["h1", "h2"]
    assert result.dropped_sets == ["c"]


def test_self_referencing_set_terminates() -> None:
    store = handlers(loop={"type": "set", "handlers": ["loop", "email"]}, email={"type": "pipe"})
    result = handler_set_expand(["loop"], store.get)
    assert [h["metadata"]["name"] for h in result.handlers] == ["email"]
    assert result.dropped_sets == ["loop"]


def test_handler_set_expand_leaves_no_reference_cycles() -> None:
    """It runs for every event: garbage it left in cycles was freed only by the collector, in pauses."""
    handlers = {"all": {"type": "set", "handlers": ["a", "b", "missing"]}, "a": {"type": "pipe"}, "b": {"type": "tcp"}}
    gc.collect()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(10):
            handler_set_expand(["all", "a"], handlers.get)
        gc.collect()
        leftover = list(gc.garbage)
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
    assert leftover == []
