"""Pipeline: spec §2.11 (core/v2 references only in CE)."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import Pipeline, ValidationError
from core.resources.pipeline import pipeline_fields


def ref(kind: str, name: str, api: str = "core/v2") -> dict[str, str]:
    return {"name": name, "type": kind, "api_version": api}


WIRE: dict[str, Any] = {
    "metadata": {"name": "incidents", "namespace": "default"},
    "workflows": [
        {"name": "slack", "filters": [ref("EventFilter", "is_incident")], "mutator": ref("Mutator", "m"),
         "handler": ref("Handler", "slack")},
        {"name": "email", "handler": ref("Handler", "email")},
    ],
}


def reason(p: Pipeline) -> str:
    with pytest.raises(ValidationError) as info:
        p.validate()
    return info.value.reason


def workflow(**wf: Any) -> Pipeline:
    return Pipeline.from_wire({**WIRE, "workflows": [{"name": "w", "handler": ref("Handler", "h"), **wf}]})


def test_round_trip() -> None:
    p = Pipeline.from_wire(WIRE)
    p.validate()
    assert p.to_wire() == WIRE
    assert Pipeline.from_store(p.to_store()) == p


def test_workflows_null() -> None:
    assert Pipeline.from_wire({"metadata": {"name": "p"}}).to_wire()["workflows"] is None


def test_handler_required() -> None:
    assert reason(Pipeline.from_wire({**WIRE, "workflows": [{"name": "w"}]})) == (
        "workflows[0].handler: must be set"
    )


def test_workflow_name_regex() -> None:
    assert reason(workflow(name="a b")) == "workflows[0].name: cannot contain spaces or special characters"


def test_ref_fields_required() -> None:
    assert reason(workflow(handler={"name": "h", "type": "Handler"})) == (
        "workflows[0].handler.api_version: must not be empty"
    )
    assert reason(workflow(handler={"name": "h", "api_version": "core/v2"})) == (
        "workflows[0].handler.type: must not be empty"
    )


def test_enterprise_handlers_rejected() -> None:
    assert reason(workflow(handler=ref("TCPStreamHandler", "t", "pipeline/v1"))) == (
        "workflows[0].handler: unsupported reference pipeline/v1.TCPStreamHandler: only core/v2.Handler is supported"
    )


def test_filter_and_mutator_kinds() -> None:
    assert reason(workflow(filters=[ref("Handler", "x")])).startswith("workflows[0].filters[0]: unsupported")
    assert reason(workflow(mutator=ref("EventFilter", "x"))).startswith("workflows[0].mutator: unsupported")


def test_fields() -> None:
    assert pipeline_fields(Pipeline.from_wire(WIRE)) == {
        "pipeline.name": "incidents", "pipeline.namespace": "default",
    }
