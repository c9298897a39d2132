"""Entity: spec §2.4 shape, rules, redaction, lenient decoding."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.resources import DEFAULT_REDACT, REDACTED, Entity, ValidationError, WireTypeError, redact_map
from core.resources.entity import entity_fields, entity_subscription

MINIMAL_WIRE: dict[str, Any] = {
    "entity_class": "proxy",
    "system": {"network": {"interfaces": None}, "libc_type": "", "vm_system": "", "vm_role": "",
               "cloud_provider": "", "processes": None},
    "subscriptions": None,
    "last_seen": 0,
    "deregister": False,
    "deregistration": {},
    "metadata": {"name": "web01", "namespace": "default"},
    "sensu_agent_version": "",
}

AGENT_WIRE: dict[str, Any] = {
    "entity_class": "agent",
    "system": {
        "hostname": "web01", "os": "linux", "platform": "ubuntu", "platform_family": "debian",
        "platform_version": "22.04",
        "network": {"interfaces": [{"name": "lo", "addresses": ["127.0.0.1/8"]},
                                   {"name": "eth0", "mac": "aa:bb:cc:dd:ee:ff", "addresses": []}]},
        "arch": "arm", "arm_version": 7, "libc_type": "glibc", "vm_system": "kvm", "vm_role": "guest",
        "cloud_provider": "", "float_type": "hard", "processes": [{"name": "sensu-agent"}],
    },
    "subscriptions": ["linux", "entity:web01"],
    "last_seen": 1700000000,
    "deregister": True,
    "deregistration": {"handler": "dereg"},
    "user": "agent",
    "redact": ["password", "token"],
    "metadata": {"name": "web01", "namespace": "default", "labels": {"region": "eu"},
                 "annotations": {"team": "ops"}, "created_by": "agent"},
    "sensu_agent_version": "6.9.2",
    "keepalive_handlers": ["keepalive"],
}


def reason(e: Entity) -> str:
    with pytest.raises(ValidationError) as info:
        e.validate()
    return info.value.reason


def test_minimal_round_trip() -> None:
    e = Entity.from_wire(MINIMAL_WIRE)
    e.validate()
    assert e.to_wire() == MINIMAL_WIRE


def test_agent_round_trip() -> None:
    e = Entity.from_wire(AGENT_WIRE)
    e.validate()
    assert e.to_wire() == AGENT_WIRE
    assert Entity.from_store(e.to_store()) == e


def test_always_keys_present_from_empty_object() -> None:
    wire = Entity.from_wire({}).to_wire()
    assert wire == {**MINIMAL_WIRE, "entity_class": "", "metadata": {}}


def test_unknown_system_keys_are_dropped() -> None:
    e = Entity.from_wire({**AGENT_WIRE, "system": {**AGENT_WIRE["system"], "cpu_count": 4}})
    assert "cpu_count" not in e.to_wire()["system"]


def test_wrong_type_in_nested_system() -> None:
    with pytest.raises(WireTypeError) as info:
        Entity.from_wire({"system": {"network": {"interfaces": [{"addresses": "x"}]}}})
    assert info.value.reason == "system.network.interfaces[0].addresses: expected an array, got string"


def test_entity_class_required() -> None:
    assert reason(Entity.from_wire({**MINIMAL_WIRE, "entity_class": ""})) == "entity_class: must not be empty"


def test_entity_class_regex() -> None:
    assert reason(Entity.from_wire({**MINIMAL_WIRE, "entity_class": "a/b"})) == (
        "entity_class: cannot contain spaces or special characters"
    )


def test_name_regex() -> None:
    data = copy.deepcopy(MINIMAL_WIRE)
    data["metadata"]["name"] = "web 01"
    assert reason(Entity.from_wire(data)) == "metadata.name: cannot contain spaces or special characters"


def test_namespace_required() -> None:
    data = copy.deepcopy(MINIMAL_WIRE)
    del data["metadata"]["namespace"]
    assert reason(Entity.from_wire(data)) == "metadata.namespace: must not be empty"


def test_redaction_with_default_list() -> None:
    data = copy.deepcopy(MINIMAL_WIRE)
    data["metadata"]["labels"] = {"password": "hunter2", "region": "eu"}
    data["metadata"]["annotations"] = {"API_KEY": "k", "note": "n"}
    e = Entity.from_wire(data)
    wire = e.to_wire()
    assert wire["metadata"]["labels"] == {"password": REDACTED, "region": "eu"}
    assert wire["metadata"]["annotations"] == {"API_KEY": REDACTED, "note": "n"}
    # the stored form keeps the real values
    assert e.to_store()["metadata"]["labels"]["password"] == "hunter2"
    assert e.metadata.labels["password"] == "hunter2"


def test_redaction_with_own_list_replaces_default() -> None:
    data = copy.deepcopy(MINIMAL_WIRE)
    data["redact"] = ["region"]
    data["metadata"]["labels"] = {"password": "hunter2", "region": "eu"}
    wire = Entity.from_wire(data).to_wire()
    assert wire["metadata"]["labels"] == {"password": "hunter2", "region": REDACTED}


def test_redact_map_and_defaults() -> None:
    assert "secret" in DEFAULT_REDACT and "private_key" in DEFAULT_REDACT
    assert redact_map({"Secret": "x", "a": "b"}, DEFAULT_REDACT) == {"Secret": REDACTED, "a": "b"}


def test_fields_and_subscription_helper() -> None:
    e = Entity.from_wire(AGENT_WIRE)
    assert entity_fields(e) == {
        "entity.name": "web01",
        "entity.namespace": "default",
        "entity.deregister": "true",
        "entity.entity_class": "agent",
        "entity.subscriptions": "linux,entity:web01",
        "entity.labels.region": "eu",
    }
    assert entity_subscription("web01") == "entity:web01"
