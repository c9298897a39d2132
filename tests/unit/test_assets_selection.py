"""Pure asset helpers: prefix selection for check requests, build choice, command environment."""

from __future__ import annotations

from pathlib import Path

from backend.agentd.requests import select_assets
from backend.assets import RuntimeAsset, asset_env, select_build
from core.resources import Asset

SHA = "b" * 128


def asset(name: str) -> Asset:
    return Asset.from_wire({"metadata": {"name": name, "namespace": "default"}, "url": "http://x/a.tgz",
                            "sha512": SHA})


def test_an_entry_selects_every_asset_its_name_prefixes() -> None:
    available = [asset("other"), asset("sensu/a"), asset("sensu/b")]
    selected, unmatched = select_assets(available, ["sensu/", "nothing"])
    assert [a.metadata.name for a in selected] == ["sensu/a", "sensu/b"]
    assert unmatched == ["nothing"]
    selected, unmatched = select_assets(available, ["sensu/a", "sensu/"])  # each asset once
    assert [a.metadata.name for a in selected] == ["sensu/a", "sensu/b"] and unmatched == []


def test_the_first_passing_build_wins_and_inherits_the_asset_headers() -> None:
    doc = {"headers": {"A": "1"}, "builds": [
        {"url": "u1", "sha512": "C" * 128}, {"url": "u2", "sha512": "d" * 128, "headers": {"B": "2"}}]}
    first = select_build(doc, [True, True])
    assert first is not None and first.url == "u1" and first.sha512 == "c" * 128 and dict(first.headers) == {"A": "1"}
    second = select_build(doc, [False, True])
    assert second is not None and second.url == "u2" and dict(second.headers) == {"B": "2"}
    assert select_build(doc, [False, False]) is None
    assert select_build({"url": "top", "sha512": SHA}, [True]) is not None


def test_asset_paths_are_prepended_in_order() -> None:
    a, b = RuntimeAsset("a", SHA, Path("/c/a")), RuntimeAsset("b", SHA, Path("/c/b"))
    env = asset_env([a, b], {"PATH": "/usr/bin", "HOME": "/root"})
    assert env["PATH"] == "/c/a/bin:/c/b/bin:/usr/bin"
    assert env["LD_LIBRARY_PATH"] == "/c/a/lib:/c/b/lib:"
    assert env["CPATH"] == "/c/a/include:/c/b/include:"
    assert env["HOME"] == "/root"
    assert asset_env([], {"PATH": "/usr/bin"}) == {"PATH": "/usr/bin"}
