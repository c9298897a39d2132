"""HookConfig: spec §2.3."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import HookConfig, ValidationError, WireTypeError
from core.resources.hook import hook_fields

WIRE: dict[str, Any] = {
    "metadata": {"name": "ps", "namespace": "default", "created_by": "admin"},
    "command": "ps aux", "timeout": 60, "stdin": False, "runtime_assets": None,
}


def reason(h: HookConfig) -> str:
    with pytest.raises(ValidationError) as info:
        h.validate()
    return info.value.reason


def test_round_trip() -> None:
    h = HookConfig.from_wire(WIRE)
    h.validate()
    assert h.to_wire() == WIRE
    assert HookConfig.from_store(h.to_store()) == h


def test_command_is_omitempty() -> None:
    assert "command" not in HookConfig.from_wire({}).to_wire()


def test_runtime_assets_kept_verbatim() -> None:
    assert HookConfig.from_wire({**WIRE, "runtime_assets": []}).to_wire()["runtime_assets"] == []


def test_command_required() -> None:
    assert reason(HookConfig.from_wire({**WIRE, "command": ""})) == "command: must not be empty"


def test_timeout_required() -> None:
    assert reason(HookConfig.from_wire({**WIRE, "timeout": 0})) == "timeout: must be greater than 0"


def test_name_regex() -> None:
    assert reason(HookConfig.from_wire({**WIRE, "metadata": {"name": "p s", "namespace": "default"}})) == (
        "metadata.name: cannot contain spaces or special characters"
    )


def test_runtime_assets_regex() -> None:
    assert reason(HookConfig.from_wire({**WIRE, "runtime_assets": ["a b"]})) == (
        "runtime_assets[0]: cannot contain spaces or special characters"
    )


def test_wrong_type() -> None:
    with pytest.raises(WireTypeError) as info:
        HookConfig.from_wire({**WIRE, "stdin": "yes"})
    assert info.value.reason == "stdin: expected a boolean, got string"


def test_fields() -> None:
    assert hook_fields(HookConfig.from_wire(WIRE)) == {
        "hook.name": "ps", "hook.namespace": "default",
    }
