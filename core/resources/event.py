"""Events (spec §2.5, runtime §5.3): an entity, a check result and/or metrics.

An event's ``check`` is a :class:`Check`: every CheckConfig field plus the result and
state fields eventd maintains.  Events have no name of their own; they are keyed by
``(namespace, entity, check)``.

The event predicates (:func:`is_incident`, :func:`is_resolution`, :func:`is_silenced`,
:func:`has_metrics`, ...; Go's ``Event.IsIncident()`` and friends) are defined here, once,
on the wire form (``Event.to_store()``): that is the shape eventd, the pipeline, the
built-in filters and the JavaScript filters work on, and decoding an event into
:class:`Event` just to ask a question would cost more than the answer.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, ClassVar, Final, Literal, Self

from .check import CheckConfig
from .common import (
    MetricTag,
    ResourceReference,
    bool_field,
    join_field,
    refs_to_wire,
    tags_to_wire,
)
from .entity import Entity
from .errors import ValidationError
from .hook import Hook
from .meta import ObjectMeta, WireReader, check_name, decode_meta, list_or_none

__all__ = [
    "CHECK_STATES",
    "HISTORY_LENGTH",
    "STATE_FAILING",
    "STATE_FLAPPING",
    "STATE_PASSING",
    "Check",
    "CheckHistory",
    "Event",
    "MetricPoint",
    "Metrics",
    "event_fields",
    "event_labels",
    "has_check",
    "has_metrics",
    "is_flapping_end",
    "is_flapping_start",
    "is_incident",
    "is_resolution",
    "is_silenced",
]

HISTORY_LENGTH: Final = 21
"""Entries kept in ``check.history`` (runtime §5.2)."""

CheckState = Literal["passing", "failing", "flapping"]
STATE_PASSING: Final = "passing"
STATE_FAILING: Final = "failing"
STATE_FLAPPING: Final = "flapping"
CHECK_STATES: Final = frozenset({STATE_PASSING, STATE_FAILING, STATE_FLAPPING})


@dataclass(slots=True, kw_only=True)
class CheckHistory:
    """``{"status","executed"}``: one past result."""

    status: int = 0
    executed: int = 0

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(status=r.get_int("status", "uint32"), executed=r.get_int("executed", "int64"))

    def to_wire(self) -> dict[str, Any]:
        return {"status": self.status, "executed": self.executed}


@dataclass(slots=True, kw_only=True)
class Check(CheckConfig):
    """An event's check: the configuration it ran with, plus its result and state."""

    KIND: ClassVar[str] = "Check"

    duration: float = 0.0
    executed: int = 0
    history: list[CheckHistory] | None = None
    issued: int = 0
    output: str = ""
    state: str = ""
    status: int = 0
    total_state_change: int = 0
    last_ok: int = 0
    occurrences: int = 0
    occurrences_watermark: int = 0
    silenced: list[str] | None = None
    hooks: list[Hook] | None = None
    is_silenced: bool = False
    scheduler: str = ""
    processed_by: str = ""

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            **cls._config_kwargs(r),
            duration=r.get_float("duration"),
            executed=r.get_int("executed", "int64"),
            history=r.get_list("history", CheckHistory.from_wire),
            issued=r.get_int("issued", "int64"),
            output=r.get_str("output"),
            state=r.get_str("state"),
            status=r.get_int("status", "uint32"),
            total_state_change=r.get_int("total_state_change", "uint32"),
            last_ok=r.get_int("last_ok", "int64"),
            occurrences=r.get_int("occurrences", "int64"),
            occurrences_watermark=r.get_int("occurrences_watermark", "int64"),
            silenced=r.get_str_list("silenced"),
            hooks=r.get_list("hooks", Hook.decode),
            is_silenced=r.get_bool("is_silenced"),
            scheduler=r.get_str("scheduler"),
            processed_by=r.get_str("processed_by"),
        )

    @classmethod
    def decode(cls, data: Any, path: str) -> Self:
        return cls.from_wire(data, path=path)

    @classmethod
    def from_config(cls, config: CheckConfig) -> Self:
        """A result-less check copied from a stored CheckConfig (what agents receive)."""
        return cls.from_wire(config.to_wire())

    def to_wire(self) -> dict[str, Any]:
        out = CheckConfig.to_wire(self)
        if self.duration:
            out["duration"] = self.duration
        out["executed"] = self.executed
        out["history"] = None if self.history is None else [h.to_wire() for h in self.history]
        out["issued"] = self.issued
        out["output"] = self.output
        if self.state:
            out["state"] = self.state
        out["status"] = self.status
        out["total_state_change"] = self.total_state_change
        out["last_ok"] = self.last_ok
        out["occurrences"] = self.occurrences
        out["occurrences_watermark"] = self.occurrences_watermark
        if self.silenced:
            out["silenced"] = list(self.silenced)
        if self.hooks:
            out["hooks"] = [h.to_wire() for h in self.hooks]
        out["is_silenced"] = self.is_silenced
        out["scheduler"] = self.scheduler
        if self.processed_by:
            out["processed_by"] = self.processed_by
        return out

    def validate(self) -> None:
        """CheckConfig rules, except that the schedule is only required when
        ``publish`` is true, the namespace is not required (eventd fills it from the
        URL), and a set ``ttl`` must also be at least 5 (spec §2.5 step 3)."""
        check_name(self.metadata.name, "metadata.name")
        if self.publish:
            self._validate_schedule(required=True)
        if self.ttl > 0 and self.ttl <= self.interval:
            raise ValidationError("ttl", "must be greater than interval")
        if self.ttl > 0 and self.ttl < 5:
            raise ValidationError("ttl", "must be at least 5 seconds")
        self._validate_common()


