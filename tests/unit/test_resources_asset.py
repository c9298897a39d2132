"""Asset: spec §2.10 (builds always present, names with '/')."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import Asset, ValidationError
from core.resources.asset import asset_fields

SHA = "a" * 128

BUILDS_WIRE: dict[str, Any] = {
    "filters": None,
    "builds": [
        {"url": "https://x/a.tgz", "sha512": SHA, "filters": ["entity.system.os == 'linux'"],
         "headers": {"Authorization": "Bearer x"}},
        {"url": "https://x/b.tgz", "sha512": SHA, "filters": None, "headers": None},
    ],
    "metadata": {"name": "sensu/monitoring-plugins", "namespace": "default"},
    "headers": None,
}
LEGACY_WIRE: dict[str, Any] = {
    "url": "https://x/a.tgz", "sha512": SHA, "filters": [], "builds": None,
    "metadata": {"name": "ruby", "namespace": "default"}, "headers": {},
}


def reason(a: Asset) -> str:
    with pytest.raises(ValidationError) as info:
        a.validate()
    return info.value.reason


@pytest.mark.parametrize("wire", [BUILDS_WIRE, LEGACY_WIRE])
def test_round_trip(wire: dict[str, Any]) -> None:
    a = Asset.from_wire(wire)
    a.validate()
    assert a.to_wire() == wire
    assert Asset.from_store(a.to_store()) == a


def test_builds_always_present() -> None:
    wire = Asset.from_wire({}).to_wire()
    assert "builds" in wire and wire["builds"] is None
    assert "filters" in wire and "headers" in wire
    assert "url" not in wire and "sha512" not in wire


def test_name_may_contain_slash() -> None:
    Asset.from_wire(BUILDS_WIRE).validate()
    assert reason(Asset.from_wire({**LEGACY_WIRE, "metadata": {"name": "a b", "namespace": "d"}})) == (
        "metadata.name: cannot contain spaces or special characters"
    )


def test_legacy_needs_sha512() -> None:
    assert reason(Asset.from_wire({**LEGACY_WIRE, "sha512": ""})) == "sha512: must not be empty"


def test_sha512_length() -> None:
    assert reason(Asset.from_wire({**LEGACY_WIRE, "sha512": "abc"})) == "sha512: must be at least 128 characters"


def test_legacy_needs_url() -> None:
    assert reason(Asset.from_wire({**LEGACY_WIRE, "url": ""})) == "url: must not be empty"


def test_each_build_needs_url_and_sha() -> None:
    wire = {**BUILDS_WIRE, "builds": [BUILDS_WIRE["builds"][0], {"url": "https://x", "sha512": ""}]}
    assert reason(Asset.from_wire(wire)) == "builds[1].sha512: must not be empty"
    wire = {**BUILDS_WIRE, "builds": [{"sha512": SHA}]}
    assert reason(Asset.from_wire(wire)) == "builds[0].url: must not be empty"


def test_filters_must_parse() -> None:
    assert reason(Asset.from_wire({**LEGACY_WIRE, "filters": ["entity.system.os == ("]})).startswith(
        "filters[0]: invalid expression"
    )


def test_fields() -> None:
    assert asset_fields(Asset.from_wire({**LEGACY_WIRE, "filters": ["a", "b"]})) == {
        "asset.name": "ruby", "asset.namespace": "default", "asset.filters": "a,b",
    }
