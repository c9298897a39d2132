"""Event filters (spec §2.7): allow or deny events by JavaScript expressions and time windows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self

from .common import TimeWindowWhen, join_field, validate_js_expressions, validate_runtime_assets
from .errors import ValidationError
from .meta import ObjectMeta, WireReader, decode_meta, list_or_none

__all__ = ["BUILTIN_FILTERS", "FILTER_ACTIONS", "EventFilter", "filter_fields"]

FILTER_ACTIONS: Final = frozenset({"allow", "deny"})

BUILTIN_FILTERS: Final = frozenset({"is_incident", "not_silenced", "has_metrics"})
"""Filters a handler may name without storing them (spec §2.7)."""


@dataclass(slots=True, kw_only=True)
class EventFilter:
    """``action`` has no default: a filter without one is refused."""

    KIND: ClassVar[str] = "EventFilter"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    action: str = ""
    expressions: list[str] | None = None
    runtime_assets: list[str] | None = None
    when: TimeWindowWhen | None = None

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            action=r.get_str("action"),
            expressions=r.get_str_list("expressions"),
            runtime_assets=r.get_str_list("runtime_assets"),
            when=r.get_optional_obj("when", TimeWindowWhen.from_wire),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "metadata": self.metadata.to_wire(),
            "action": self.action,
            "expressions": list_or_none(self.expressions),
            "runtime_assets": list_or_none(self.runtime_assets),
        }
        if self.when is not None:
            out["when"] = self.when.to_wire()
        return out

    def validate(self) -> None:
        self.metadata.validate(namespaced=True)
        if self.action not in FILTER_ACTIONS:
            raise ValidationError("action", f'must be "allow" or "deny", got {self.action!r}')
        if not self.expressions:
            raise ValidationError("expressions", "must contain at least one expression")
        validate_js_expressions(self.expressions, "expressions")
        validate_runtime_assets(self.runtime_assets)
        if self.when is not None:
            self.when.validate("when")


def filter_fields(flt: EventFilter) -> dict[str, str]:
    """Field-selector values of a filter (spec §1.9)."""
    fields = {
        "filter.name": flt.metadata.name,
        "filter.namespace": flt.metadata.namespace,
        "filter.action": flt.action,
        "filter.runtime_assets": join_field(flt.runtime_assets),
    }
    for k, v in flt.metadata.labels.items():
        fields[f"filter.labels.{k}"] = v
    return fields