@dataclass(slots=True, kw_only=True)
class MetricPoint:
    """``{"name","value","timestamp","tags"}``; ``timestamp`` is kept as the producer
    sent it (Go does not convert it)."""

    name: str = ""
    value: float = 0.0
    timestamp: int = 0
    tags: list[MetricTag] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            name=r.get_str("name"),
            value=r.get_float("value"),
            timestamp=r.get_int("timestamp", "int64"),
            tags=r.get_list("tags", MetricTag.from_wire),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value, "timestamp": self.timestamp, "tags": tags_to_wire(self.tags)}


@dataclass(slots=True, kw_only=True)
class Metrics:
    """``{"handlers","points"}``: metrics riding on an event."""

    handlers: list[str] | None = None
    points: list[MetricPoint] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(handlers=r.get_str_list("handlers"), points=r.get_list("points", MetricPoint.from_wire))

    def to_wire(self) -> dict[str, Any]:
        return {
            "handlers": list_or_none(self.handlers),
            "points": None if self.points is None else [p.to_wire() for p in self.points],
        }


@dataclass(slots=True, kw_only=True)
class Event:
    """An entity plus a check result and/or metrics.

    ``id`` is a UUID string or ``None`` (``null`` on the wire until eventd assigns one).
    """

    KIND: ClassVar[str] = "Event"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    timestamp: int = 0
    entity: Entity | None = None
    check: Check | None = None
    metrics: Metrics | None = None
    id: str | None = None
    sequence: int = 0
    pipelines: list[ResourceReference] | None = None

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        event_id = r.get_str("id")
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            timestamp=r.get_int("timestamp", "int64"),
            entity=r.get_optional_obj("entity", Entity.decode),
            check=r.get_optional_obj("check", Check.decode),
            metrics=r.get_optional_obj("metrics", Metrics.from_wire),
            id=event_id or None,
            sequence=r.get_int("sequence", "int64"),
            pipelines=r.get_list("pipelines", ResourceReference.pipeline_ref),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        """Like :meth:`to_wire` but with the entity unredacted."""
        return self._shape(redact=False)

    def to_wire(self) -> dict[str, Any]:
        """The GET shape; the entity is always shown redacted (runtime §5.3)."""
        return self._shape(redact=True)

    def _shape(self, *, redact: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.timestamp:
            out["timestamp"] = self.timestamp
        if self.entity is not None:
            out["entity"] = self.entity.to_wire() if redact else self.entity.to_store()
        if self.check is not None:
            out["check"] = self.check.to_wire()
        if self.metrics is not None:
            out["metrics"] = self.metrics.to_wire()
        out["metadata"] = self.metadata.to_wire()
        out["id"] = self.id
        out["sequence"] = self.sequence
        out["pipelines"] = refs_to_wire(self.pipelines)
        return out

    def validate(self) -> None:
        """Spec §2.5 step 3 (after the URL defaults of step 1-2 were applied)."""
        if self.entity is None:
            raise ValidationError("entity", "event must contain an entity", verbatim=True)
        if self.check is None and self.metrics is None:
            raise ValidationError("check", "must have check or metrics", verbatim=True)
        try:
            self.entity.validate()
        except ValidationError as e:
            raise e.nested("entity") from None
        if self.check is not None:
            try:
                self.check.validate()
            except ValidationError as e:
                raise e.nested("check") from None
        if self.metadata.name:
            raise ValidationError("metadata.name", "events cannot be named", verbatim=True)
        if self.id is not None:
            try:
                uuid.UUID(self.id)
            except ValueError:
                raise ValidationError("id", "must be a UUID") from None
        for i, ref in enumerate(self.pipelines or ()):
            ref.validate(f"pipelines[{i}]")

    @property
    def entity_name(self) -> str:
        return "" if self.entity is None else self.entity.metadata.name

    @property
    def check_name(self) -> str:
        return "" if self.check is None else self.check.metadata.name

    @property
    def is_silenced(self) -> bool:
        """:func:`is_silenced` for a decoded event (the field selectors' ``event.is_silenced``)."""
        return self.check is not None and bool(self.check.silenced)


# --------------------------------------------------------------------------- predicates (wire form)


def has_check(event: Mapping[str, Any]) -> bool:
    """True when the event carries a check (metrics-only events do not)."""
    return bool(event.get("check"))


def has_metrics(event: Mapping[str, Any]) -> bool:
    """True when the event carries a ``metrics`` object, even an empty one (Go: non-nil)."""
    return event.get("metrics") is not None


def _status(entry: Mapping[str, Any] | None) -> int:
    return int(entry.get("status") or 0) if entry else 0


def _history(event: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    check = event.get("check") or {}
    return list(check.get("history") or [])


def is_incident(event: Mapping[str, Any]) -> bool:
    """A check event whose current status is non-zero (warning, critical or unknown)."""
    if not has_check(event):
        return False
    return _status(event["check"]) != 0


def is_resolution(event: Mapping[str, Any]) -> bool:
    """The previous history entry was non-zero and the current status is 0.

    Evaluated on the *merged* event, whose history already ends with the current result.
    """
    if not has_check(event):
        return False
    history = _history(event)
    return len(history) > 1 and _status(history[-2]) != 0 and not is_incident(event)


def is_flapping_start(event: Mapping[str, Any]) -> bool:
    """State is ``flapping`` and history has at least two entries.

    Go compares against the previous entry's flapping marker, which it never records, so
    every flapping result counts as a "start" (runtime.md §5.2).
    """
    if not has_check(event):
        return False
    return event["check"].get("state") == STATE_FLAPPING and len(_history(event)) >= 2


def is_flapping_end(event: Mapping[str, Any]) -> bool:
    """Always False: the reference never records the per-entry flapping marker it needs."""
    return False


def is_silenced(event: Mapping[str, Any]) -> bool:
    """True when ``check.silenced`` lists at least one entry (what ``not_silenced`` tests)."""
    if not has_check(event):
        return False
    return bool(event["check"].get("silenced"))


def event_labels(event: Event) -> dict[str, str]:
    """Labels a label selector sees: the event's, then the entity's, then the check's."""
    labels = dict(event.metadata.labels)
    if event.entity is not None:
        labels.update(event.entity.metadata.labels)
    if event.check is not None:
        labels.update(event.check.metadata.labels)
    return labels


def event_fields(event: Event) -> dict[str, str]:
    """Field-selector values of an event (spec §1.9), as Go computes them."""
    check = event.check or Check()
    entity = event.entity or Entity()
    silenced = bool_field(event.is_silenced)
    fields = {
        "event.name": event.metadata.name,
        "event.namespace": event.metadata.namespace,
        "event.is_silenced": silenced,
        "event.check.is_silenced": silenced,
        "event.check.name": check.metadata.name,
        "event.check.handlers": join_field(check.handlers),
        "event.check.publish": bool_field(check.publish),
        "event.check.round_robin": bool_field(check.round_robin),
        "event.check.runtime_assets": join_field(check.runtime_assets),
        "event.check.state": check.state,
        "event.check.status": str(check.status),
        "event.check.subscriptions": join_field(check.subscriptions),
        "event.entity.deregister": bool_field(entity.deregister),
        "event.entity.name": entity.metadata.name,
        "event.entity.entity_class": entity.entity_class,
        "event.entity.subscriptions": join_field(entity.subscriptions),
    }
    for k, v in event_labels(event).items():
        fields[f"event.labels.{k}"] = v
    return fields
