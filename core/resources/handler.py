"""Handlers (spec §2.6): what to do with an event (pipe, tcp, udp, or a set of handlers)."""

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

__all__ = ["HANDLER_TYPES", "Handler", "HandlerSocket", "handler_fields"]

HANDLER_TYPES: Final = frozenset({"pipe", "tcp", "udp", "set"})


@dataclass(slots=True, kw_only=True)
class HandlerSocket:
    """``{"host","port"}`` of a tcp/udp handler; ``host`` is omitted when empty."""

    host: str = ""
    port: int = 0

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(host=r.get_str("host"), port=r.get_int("port", "uint32"))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.host:
            out["host"] = self.host
        out["port"] = self.port
        return out


@dataclass(slots=True, kw_only=True)
class Handler:
    """A handler.

    ``handle_silenced`` is the one field Go does not have: silenced events skip
    every handler unless the handler opts out with ``handle_silenced: true``
    (Sensu 0.28's key and behaviour, which this project follows; Go only skips
    handlers that list the ``not_silenced`` filter, which still works). It is
    written to the wire only when true, so Go clients see Go's shape.
    """

    KIND: ClassVar[str] = "Handler"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    type: str = ""
    mutator: str = ""
    command: str = ""
    timeout: int = 0
    socket: HandlerSocket | None = None
    handlers: list[str] | None = None
    filters: list[str] | None = None
    env_vars: list[str] | None = None
    runtime_assets: list[str] | None = None
    secrets: list[Secret] | None = None
    handle_silenced: bool = False

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            handle_silenced=r.get_bool("handle_silenced"),
            metadata=r.get_obj("metadata", decode_meta),
            type=r.get_str("type"),
            mutator=r.get_str("mutator"),
            command=r.get_str("command"),
            timeout=r.get_int("timeout", "uint32"),
            socket=r.get_optional_obj("socket", HandlerSocket.from_wire),
            handlers=r.get_str_list("handlers"),
            filters=r.get_str_list("filters"),
            env_vars=r.get_str_list("env_vars"),
            runtime_assets=r.get_str_list("runtime_assets"),
            secrets=r.get_list("secrets", Secret.from_wire),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"metadata": self.metadata.to_wire()}
        if self.type:
            out["type"] = self.type
        if self.mutator:
            out["mutator"] = self.mutator
        if self.command:
            out["command"] = self.command
        out["timeout"] = self.timeout
        if self.socket is not None:
            out["socket"] = self.socket.to_wire()
        out["handlers"] = list_or_none(self.handlers)
        out["filters"] = list_or_none(self.filters)
        out["env_vars"] = list_or_none(self.env_vars)
        out["runtime_assets"] = list_or_none(self.runtime_assets)
        out["secrets"] = secrets_to_wire(self.secrets)
        if self.handle_silenced:
            out["handle_silenced"] = True
        return out

    def validate(self) -> None:
        self.metadata.validate(namespaced=True)
        if not self.type:
            raise ValidationError("type", "empty handler type", verbatim=True)
        if self.type not in HANDLER_TYPES:
            raise ValidationError("type", f"unknown handler type: {self.type}", verbatim=True)
        if self.type == "pipe" and not self.command.strip():
            raise ValidationError("command", "must not be empty for a pipe handler")
        if self.type in ("tcp", "udp"):
            if self.socket is None:
                raise ValidationError("socket", f"must be set for a {self.type} handler")
            if not self.socket.host:
                raise ValidationError("socket.host", "must not be empty")
            if self.socket.port == 0:
                raise ValidationError("socket.port", "must not be 0")
            if self.socket.port > 65535:
                raise ValidationError("socket.port", "must be at most 65535")
        for i, name in enumerate(self.handlers or ()):
            if not name:
                raise ValidationError(f"handlers[{i}]", "must not be empty")
        validate_env_vars(self.env_vars)
        validate_runtime_assets(self.runtime_assets)
        validate_secrets(self.secrets)


def handler_fields(handler: Handler) -> dict[str, str]:
    """Field-selector values of a handler (spec §1.9)."""
    fields = {
        "handler.name": handler.metadata.name,
        "handler.namespace": handler.metadata.namespace,
        "handler.type": handler.type,
        "handler.filters": join_field(handler.filters),
        "handler.handlers": join_field(handler.handlers),
        "handler.mutator": handler.mutator,
    }
    for k, v in handler.metadata.labels.items():
        fields[f"handler.labels.{k}"] = v
    return fields
