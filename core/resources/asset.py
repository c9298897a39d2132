"""Assets (spec §2.10): downloadable runtime dependencies, optionally one per platform build.

``builds`` is always present on the wire (``null`` for a legacy single-build asset)
because the Ansible ``asset`` module reads ``current['builds']`` without a default.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Self

from .common import join_field, validate_js_expressions
from .errors import ValidationError
from .meta import ASSET_NAME_RE, ObjectMeta, WireReader, decode_meta, decode_str_map, list_or_none

__all__ = ["MIN_SHA512_LENGTH", "Asset", "AssetBuild", "asset_fields"]

MIN_SHA512_LENGTH: Final = 128


def _optional_map(r: WireReader, key: str) -> dict[str, str] | None:
    """A string map that keeps ``null`` as ``None`` so it reads back as ``null``."""
    value = r.get_raw(key)
    if value is None:
        return None
    return decode_str_map(value, r.field(key))


def _validate_source(url: str, sha512: str, path: str) -> None:
    prefix = f"{path}." if path else ""
    if not sha512:
        raise ValidationError(f"{prefix}sha512", "must not be empty")
    if len(sha512) < MIN_SHA512_LENGTH:
        raise ValidationError(f"{prefix}sha512", f"must be at least {MIN_SHA512_LENGTH} characters")
    if not url:
        raise ValidationError(f"{prefix}url", "must not be empty")


@dataclass(slots=True, kw_only=True)
class AssetBuild:
    """One platform build: ``{"url","sha512","filters","headers"}``."""

    url: str = ""
    sha512: str = ""
    filters: list[str] | None = None
    headers: dict[str, str] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            url=r.get_str("url"),
            sha512=r.get_str("sha512"),
            filters=r.get_str_list("filters"),
            headers=_optional_map(r, "headers"),
        )

    def to_wire(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "sha512": self.sha512,
            "filters": list_or_none(self.filters),
            "headers": None if self.headers is None else dict(self.headers),
        }

    def validate(self, path: str) -> None:
        _validate_source(self.url, self.sha512, path)
        validate_js_expressions(self.filters, f"{path}.filters")


@dataclass(slots=True, kw_only=True)
class Asset:
    """An asset; names may contain ``/`` (``sensu/monitoring-plugins``)."""

    KIND: ClassVar[str] = "Asset"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    url: str = ""
    sha512: str = ""
    filters: list[str] | None = None
    builds: list[AssetBuild] | None = None
    headers: dict[str, str] | None = None

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            url=r.get_str("url"),
            sha512=r.get_str("sha512"),
            filters=r.get_str_list("filters"),
            builds=r.get_list("builds", AssetBuild.from_wire),
            headers=_optional_map(r, "headers"),
        )

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        return self.to_wire()

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.url:
            out["url"] = self.url
        if self.sha512:
            out["sha512"] = self.sha512
        out["filters"] = list_or_none(self.filters)
        out["builds"] = None if self.builds is None else [b.to_wire() for b in self.builds]
        out["metadata"] = self.metadata.to_wire()
        out["headers"] = None if self.headers is None else dict(self.headers)
        return out

    def validate(self) -> None:
        self.metadata.validate(namespaced=True, regex=ASSET_NAME_RE)
        if self.builds:
            for i, build in enumerate(self.builds):
                build.validate(f"builds[{i}]")
        else:
            _validate_source(self.url, self.sha512, "")
        validate_js_expressions(self.filters, "filters")


def asset_fields(asset: Asset) -> dict[str, str]:
    """Field-selector values of an asset (spec §1.9)."""
    fields = {
        "asset.name": asset.metadata.name,
        "asset.namespace": asset.metadata.namespace,
        "asset.filters": join_field(asset.filters),
    }
    for k, v in asset.metadata.labels.items():
        fields[f"asset.labels.{k}"] = v
    return fields
