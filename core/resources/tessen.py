"""Tessen (spec §2.15): the anonymous usage-reporting switch.  One object, never 404."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Self

from .meta import WireReader

__all__ = ["TessenConfig"]


@dataclass(slots=True, kw_only=True)
class TessenConfig:
    """``{"opt_out": bool}``; the default (``false``) is written at startup."""

    KIND: ClassVar[str] = "TessenConfig"

    opt_out: bool = False

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        return cls(opt_out=WireReader(data, path).get_bool("opt_out"))

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        return {"opt_out": self.opt_out}

    def validate(self) -> None:
        """Nothing can be wrong with a boolean."""
