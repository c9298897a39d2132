"""Small value types shared by several resources, and the shared field rules.

Secrets, resource references, metric tags and time windows appear in checks, handlers,
mutators, filters, events and pipelines; keeping one definition keeps their wire shapes
identical everywhere (Ansible compares them with ``==``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final, Self

from .errors import ValidationError
from .jscheck import js_syntax_error
from .meta import ASSET_NAME_RE, NAME_RE, WireReader

__all__ = [
    "WEEKDAYS",
    "MetricTag",
    "ResourceReference",
    "Secret",
    "TimeWindowDays",
    "TimeWindowTimeRange",
    "TimeWindowWhen",
    "bool_field",
    "join_field",
    "refs_to_wire",
    "secrets_to_wire",
    "tags_to_wire",
    "validate_env_vars",
    "validate_js_expressions",
    "validate_runtime_assets",
    "validate_secrets",
]

WEEKDAYS: Final = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")


def bool_field(value: bool) -> str:
    """Selector value of a boolean field (spec §1.9)."""
    return "true" if value else "false"


def join_field(values: list[str] | None) -> str:
    """Selector value of a list field: comma-joined (spec §1.9)."""
    return ",".join(values or ())


def validate_env_vars(env_vars: list[str] | None, path: str = "env_vars") -> None:
    """Each entry is ``KEY=VALUE`` with both sides non-empty (spec §2.2)."""
    for i, kv in enumerate(env_vars or ()):
        key, sep, value = kv.partition("=")
        if not sep or not key or not value:
            raise ValidationError(f"{path}[{i}]", f"{kv!r} must be of the form KEY=VALUE with a non-empty key and value")


def validate_runtime_assets(assets: list[str] | None, path: str = "runtime_assets") -> None:
    """Each entry matches the asset-name regex (spec §1.6)."""
    for i, name in enumerate(assets or ()):
        if not name:
            raise ValidationError(f"{path}[{i}]", "must not be empty")
        if not ASSET_NAME_RE.match(name):
            raise ValidationError(f"{path}[{i}]", "cannot contain spaces or special characters")


def validate_js_expressions(expressions: list[str] | None, path: str) -> None:
    """Each entry passes :func:`js_syntax_error`."""
    for i, expr in enumerate(expressions or ()):
        err = js_syntax_error(expr)
        if err is not None:
            raise ValidationError(f"{path}[{i}]", f"invalid expression: {err}")


@dataclass(slots=True, kw_only=True)
class Secret:
    """``{"name","secret"}``: an env var name and the secret that fills it."""

    name: str = ""
    secret: str = ""

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(name=r.get_str("name"), secret=r.get_str("secret"))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "secret": self.secret}

    def validate(self, path: str) -> None:
        if not self.name:
            raise ValidationError(f"{path}.name", "must not be empty")
        if not self.secret:
            raise ValidationError(f"{path}.secret", "must not be empty")


def validate_secrets(secrets: list[Secret] | None, path: str = "secrets") -> None:
    for i, s in enumerate(secrets or ()):
        s.validate(f"{path}[{i}]")


def secrets_to_wire(secrets: list[Secret] | None) -> list[dict[str, Any]] | None:
    return None if secrets is None else [s.to_wire() for s in secrets]


@dataclass(slots=True, kw_only=True)
class ResourceReference:
    """``{"name","type","api_version"}``: a pointer to a pipeline, filter, mutator or handler."""

    name: str = ""
    type: str = ""
    api_version: str = ""

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(name=r.get_str("name"), type=r.get_str("type"), api_version=r.get_str("api_version"))

    @classmethod
    def pipeline_ref(cls, data: Any, path: str = "") -> Self:
        """A check's or event's pipeline reference: ``type`` defaults to ``Pipeline`` and
        ``api_version`` to ``core/v2`` (spec §2.2)."""
        ref = cls.from_wire(data, path)
        if not ref.type:
            ref.type = "Pipeline"
        if not ref.api_version:
            ref.api_version = "core/v2"
        return ref

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "api_version": self.api_version}

    def validate(self, path: str) -> None:
        if not self.name:
            raise ValidationError(f"{path}.name", "must not be empty")
        if not NAME_RE.match(self.name):
            raise ValidationError(f"{path}.name", "cannot contain spaces or special characters")
        if not self.type:
            raise ValidationError(f"{path}.type", "must not be empty")
        if not self.api_version:
            raise ValidationError(f"{path}.api_version", "must not be empty")

    def resource_id(self) -> str:
        """``core/v2.Pipeline(Name=x)``: Go's identity string, used by ``check.pipelines`` selectors."""
        return f"{self.api_version}.{self.type}(Name={self.name})"


