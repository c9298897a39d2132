"""Namespaces (spec §2.1): ``{"name": "default"}``, with no metadata."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Final, Self

from .meta import NAME_RE, WireReader, check_name

__all__ = ["DEFAULT_NAMESPACE", "Namespace", "namespace_fields"]

DEFAULT_NAMESPACE: Final = "default"


@dataclass(slots=True, kw_only=True)
class Namespace:
    KIND: ClassVar[str] = "Namespace"

    name: str = ""

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        return cls(name=WireReader(data, path).get_str("name"))

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name}

    def validate(self) -> None:
        check_name(self.name, "name", NAME_RE)


def namespace_fields(ns: Namespace) -> dict[str, str]:
    """Field-selector values of a namespace (spec §1.9)."""
    return {"namespace.name": ns.name}
