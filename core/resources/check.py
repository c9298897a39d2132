"""Checks (``CheckConfig``, spec §2.2): what to run, where, and how often.

The event's ``check`` (:class:`core.resources.event.Check`) extends this class with
the result fields, so both share decoding, validation and wire shape.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self

from .common import (
    MetricTag,
    ResourceReference,
    Secret,
    TimeWindowWhen,
    bool_field,
    join_field,
    refs_to_wire,
    secrets_to_wire,
    tags_to_wire,
    validate_env_vars,
    validate_runtime_assets,
    validate_secrets,
)
from ..cron import cron_error
from .errors import ValidationError, WireTypeError
from .meta import (
    NAME_RE,
    ObjectMeta,
    WireReader,
    check_optional_name,
    clean_str,
    decode_meta,
    decode_str_list,
    list_or_none,
)

__all__ = [
    "CHECK_HOOK_TYPES",
    "OUTPUT_METRIC_FORMATS",
    "SUBDUE_REPEATS",
    "CheckConfig",
    "HookList",
    "MetricThreshold",
    "MetricThresholdRule",
    "ProxyRequests",
    "Subdue",
    "check_fields",
]

OUTPUT_METRIC_FORMATS: Final = frozenset(
    {"", "nagios_perfdata", "graphite_plaintext", "influxdb_line", "opentsdb_line", "prometheus_text"}
)

CHECK_HOOK_TYPES: Final = frozenset({"ok", "warning", "critical", "unknown", "non-zero"} | {str(i) for i in range(256)})
"""Hook list types: an exit status ``0``-``255`` or a severity name (spec §2.2)."""

SUBDUE_REPEATS: Final = frozenset(
    {"annually", "monthly", "weekly", "weekdays", "weekends", "daily",
     "sundays", "mondays", "tuesdays", "wednesdays", "thursdays", "fridays", "saturdays"}
)


@dataclass(slots=True, kw_only=True)
class HookList:
    """One ``check_hooks`` entry: on ``type`` (a status or severity), run ``hooks``.

    On the wire it is a one-key object, ``{"critical": ["h1"]}``, which is what Go emits
    and the Ansible ``check`` module sends.  ``{"type": ..., "hooks": [...]}`` is read too.
    """

    type: str = ""
    hooks: list[str] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        d = r.data
        if set(d) == {"type", "hooks"} and isinstance(d["type"], str):
            return cls(type=r.get_str("type"), hooks=r.get_str_list("hooks"))
        if len(d) != 1:
            raise WireTypeError(path, f"expected an object with exactly one key, got {len(d)} keys")
        ((hook_type, hooks),) = d.items()
        hook_type = clean_str(hook_type)
        return cls(type=hook_type, hooks=decode_str_list(hooks, f"{path}.{hook_type}"))

    def to_wire(self) -> dict[str, Any]:
        return {self.type: list_or_none(self.hooks)}

    def validate(self, path: str) -> None:
        if self.type not in CHECK_HOOK_TYPES:
            raise ValidationError(
                path, f"invalid hook type {self.type!r}: must be 0-255, ok, warning, critical, unknown or non-zero"
            )
        for i, name in enumerate(self.hooks or ()):
            if not NAME_RE.match(name):
                raise ValidationError(f"{path}.{self.type}[{i}]", "cannot contain spaces or special characters")


@dataclass(slots=True, kw_only=True)
class ProxyRequests:
    """Run the check once per entity matching ``entity_attributes`` (runtime §4.4)."""

    entity_attributes: list[str] | None = None
    splay: bool = False
    splay_coverage: int = 0

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            entity_attributes=r.get_str_list("entity_attributes"),
            splay=r.get_bool("splay"),
            splay_coverage=r.get_int("splay_coverage", "uint32"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "entity_attributes": list_or_none(self.entity_attributes),
            "splay": self.splay,
            "splay_coverage": self.splay_coverage,
        }

    def validate(self, path: str) -> None:
        if self.splay_coverage > 100:
            raise ValidationError(f"{path}.splay_coverage", "must be between 0 and 100")
        if self.splay and self.splay_coverage == 0:
            raise ValidationError(f"{path}.splay_coverage", "must be greater than 0 when splay is true")


def _parse_rfc3339(text: str) -> _dt.datetime | None:
    try:
        value = _dt.datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if value.tzinfo is None:
        return None
    return value


@dataclass(slots=True, kw_only=True)
class Subdue:
    """One ``subdues`` window (6.7+): RFC 3339 ``begin``/``end``, optional ``repeat``."""

    begin: str = ""
    end: str = ""
    repeat: list[str] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(begin=r.get_str("begin"), end=r.get_str("end"), repeat=r.get_str_list("repeat"))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"begin": self.begin, "end": self.end}
        if self.repeat is not None:
            out["repeat"] = list(self.repeat)
        return out

    def validate(self, path: str) -> None:
        begin = _parse_rfc3339(self.begin)
        if begin is None:
            raise ValidationError(f"{path}.begin", "must be an RFC 3339 time")
        end = _parse_rfc3339(self.end)
        if end is None:
            raise ValidationError(f"{path}.end", "must be an RFC 3339 time")
        if end < begin:
            raise ValidationError(f"{path}.end", "must not be before begin")
        for i, rep in enumerate(self.repeat or ()):
            if rep not in SUBDUE_REPEATS:
                raise ValidationError(f"{path}.repeat[{i}]", f"invalid repeat {rep!r}")


@dataclass(slots=True, kw_only=True)
class MetricThresholdRule:
    """``{"min","max","status","null_status"}``."""

    min: str = ""
    max: str = ""
    status: int = 0
    null_status: int = 0

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            min=r.get_str("min"),
            max=r.get_str("max"),
            status=r.get_int("status", "uint32"),
            null_status=r.get_int("null_status", "uint32"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {"min": self.min, "max": self.max, "status": self.status, "null_status": self.null_status}


@dataclass(slots=True, kw_only=True)
class MetricThreshold:
    """``{"name","tags","thresholds"}``: status rules for extracted metrics."""

    name: str = ""
    tags: list[MetricTag] | None = None
    thresholds: list[MetricThresholdRule] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            name=r.get_str("name"),
            tags=r.get_list("tags", MetricTag.from_wire),
            thresholds=r.get_list("thresholds", MetricThresholdRule.from_wire),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tags": tags_to_wire(self.tags),
            "thresholds": None if self.thresholds is None else [t.to_wire() for t in self.thresholds],
        }

    def validate(self, path: str) -> None:
        if not self.name:
            raise ValidationError(f"{path}.name", "must not be empty")
        if not self.thresholds:
            raise ValidationError(f"{path}.thresholds", "must not be empty")


@dataclass(slots=True, kw_only=True)
class CheckConfig:
    """A check definition.  ``interval``, ``timeout`` and the flap thresholds are uint32,
    ``ttl`` and ``max_output_size`` int64, as in Go."""

    KIND: ClassVar[str] = "CheckConfig"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    command: str = ""
    handlers: list[str] | None = None
    high_flap_threshold: int = 0
    interval: int = 0
    low_flap_threshold: int = 0
    publish: bool = False
    runtime_assets: list[str] | None = None
    subscriptions: list[str] | None = None
    proxy_entity_name: str = ""
    check_hooks: list[HookList] | None = None
    stdin: bool = False
    subdue: TimeWindowWhen | None = None
    cron: str = ""
    ttl: int = 0
    timeout: int = 0
    proxy_requests: ProxyRequests | None = None
    round_robin: bool = False
    output_metric_format: str = ""
    output_metric_handlers: list[str] | None = None
    output_metric_tags: list[MetricTag] | None = None
    output_metric_thresholds: list[MetricThreshold] | None = None
    env_vars: list[str] | None = None
    max_output_size: int = 0
    discard_output: bool = False
    secrets: list[Secret] | None = None
    subdues: list[Subdue] | None = None
    pipelines: list[ResourceReference] | None = None

    @classmethod
    def _config_kwargs(cls, r: WireReader) -> dict[str, Any]:
        """Decoded CheckConfig fields, shared with the event check's decoder."""
        return {
            "metadata": r.get_obj("metadata", decode_meta),
            "command": r.get_str("command"),
            "handlers": r.get_str_list("handlers"),
            "high_flap_threshold": r.get_int("high_flap_threshold", "uint32"),
            "interval": r.get_int("interval", "uint32"),
            "low_flap_threshold": r.get_int("low_flap_threshold", "uint32"),
            "publish": r.get_bool("publish"),
            "runtime_assets": r.get_str_list("runtime_assets"),
            "subscriptions": r.get_str_list("subscriptions"),
            "proxy_entity_name": r.get_str("proxy_entity_name"),
            "check_hooks": r.get_list("check_hooks", HookList.from_wire),
            "stdin": r.get_bool("stdin"),
            "subdue": r.get_optional_obj("subdue", TimeWindowWhen.from_wire),
            "cron": r.get_str("cron"),
            "ttl": r.get_int("ttl", "int64"),
            "timeout": r.get_int("timeout", "uint32"),
            "proxy_requests": r.get_optional_obj("proxy_requests", ProxyRequests.from_wire),
            "round_robin": r.get_bool("round_robin"),
            "output_metric_format": r.get_str("output_metric_format"),
            "output_metric_handlers": r.get_str_list("output_metric_handlers"),
            "output_metric_tags": r.get_list("output_metric_tags", MetricTag.from_wire),
            "output_metric_thresholds": r.get_list("output_metric_thresholds", MetricThreshold.from_wire),
            "env_vars": r.get_str_list("env_vars"),
            "max_output_size": r.get_int("max_output_size", "int64"),
            "discard_output": r.get_bool("discard_output"),
            "secrets": r.get_list("secrets", Secret.from_wire),
            "subdues": r.get_list("subdues", Subdue.from_wire),
            "pipelines": r.get_list("pipelines", ResourceReference.pipeline_ref),
        }

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        """Lenient decode (see :mod:`core.resources.meta`); raises :class:`WireTypeError`."""
        return cls(**cls._config_kwargs(WireReader(data, path)))

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        """The GET shape: always-present keys plus the non-empty omitempty ones.

        ``subscriptions``, ``handlers`` and ``pipelines`` are ``[]`` rather than ``null``
        (Go forces them); other lists come back exactly as stored.
        """
        out: dict[str, Any] = {}
        if self.command:
            out["command"] = self.command
        out["handlers"] = list(self.handlers or ())
        out["high_flap_threshold"] = self.high_flap_threshold
        out["interval"] = self.interval
        out["low_flap_threshold"] = self.low_flap_threshold
        out["publish"] = self.publish
        out["runtime_assets"] = list_or_none(self.runtime_assets)
        out["subscriptions"] = list(self.subscriptions or ())
        out["proxy_entity_name"] = self.proxy_entity_name
        out["check_hooks"] = None if self.check_hooks is None else [h.to_wire() for h in self.check_hooks]
        out["stdin"] = self.stdin
        out["subdue"] = None if self.subdue is None else self.subdue.to_wire()
        if self.cron:
            out["cron"] = self.cron
        out["ttl"] = self.ttl
        out["timeout"] = self.timeout
        if self.proxy_requests is not None:
            out["proxy_requests"] = self.proxy_requests.to_wire()
        out["round_robin"] = self.round_robin
        out["output_metric_format"] = self.output_metric_format
        out["output_metric_handlers"] = list_or_none(self.output_metric_handlers)
        if self.output_metric_tags:
            out["output_metric_tags"] = tags_to_wire(self.output_metric_tags)
        if self.output_metric_thresholds:
            out["output_metric_thresholds"] = [t.to_wire() for t in self.output_metric_thresholds]
        out["env_vars"] = list_or_none(self.env_vars)
        out["metadata"] = self.metadata.to_wire()
        if self.max_output_size:
            out["max_output_size"] = self.max_output_size
        if self.discard_output:
            out["discard_output"] = self.discard_output
        out["secrets"] = secrets_to_wire(self.secrets)
        if self.subdues:
            out["subdues"] = [s.to_wire() for s in self.subdues]
        out["pipelines"] = refs_to_wire(self.pipelines) or []
        return out

    def validate(self) -> None:
        """Spec §2.2 rules, first failure wins; raises :class:`ValidationError`."""
        self.metadata.validate(namespaced=True)
        self._validate_schedule(required=True)
        if self.ttl > 0 and self.ttl <= self.interval:
            raise ValidationError("ttl", "must be greater than interval")
        self._validate_common()

    def _validate_schedule(self, *, required: bool) -> None:
        if self.cron:
            if self.interval > 0:
                raise ValidationError("cron", "must only specify either an interval or a cron schedule")
            err = cron_error(self.cron)
            if err is not None:
                raise ValidationError("cron", f"invalid cron schedule: {err}")
        elif required and self.interval == 0:
            raise ValidationError("interval", "must be greater than 0 when cron is not set")

    def _validate_common(self) -> None:
        """The rules a stored check and an event's check share."""
        for i, sub in enumerate(self.subscriptions or ()):
            if not sub:
                raise ValidationError(f"subscriptions[{i}]", "must not be an empty string")
        validate_runtime_assets(self.runtime_assets)
        check_optional_name(self.proxy_entity_name, "proxy_entity_name")
        if self.proxy_requests is not None:
            self.proxy_requests.validate("proxy_requests")
        if self.output_metric_format not in OUTPUT_METRIC_FORMATS:
            raise ValidationError(
                "output_metric_format",
                f"invalid format {self.output_metric_format!r}: must be one of "
                + ", ".join(sorted(f for f in OUTPUT_METRIC_FORMATS if f)),
            )
        if self.low_flap_threshold and self.high_flap_threshold and self.low_flap_threshold >= self.high_flap_threshold:
            raise ValidationError("low_flap_threshold", "must be lower than high_flap_threshold")
        validate_env_vars(self.env_vars)
        if self.max_output_size < 0:
            raise ValidationError("max_output_size", "must be greater than or equal to 0")
        for i, hooks in enumerate(self.check_hooks or ()):
            hooks.validate(f"check_hooks[{i}]")
        validate_secrets(self.secrets)
        for i, window in enumerate(self.subdues or ()):
            window.validate(f"subdues[{i}]")
        for i, t in enumerate(self.output_metric_thresholds or ()):
            t.validate(f"output_metric_thresholds[{i}]")
        if self.subdue is not None:
            self.subdue.validate("subdue")
        for i, ref in enumerate(self.pipelines or ()):
            ref.validate(f"pipelines[{i}]")


def check_fields(check: CheckConfig) -> dict[str, str]:
    """Field-selector values of a check (spec §1.9)."""
    fields = {
        "check.name": check.metadata.name,
        "check.namespace": check.metadata.namespace,
        "check.handlers": join_field(check.handlers),
        "check.publish": bool_field(check.publish),
        "check.round_robin": bool_field(check.round_robin),
        "check.runtime_assets": join_field(check.runtime_assets),
        "check.subscriptions": join_field(check.subscriptions),
        "check.pipelines": ",".join(p.resource_id() for p in check.pipelines or ()),
    }
    for k, v in check.metadata.labels.items():
        fields[f"check.labels.{k}"] = v
    return fields
