"""Event: spec §2.5 shape and validation, runtime §5.3 fields, redaction, selectors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from core.resources import REDACTED, Event, ValidationError, WireTypeError, event_labels
from core.resources.event import Check, event_fields, is_silenced

from .test_resources_check import SPEC_EXAMPLE as CHECK_WIRE
from .test_resources_entity import MINIMAL_WIRE as ENTITY_WIRE

RESULT_CHECK: dict[str, Any] = {
    **CHECK_WIRE,
    "metadata": {"name": "cpu", "namespace": "default", "labels": {"tier": "web"}},
    "duration": 1.5,
    "executed": 1700000000,
    "history": [{"status": 0, "executed": 1699999940}, {"status": 2, "executed": 1700000000}],
    "issued": 1699999999,
    "output": "CRITICAL",
    "state": "failing",
    "status": 2,
    "total_state_change": 0,
    "last_ok": 1699999940,
    "occurrences": 1,
    "occurrences_watermark": 1,
    "silenced": ["linux:*"],
    "hooks": [{"metadata": {"name": "ps", "namespace": "default"}, "command": "ps aux", "timeout": 10,
               "stdin": False, "runtime_assets": None, "duration": 0.1, "executed": 1700000001,
               "issued": 1700000000, "output": "...", "status": 0}],
    "is_silenced": True,
    "scheduler": "etcd",
    "processed_by": "web01",
}

EVENT_WIRE: dict[str, Any] = {
    "timestamp": 1700000001,
    "entity": {**ENTITY_WIRE, "metadata": {"name": "web01", "namespace": "default", "labels": {"region": "eu"}}},
    "check": RESULT_CHECK,
    "metadata": {"namespace": "default"},
    "id": "3f1c8f0e-5a9b-4d62-9c1e-2b1f0f6d7a11",
    "sequence": 7,
    "pipelines": None,
}

METRICS = {
    "handlers": ["influx"],
    "points": [{"name": "cpu.idle", "value": 99.5, "timestamp": 1700000000, "tags": [{"name": "cpu", "value": "0"}]},
               {"name": "cpu.user", "value": 1, "timestamp": 1700000000, "tags": None}],
}


def event(**overrides: Any) -> Event:
    data = copy.deepcopy(EVENT_WIRE)
    data.update(overrides)
    return Event.from_wire(data)


def reason(e: Event) -> str:
    with pytest.raises(ValidationError) as info:
        e.validate()
    return info.value.reason


def test_round_trip() -> None:
    e = Event.from_wire(EVENT_WIRE)
    e.validate()
    assert e.to_wire() == EVENT_WIRE
    assert Event.from_store(e.to_store()) == e


def test_metrics_round_trip_and_int_value_becomes_float() -> None:
    e = event(metrics=METRICS)
    wire = e.to_wire()
    assert wire["metrics"]["points"][1]["value"] == 1.0
    assert isinstance(wire["metrics"]["points"][1]["value"], float)
    assert wire["metrics"] == METRICS


def test_metrics_only_event_is_valid() -> None:
    data = copy.deepcopy(EVENT_WIRE)
    del data["check"]
    data["metrics"] = METRICS
    e = Event.from_wire(data)
    e.validate()
    assert "check" not in e.to_wire()


def test_null_id_and_missing_parts() -> None:
    wire = Event.from_wire({"metadata": {"namespace": "default"}}).to_wire()
    assert wire == {"metadata": {"namespace": "default"}, "id": None, "sequence": 0, "pipelines": None}


def test_result_check_keeps_omitempty_rules() -> None:
    c = Check.from_wire({"metadata": {"name": "cpu"}})
    wire = c.to_wire()
    for key in ("duration", "state", "silenced", "hooks", "processed_by"):
        assert key not in wire
    for key in ("executed", "history", "issued", "output", "status", "total_state_change", "last_ok",
                "occurrences", "occurrences_watermark", "is_silenced", "scheduler"):
        assert key in wire
    assert wire["subscriptions"] == [] and wire["handlers"] == []


def test_ansible_event_module_payload_is_accepted() -> None:
    # A whole CheckConfig (as fetched) plus check_attributes, and unknown keys.
    check = {**CHECK_WIRE, "status": 1, "output": "warn", "whatever": 1}
    e = Event.from_wire({"metadata": {"namespace": "default"}, "entity": ENTITY_WIRE, "check": check})
    e.validate()
    assert e.check is not None and e.check.status == 1


def test_entity_is_redacted_on_the_wire_only() -> None:
    data = copy.deepcopy(EVENT_WIRE)
    data["entity"]["metadata"]["labels"] = {"secret": "s3"}
    e = Event.from_wire(data)
    assert e.to_wire()["entity"]["metadata"]["labels"] == {"secret": REDACTED}
    assert e.to_store()["entity"]["metadata"]["labels"] == {"secret": "s3"}


def test_wrong_type_in_check() -> None:
    with pytest.raises(WireTypeError) as info:
        event(check={**RESULT_CHECK, "status": "2"})
    assert info.value.reason == "check.status: expected an integer, got string"


def test_wrong_type_in_history() -> None:
    with pytest.raises(WireTypeError) as info:
        event(check={**RESULT_CHECK, "history": [{"status": -1}]})
    assert info.value.reason == "check.history[0].status: -1 is out of range for uint32"


# --- validation -------------------------------------------------------------------------------

def test_entity_required() -> None:
    assert reason(event(entity=None)) == "event must contain an entity"


def test_check_or_metrics_required() -> None:
    assert reason(event(check=None)) == "must have check or metrics"


def test_entity_errors_are_prefixed() -> None:
    assert reason(event(entity={**ENTITY_WIRE, "entity_class": ""})) == "entity.entity_class: must not be empty"


def test_check_errors_are_prefixed() -> None:
    assert reason(event(check={**RESULT_CHECK, "interval": 0})) == (
        "check.interval: must be greater than 0 when cron is not set"
    )


def test_schedule_not_required_when_not_published() -> None:
    event(check={**RESULT_CHECK, "interval": 0, "publish": False}).validate()


def test_ttl_minimum_for_event_checks() -> None:
    assert reason(event(check={**RESULT_CHECK, "interval": 1, "ttl": 3})) == "check.ttl: must be at least 5 seconds"


def test_ttl_must_exceed_interval() -> None:
    assert reason(event(check={**RESULT_CHECK, "ttl": 60})) == "check.ttl: must be greater than interval"


def test_events_cannot_be_named() -> None:
    assert reason(event(metadata={"namespace": "default", "name": "x"})) == "events cannot be named"


def test_id_must_be_uuid() -> None:
    assert reason(event(id="not-a-uuid")) == "id: must be a UUID"


def test_empty_id_is_none() -> None:
    assert event(id="").id is None


def test_labels_are_merged() -> None:
    e = event(metadata={"namespace": "default", "labels": {"region": "us", "own": "1"}})
    assert event_labels(e) == {"region": "eu", "own": "1", "tier": "web"}


def test_fields() -> None:
    fields = event_fields(Event.from_wire(EVENT_WIRE))
    assert fields["event.is_silenced"] == "true"
    assert fields["event.check.is_silenced"] == "true"
    assert fields["event.check.name"] == "cpu"
    assert fields["event.check.status"] == "2"
    assert fields["event.check.state"] == "failing"
    assert fields["event.check.subscriptions"] == "linux"
    assert fields["event.check.publish"] == "true"
    assert fields["event.entity.name"] == "web01"
    assert fields["event.entity.entity_class"] == "proxy"
    assert fields["event.entity.deregister"] == "false"
    assert fields["event.namespace"] == "default"
    assert fields["event.labels.tier"] == "web"


def test_fields_of_metrics_only_event() -> None:
    fields = event_fields(Event.from_wire({"metadata": {"namespace": "n"}}))
    assert fields["event.check.name"] == "" and fields["event.is_silenced"] == "false"


@pytest.mark.parametrize("wire", [
    EVENT_WIRE,
    {**EVENT_WIRE, "check": {**RESULT_CHECK, "silenced": []}},
    {"metadata": {"namespace": "n"}, "metrics": {"points": []}},
])
def test_typed_is_silenced_agrees_with_the_predicate(wire: dict[str, Any]) -> None:
    ev = Event.from_wire(wire)
    assert ev.is_silenced == is_silenced(ev.to_store()) == is_silenced(wire)
