"""EventFilter: spec §2.7."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import EventFilter, ValidationError, WireTypeError
from core.resources.filter import filter_fields

WIRE: dict[str, Any] = {
    "metadata": {"name": "state_change_only", "namespace": "default"},
    "action": "allow",
    "expressions": ["event.check.occurrences == 1"],
    "runtime_assets": None,
}
WHEN = {"days": {"all": [{"begin": "5:00 PM", "end": "8:00 AM"}], "monday": [{"begin": "9:00AM", "end": "5:00PM"}]}}


def reason(f: EventFilter) -> str:
    with pytest.raises(ValidationError) as info:
        f.validate()
    return info.value.reason


def test_round_trip() -> None:
    f = EventFilter.from_wire(WIRE)
    f.validate()
    assert f.to_wire() == WIRE


def test_when_round_trip() -> None:
    f = EventFilter.from_wire({**WIRE, "when": WHEN})
    f.validate()
    assert f.to_wire() == {**WIRE, "when": WHEN}
    assert EventFilter.from_store(f.to_store()) == f


def test_action_required() -> None:
    assert reason(EventFilter.from_wire({**WIRE, "action": ""})) == "action: must be \"allow\" or \"deny\", got ''"


def test_action_values() -> None:
    assert reason(EventFilter.from_wire({**WIRE, "action": "block"})).startswith("action: must be")
    EventFilter.from_wire({**WIRE, "action": "deny"}).validate()


def test_expressions_required() -> None:
    assert reason(EventFilter.from_wire({**WIRE, "expressions": []})) == (
        "expressions: must contain at least one expression"
    )


@pytest.mark.parametrize("expr", ["", "   ", "event.check.status == (1", "'open", "a ]"])
def test_expressions_must_parse(expr: str) -> None:
    assert reason(EventFilter.from_wire({**WIRE, "expressions": [expr]})).startswith(
        "expressions[0]: invalid expression: "
    )


def test_when_shape() -> None:
    assert reason(EventFilter.from_wire({**WIRE, "when": {"days": {"friday": [{"begin": "9:00AM"}]}}})) == (
        "when.days.friday[0].end: must not be empty"
    )


def test_when_wrong_type() -> None:
    with pytest.raises(WireTypeError) as info:
        EventFilter.from_wire({**WIRE, "when": {"days": {"all": {"begin": "x"}}}})
    assert info.value.reason == "when.days.all: expected an array, got object"


def test_fields() -> None:
    assert filter_fields(EventFilter.from_wire({**WIRE, "runtime_assets": ["a", "b"]})) == {
        "filter.name": "state_change_only", "filter.namespace": "default", "filter.action": "allow",
        "filter.runtime_assets": "a,b",
    }
