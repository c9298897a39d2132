"""Hooks (``HookConfig``, spec §2.3) and hook results carried in an event's check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from .common import validate_runtime_assets
from .errors import ValidationError
from .meta import ObjectMeta, WireReader, decode_meta, list_or_none

__all__ = ["Hook", "HookConfig", "hook_fields"]


@dataclass(slots=True, kw_only=True)
class HookConfig:
    """A command an agent runs after a check, chosen by the check's exit status."""

    KIND: ClassVar[str] = "HookConfig"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    command: str = ""
    timeout: int = 0
    stdin: bool = False
    runtime_assets: list[str] | None = None

    @classmethod
    def _config_kwargs(cls, r: WireReader) -> dict[str, Any]:
        return {
            "metadata": r.get_obj("metadata", decode_meta),
            "command": r.get_str("command"),
            "timeout": r.get_int("timeout", "uint32"),
            "stdin": r.get_bool("stdin"),
            "runtime_assets": r.get_str_list("runtime_assets"),
        }

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        return cls(**cls._config_kwargs(WireReader(data, path)))

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metadata": self.metadata.to_wire()}
        if self.command:
            out["command"] = self.command
        out["timeout"] = self.timeout
        out["stdin"] = self.stdin
        out["runtime_assets"] = list_or_none(self.runtime_assets)
        return out

    def validate(self) -> None:
        self.metadata.validate(namespaced=True)
        if not self.command:
            raise ValidationError("command", "must not be empty")
        if self.timeout <= 0:
            raise ValidationError("timeout", "must be greater than 0")
        validate_runtime_assets(self.runtime_assets)


@dataclass(slots=True, kw_only=True)
class Hook(HookConfig):
    """A hook's result inside ``event.check.hooks``: the config plus what happened."""

    KIND: ClassVar[str] = "Hook"

    duration: float = 0.0
    executed: int = 0
    issued: int = 0
    output: str = ""
    status: int = 0

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            **cls._config_kwargs(r),
            duration=r.get_float("duration"),
            executed=r.get_int("executed", "int64"),
            issued=r.get_int("issued", "int64"),
            output=r.get_str("output"),
            status=r.get_int("status", "int32"),
        )

    @classmethod
    def decode(cls, data: Any, path: str) -> Self:
        """Positional-path decoder for list fields."""
        return cls.from_wire(data, path=path)

    def to_wire(self) -> dict[str, Any]:
        out = HookConfig.to_wire(self)
        if self.duration:
            out["duration"] = self.duration
        out["executed"] = self.executed
        out["issued"] = self.issued
        if self.output:
            out["output"] = self.output
        out["status"] = self.status
        return out

    def validate(self) -> None:
        """Results are reported, not configured: only the name is checked."""
        if not self.metadata.name:
            raise ValidationError("metadata.name", "must not be empty")


def hook_fields(hook: HookConfig) -> dict[str, str]:
    """Field-selector values of a hook (spec §1.9)."""
    fields = {"hook.name": hook.metadata.name, "hook.namespace": hook.metadata.namespace}
    for k, v in hook.metadata.labels.items():
        fields[f"hook.labels.{k}"] = v
    return fields
