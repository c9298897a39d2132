"""Mutators (spec §2.8): transform an event before a handler sees it (pipe or JavaScript)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self

from .common import (
    Secret,
    join_field,
    secrets_to_wire,
    validate_env_vars,
    validate_runtime_assets,
    validate_secrets,
)
from .errors import ValidationError
from .meta import ObjectMeta, WireReader, decode_meta, list_or_none

__all__ = ["MUTATOR_TYPES", "Mutator", "mutator_fields"]

MUTATOR_TYPES: Final = frozenset({"", "pipe", "javascript"})


@dataclass(slots=True, kw_only=True)
class Mutator:
    """``type`` empty means ``pipe``; a ``javascript`` mutator runs ``eval``, never ``command``."""

    KIND: ClassVar[str] = "Mutator"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    command: str = ""
    timeout: int = 0
    env_vars: list[str] | None = None
    runtime_assets: list[str] | None = None
    secrets: list[Secret] | None = None
    type: str = ""
    eval: str = ""

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            command=r.get_str("command"),
            timeout=r.get_int("timeout", "uint32"),
            env_vars=r.get_str_list("env_vars"),
            runtime_assets=r.get_str_list("runtime_assets"),
            secrets=r.get_list("secrets", Secret.from_wire),
            type=r.get_str("type"),
            eval=r.get_str("eval"),
        )

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
        out["env_vars"] = list_or_none(self.env_vars)
        out["runtime_assets"] = list_or_none(self.runtime_assets)
        out["secrets"] = secrets_to_wire(self.secrets)
        if self.type:
            out["type"] = self.type
        if self.eval:
            out["eval"] = self.eval
        return out

    def validate(self) -> None:
        self.metadata.validate(namespaced=True)
        if self.type not in MUTATOR_TYPES:
            raise ValidationError("type", f'must be "pipe" or "javascript", got {self.type!r}')
        if self.type == "javascript":
            if self.command:
                raise ValidationError("command", "must be empty for a javascript mutator (use eval)")
            if not self.eval:
                raise ValidationError("eval", "must not be empty for a javascript mutator")
        elif not self.command and not self.eval:
            raise ValidationError("command", "a command or eval is required")
        validate_env_vars(self.env_vars)
        validate_runtime_assets(self.runtime_assets)
        validate_secrets(self.secrets)


def mutator_fields(mutator: Mutator) -> dict[str, str]:
    """Field-selector values of a mutator (spec §1.9)."""
    fields = {
        "mutator.name": mutator.metadata.name,
        "mutator.namespace": mutator.metadata.namespace,
        "mutator.runtime_assets": join_field(mutator.runtime_assets),
    }
    for k, v in mutator.metadata.labels.items():
        fields[f"mutator.labels.{k}"] = v
    return fields