def refs_to_wire(refs: list[ResourceReference] | None) -> list[dict[str, Any]] | None:
    return None if refs is None else [r.to_wire() for r in refs]


@dataclass(slots=True, kw_only=True)
class MetricTag:
    """``{"name","value"}``: one dimension of a metric point."""

    name: str = ""
    value: str = ""

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(name=r.get_str("name"), value=r.get_str("value"))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name, "value": self.value}


def tags_to_wire(tags: list[MetricTag] | None) -> list[dict[str, Any]] | None:
    return None if tags is None else [t.to_wire() for t in tags]


@dataclass(slots=True, kw_only=True)
class TimeWindowTimeRange:
    """``{"begin","end"}`` in Go's kitchen format (``9:00AM``)."""

    begin: str = ""
    end: str = ""

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(begin=r.get_str("begin"), end=r.get_str("end"))

    def to_wire(self) -> dict[str, Any]:
        return {"begin": self.begin, "end": self.end}


@dataclass(slots=True, kw_only=True)
class TimeWindowDays:
    """Time ranges for ``all`` days and per weekday; empty days are omitted on the wire."""

    all: list[TimeWindowTimeRange] | None = None
    sunday: list[TimeWindowTimeRange] | None = None
    monday: list[TimeWindowTimeRange] | None = None
    tuesday: list[TimeWindowTimeRange] | None = None
    wednesday: list[TimeWindowTimeRange] | None = None
    thursday: list[TimeWindowTimeRange] | None = None
    friday: list[TimeWindowTimeRange] | None = None
    saturday: list[TimeWindowTimeRange] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        dec = TimeWindowTimeRange.from_wire
        return cls(
            all=r.get_list("all", dec),
            sunday=r.get_list("sunday", dec),
            monday=r.get_list("monday", dec),
            tuesday=r.get_list("tuesday", dec),
            wednesday=r.get_list("wednesday", dec),
            thursday=r.get_list("thursday", dec),
            friday=r.get_list("friday", dec),
            saturday=r.get_list("saturday", dec),
        )

    def by_day(self) -> dict[str, list[TimeWindowTimeRange] | None]:
        return {
            "all": self.all,
            "sunday": self.sunday,
            "monday": self.monday,
            "tuesday": self.tuesday,
            "wednesday": self.wednesday,
            "thursday": self.thursday,
            "friday": self.friday,
            "saturday": self.saturday,
        }

    def to_wire(self) -> dict[str, Any]:
        return {day: [r.to_wire() for r in ranges] for day, ranges in self.by_day().items() if ranges}


@dataclass(slots=True, kw_only=True)
class TimeWindowWhen:
    """``{"days": {...}}``: a filter's ``when`` and a check's legacy ``subdue``."""

    days: TimeWindowDays = field(default_factory=TimeWindowDays)

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(days=r.get_obj("days", TimeWindowDays.from_wire))

    def to_wire(self) -> dict[str, Any]:
        return {"days": self.days.to_wire()}

    def validate(self, path: str) -> None:
        """Shape only: every range names a begin and an end."""
        for day, ranges in self.days.by_day().items():
            for i, rng in enumerate(ranges or ()):
                where = f"{path}.days.{day}[{i}]"
                if not rng.begin:
                    raise ValidationError(f"{where}.begin", "must not be empty")
                if not rng.end:
                    raise ValidationError(f"{where}.end", "must not be empty")
