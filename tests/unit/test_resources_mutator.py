"""Mutator: spec §2.8."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import Mutator, ValidationError
from core.resources.mutator import mutator_fields

WIRE: dict[str, Any] = {
    "metadata": {"name": "m", "namespace": "default"}, "command": "jq .check", "timeout": 0,
    "env_vars": None, "runtime_assets": None, "secrets": None,
}
JS: dict[str, Any] = {
    "metadata": {"name": "m", "namespace": "default"}, "timeout": 0, "env_vars": None, "runtime_assets": None,
    "secrets": None, "type": "javascript", "eval": "data = JSON.parse(JSON.stringify(event)); return data;",
}


def reason(m: Mutator) -> str:
    with pytest.raises(ValidationError) as info:
        m.validate()
    return info.value.reason


@pytest.mark.parametrize("wire", [WIRE, JS, {**WIRE, "type": "pipe"}])
def test_round_trip(wire: dict[str, Any]) -> None:
    m = Mutator.from_wire(wire)
    m.validate()
    assert m.to_wire() == wire
    assert Mutator.from_store(m.to_store()) == m


def test_command_or_eval_required() -> None:
    assert reason(Mutator.from_wire({**WIRE, "command": ""})) == "command: a command or eval is required"


def test_unknown_type() -> None:
    assert reason(Mutator.from_wire({**WIRE, "type": "lua"})) == "type: must be \"pipe\" or \"javascript\", got 'lua'"


def test_javascript_with_command() -> None:
    assert reason(Mutator.from_wire({**JS, "command": "x"})) == (
        "command: must be empty for a javascript mutator (use eval)"
    )


def test_javascript_needs_eval() -> None:
    assert reason(Mutator.from_wire({**JS, "eval": ""})) == "eval: must not be empty for a javascript mutator"


def test_fields() -> None:
    assert mutator_fields(Mutator.from_wire(WIRE)) == {
        "mutator.name": "m", "mutator.namespace": "default", "mutator.runtime_assets": "",
    }
