"""Store key helpers: layout, encoding, prefix isolation and ordering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.resources import keys


def test_layout() -> None:
    assert keys.key_for("checks", "default", "cpu") == "/sensu.io/checks/default/cpu"
    assert keys.key_for("users", None, "admin") == "/sensu.io/users/admin"
    assert keys.key_for("namespaces", "", "default") == "/sensu.io/namespaces/default"
    assert keys.prefix_for("checks", "default") == "/sensu.io/checks/default/"
    assert keys.prefix_for("checks") == "/sensu.io/checks/"
    assert keys.prefix_for("users") == "/sensu.io/users/"
    assert keys.event_key("default", "web01", "cpu") == "/sensu.io/events/default/web01/cpu"
    assert keys.event_prefix("default") == "/sensu.io/events/default/"
    assert keys.event_prefix("default", "web01") == "/sensu.io/events/default/web01/"
    assert keys.singleton_key("tessen") == "/sensu.io/tessen"
    assert keys.internal_key("rings", "default", "linux") == "/sensu.io/_internal/rings/default/linux"
    assert keys.internal_prefix("rings", "default") == "/sensu.io/_internal/rings/default/"


def test_slashes_in_names_are_encoded() -> None:
    key = keys.key_for("assets", "default", "sensu/monitoring-plugins")
    assert key == "/sensu.io/assets/default/sensu%2Fmonitoring-plugins"
    assert keys.name_from_key(key) == "sensu/monitoring-plugins"
    assert keys.parse_key(key) == keys.KeyParts("assets", "default", "sensu/monitoring-plugins")
    assert keys.key_for("assets", "d", "50%/x") == "/sensu.io/assets/d/50%25%2Fx"
    assert keys.name_from_key("/sensu.io/assets/d/50%25%2Fx") == "50%/x"


def test_parse_event_and_cluster_keys() -> None:
    assert keys.parse_key(keys.event_key("ns", "web01", "cpu")) == keys.KeyParts("events", "ns", "cpu", "web01")
    assert keys.parse_key("/sensu.io/users/admin") == keys.KeyParts("users", None, "admin")
    for bad in ("/other/x", "/sensu.io/checks/only-ns", "/sensu.io/users/a/b", "/sensu.io/nope/a/b"):
        with pytest.raises(ValueError):
            keys.parse_key(bad)


@pytest.mark.parametrize(
    "call",
    [
        lambda: keys.key_for("checks", None, "x"),
        lambda: keys.key_for("users", "default", "x"),
        lambda: keys.key_for("nope", "d", "x"),
        lambda: keys.key_for("checks", "d", ""),
        lambda: keys.key_for("events", "d", "x"),
        lambda: keys.prefix_for("users", "default"),
        lambda: keys.event_key("d", "", "c"),
        lambda: keys.singleton_key("checks"),
        lambda: keys.internal_key("area"),
    ],
)
def test_misuse_raises_value_error(call: object) -> None:
    with pytest.raises(ValueError):
        call()  # type: ignore[operator]


def test_prefix_lists_exactly_one_namespace() -> None:
    a = keys.key_for("checks", "default", "x")
    b = keys.key_for("checks", "default-2", "x")
    prefix = keys.prefix_for("checks", "default")
    assert a.startswith(prefix) and not b.startswith(prefix)


def test_after_key() -> None:
    k = keys.key_for("checks", "d", "a")
    assert k < keys.after_key(k) < keys.key_for("checks", "d", "a0")


names = st.text(alphabet=st.sampled_from("ab/%-._:\x00"), min_size=1, max_size=8)


@given(names, names)
def test_encoding_round_trips_and_stays_in_one_segment(ns: str, name: str) -> None:
    key = keys.key_for("assets", ns, name)
    assert keys.parse_key(key) == keys.KeyParts("assets", ns, name)
    assert key.startswith(keys.prefix_for("assets", ns))
    assert key.count("/") == 4


@given(st.text(alphabet=st.sampled_from("abz019_:"), min_size=1, max_size=6),
       st.text(alphabet=st.sampled_from("abz019_:"), min_size=1, max_size=6))
def test_keys_sort_by_name_for_names_without_slashes(a: str, b: str) -> None:
    ka, kb = keys.key_for("checks", "ns", a), keys.key_for("checks", "ns", b)
    assert (ka < kb) == (a < b)
