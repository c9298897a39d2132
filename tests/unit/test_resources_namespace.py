"""Namespace, APIKey and TessenConfig: spec §2.1, §2.14, §2.15."""

from __future__ import annotations

import pytest

from core.resources import APIKey, Namespace, TessenConfig, ValidationError, WireTypeError
from core.resources.apikey import apikey_fields
from core.resources.namespace import namespace_fields


def reason(obj: Namespace | APIKey) -> str:
    with pytest.raises(ValidationError) as info:
        obj.validate()
    return info.value.reason


def test_namespace_round_trip() -> None:
    ns = Namespace.from_wire({"name": "default", "metadata": {"name": "ignored"}})
    ns.validate()
    assert ns.to_wire() == {"name": "default"}
    assert namespace_fields(ns) == {"namespace.name": "default"}


def test_namespace_name_rules() -> None:
    assert reason(Namespace.from_wire({})) == "name: must not be empty"
    assert reason(Namespace.from_wire({"name": "a/b"})) == "name: cannot contain spaces or special characters"


def test_apikey_round_trip() -> None:
    wire = {"metadata": {"name": "5c9a1d26-6bd4-4d3f-9a2b-3e6a8d4f2c11", "created_by": "admin"},
            "username": "alice", "created_at": 1700000000}
    key = APIKey.from_wire(wire)
    key.validate()
    assert key.to_wire() == wire
    assert APIKey.from_store(key.to_store()) == key
    assert apikey_fields(key) == {"api_key.name": "5c9a1d26-6bd4-4d3f-9a2b-3e6a8d4f2c11", "api_key.username": "alice"}


def test_apikey_rules() -> None:
    assert reason(APIKey.from_wire({"username": "a"})) == "metadata.name: must not be empty"
    assert reason(APIKey.from_wire({"metadata": {"name": "k"}})) == "username: must not be empty"
    assert reason(APIKey.from_wire({"metadata": {"name": "k", "namespace": "d"}, "username": "a"})) == (
        "metadata.namespace: must be empty for an API key"
    )


def test_tessen() -> None:
    assert TessenConfig.from_wire({}).to_wire() == {"opt_out": False}
    t = TessenConfig.from_wire({"opt_out": True})
    t.validate()
    assert t.to_wire() == {"opt_out": True}
    with pytest.raises(WireTypeError) as info:
        TessenConfig.from_wire({"opt_out": "yes"})
    assert info.value.reason == "opt_out: expected a boolean, got string"
