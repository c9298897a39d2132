"""Pipelines (spec §2.11): named workflows of filters, a mutator and a handler.

The community edition accepts only ``core/v2`` references; the enterprise handler types
(``pipeline/v1`` ``TCPStreamHandler``, ``SumoLogicMetricsHandler``) are refused with a 400.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self

from .common import ResourceReference, refs_to_wire
from .errors import ValidationError
from .meta import ObjectMeta, WireReader, check_name, decode_meta

__all__ = ["PipelineWorkflow", "Pipeline", "pipeline_fields"]

_CORE_V2: Final = "core/v2"


def _check_ref_kind(ref: ResourceReference, path: str, kind: str) -> None:
    ref.validate(path)
    if ref.api_version != _CORE_V2 or ref.type != kind:
        raise ValidationError(
            path,
            f"unsupported reference {ref.api_version}.{ref.type}: only {_CORE_V2}.{kind} is supported",
        )


@dataclass(slots=True, kw_only=True)
class PipelineWorkflow:
    """``{"name","filters"?,"mutator"?,"handler"}``; filters and mutator are omitted when absent."""

    name: str = ""
    filters: list[ResourceReference] | None = None
    mutator: ResourceReference | None = None
    handler: ResourceReference | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            name=r.get_str("name"),
            filters=r.get_list("filters", ResourceReference.from_wire),
            mutator=r.get_optional_obj("mutator", ResourceReference.from_wire),
            handler=r.get_optional_obj("handler", ResourceReference.from_wire),
        )

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name}
        if self.filters:
            out["filters"] = refs_to_wire(self.filters)
        if self.mutator is not None:
            out["mutator"] = self.mutator.to_wire()
        out["handler"] = None if self.handler is None else self.handler.to_wire()
        return out

    def validate(self, path: str) -> None:
        check_name(self.name, f"{path}.name")
        for i, ref in enumerate(self.filters or ()):
            _check_ref_kind(ref, f"{path}.filters[{i}]", "EventFilter")
        if self.mutator is not None:
            _check_ref_kind(self.mutator, f"{path}.mutator", "Mutator")
        if self.handler is None:
            raise ValidationError(f"{path}.handler", "must be set")
        _check_ref_kind(self.handler, f"{path}.handler", "Handler")


@dataclass(slots=True, kw_only=True)
class Pipeline:
    KIND: ClassVar[str] = "Pipeline"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    workflows: list[PipelineWorkflow] | None = None

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            workflows=r.get_list("workflows", PipelineWorkflow.from_wire),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        return {
            "metadata": self.metadata.to_wire(),
            "workflows": None if self.workflows is None else [w.to_wire() for w in self.workflows],
        }

    def validate(self) -> None:
        self.metadata.validate(namespaced=True)
        for i, wf in enumerate(self.workflows or ()):
            wf.validate(f"workflows[{i}]")


def pipeline_fields(pipeline: Pipeline) -> dict[str, str]:
    """Field-selector values of a pipeline (spec §1.9)."""
    fields = {"pipeline.name": pipeline.metadata.name, "pipeline.namespace": pipeline.metadata.namespace}
    for k, v in pipeline.metadata.labels.items():
        fields[f"pipeline.labels.{k}"] = v
    return fields
