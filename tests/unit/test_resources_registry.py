"""The RESOURCES registry: every collection, its scope, selector data and store codec."""

from __future__ import annotations

import pytest

from core.resources import RESOURCES, CheckConfig, Event, User, keys, resource_type

from .test_resources_event import EVENT_WIRE


def test_every_collection_is_registered() -> None:
    assert set(RESOURCES) == {
        "checks", "hooks", "entities", "events", "handlers", "filters", "mutators", "silenced", "assets",
        "pipelines", "roles", "rolebindings", "namespaces", "users", "clusterroles", "clusterrolebindings",
        "apikeys",
    }
    cluster = {c for c, t in RESOURCES.items() if not t.namespaced}
    assert cluster == {"namespaces", "users", "clusterroles", "clusterrolebindings", "apikeys"}


def test_selector_prefixes() -> None:
    prefixes = {c: t.selector_prefix for c, t in RESOURCES.items()}
    assert prefixes == {
        "assets": "asset", "checks": "check", "entities": "entity", "events": "event", "filters": "filter",
        "handlers": "handler", "hooks": "hook", "mutators": "mutator", "pipelines": "pipeline",
        "rolebindings": "rolebinding", "roles": "role", "silenced": "silenced", "apikeys": "api_key",
        "clusterrolebindings": "clusterrolebinding", "clusterroles": "clusterrole", "namespaces": "namespace",
        "users": "user",
    }


def test_kinds_and_patchable() -> None:
    assert RESOURCES["checks"].kind == "CheckConfig"
    assert RESOURCES["filters"].kind == "EventFilter"
    assert {c for c, t in RESOURCES.items() if not t.patchable} == {"events", "silenced", "users"}


def test_name_namespace_and_key() -> None:
    rt = RESOURCES["checks"]
    c = CheckConfig.from_wire({"metadata": {"name": "cpu", "namespace": "default"}})
    assert (rt.name_of(c), rt.namespace_of(c), rt.key_of(c)) == ("cpu", "default", "/sensu.io/checks/default/cpu")
    ev = RESOURCES["events"]
    e = Event.from_wire(EVENT_WIRE)
    assert ev.name_of(e) == "web01/cpu"
    assert ev.key_of(e) == keys.event_key("default", "web01", "cpu")
    u = User.from_wire({"username": "alice"})
    assert RESOURCES["users"].name_of(u) == "alice" and RESOURCES["users"].namespace_of(u) == ""
    assert RESOURCES["users"].key_of(u) == "/sensu.io/users/alice"


def test_labels_and_fields() -> None:
    e = Event.from_wire(EVENT_WIRE)
    assert RESOURCES["events"].labels(e) == {"region": "eu", "tier": "web"}
    assert RESOURCES["users"].labels(User()) == {}
    fields = RESOURCES["checks"].fields(CheckConfig.from_wire({"metadata": {"name": "a", "labels": {"x": "y"}}}))
    assert fields["check.name"] == "a" and fields["check.labels.x"] == "y"


def test_store_codec_round_trip_keeps_internal_fields() -> None:
    rt = RESOURCES["users"]
    u = User.from_wire({"username": "a", "groups": ["g"]}).with_password_hash("$2b$10$" + "x" * 53)
    data = rt.encode(u)
    assert isinstance(data, bytes)
    assert rt.decode(data) == u


def test_lone_surrogates_are_replaced_so_any_codec_works() -> None:
    rt = RESOURCES["checks"]
    c = CheckConfig.from_wire({"command": "a\ud800", "metadata": {"name": "x", "labels": {"\udc00": "\ud800"}}})
    assert c.command == "a\ufffd" and c.metadata.labels == {"\ufffd": "\ufffd"}
    assert rt.decode(rt.encode(c)).to_wire() == c.to_wire()


def test_resource_type_lookup() -> None:
    assert resource_type("checks") is RESOURCES["checks"]
    with pytest.raises(KeyError, match="unknown resource collection 'nope'"):
        resource_type("nope")
