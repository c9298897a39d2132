"""API keys (spec §2.14): a random name that authenticates as its user (``Authorization: Key``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

from .errors import ValidationError
from .meta import ObjectMeta, WireReader, decode_meta

__all__ = ["APIKey", "apikey_fields"]


@dataclass(slots=True, kw_only=True)
class APIKey:
    """``{"metadata":{"name":<key>,"created_by"},"username","created_at"}``.

    The name is normally a UUID4, but ``sensu-backend init --cluster-admin-api-key``
    stores a literal value, so any non-empty name is accepted.
    """

    KIND: ClassVar[str] = "APIKey"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    username: str = ""
    created_at: int = 0

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            username=r.get_str("username"),
            created_at=r.get_int("created_at", "int64"),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        return {"metadata": self.metadata.to_wire(), "username": self.username, "created_at": self.created_at}

    def validate(self) -> None:
        if not self.metadata.name:
            raise ValidationError("metadata.name", "must not be empty")
        if self.metadata.namespace:
            raise ValidationError("metadata.namespace", "must be empty for an API key")
        if not self.username:
            raise ValidationError("username", "must not be empty")


def apikey_fields(key: APIKey) -> dict[str, str]:
    """Field-selector values of an API key (spec §1.9)."""
    fields = {"api_key.name": key.metadata.name, "api_key.username": key.username}
    for k, v in key.metadata.labels.items():
        fields[f"api_key.labels.{k}"] = v
    return fields
