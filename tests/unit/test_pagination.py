"""limit and continue tokens (spec §1.8)."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.pagination import (
    UNLIMITED,
    ContinueToken,
    decode_continue,
    encode_continue,
    parse_limit,
    start_key,
    token_for,
)
from core.resources import RESOURCES, CheckConfig, Event, keys


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, UNLIMITED), ("", UNLIMITED), ("0", UNLIMITED), ("abc", UNLIMITED), ("-5", UNLIMITED),
     ("1.5", UNLIMITED), ("10", 10), (" 7 ", 7), ("\u0663", UNLIMITED)],
)
def test_parse_limit(raw: str | None, expected: int) -> None:
    assert parse_limit(raw) == expected


def test_token_is_go_format() -> None:
    token = encode_continue("cpu")
    assert token == base64.urlsafe_b64encode(b"cpu\x00").decode().rstrip("=")
    assert "=" not in token
    assert encode_continue("cpu", "default") == base64.urlsafe_b64encode(b"default/cpu\x00").decode().rstrip("=")


def test_round_trip() -> None:
    assert decode_continue(encode_continue("cpu")) == ContinueToken("cpu")
    assert decode_continue(encode_continue("cpu", "default"), all_namespaces=True) == ContinueToken("cpu", "default")


def test_asset_names_with_slashes() -> None:
    name = "sensu/monitoring-plugins"
    assert decode_continue(encode_continue(name)) == ContinueToken(name)
    assert decode_continue(encode_continue(name, "ns"), all_namespaces=True) == ContinueToken(name, "ns")


@pytest.mark.parametrize("token", [None, "", "!!!", "a", "====", "\u00e9t\u00e9", "_w", "gA"])
def test_undecodable_tokens_are_ignored(token: str | None) -> None:
    assert decode_continue(token) is None


def test_token_without_trailing_nul_is_accepted() -> None:
    token = base64.urlsafe_b64encode(b"cpu").decode().rstrip("=")
    assert decode_continue(token) == ContinueToken("cpu")


def test_cross_namespace_token_needs_a_namespace() -> None:
    assert decode_continue(encode_continue("cpu"), all_namespaces=True) is None


def test_token_for_uses_registry_names() -> None:
    check = CheckConfig.from_wire({"metadata": {"name": "cpu", "namespace": "default"}})
    assert token_for(RESOURCES["checks"], check, all_namespaces=False) == encode_continue("cpu")
    assert token_for(RESOURCES["checks"], check, all_namespaces=True) == encode_continue("cpu", "default")
    event = Event.from_wire({"metadata": {"namespace": "default"}, "entity": {"metadata": {"name": "web01"}},
                             "check": {"metadata": {"name": "cpu"}}})
    assert token_for(RESOURCES["events"], event, all_namespaces=False) == encode_continue("web01/cpu")


def test_start_key() -> None:
    assert start_key("checks", "default", None) is None
    assert start_key("checks", "default", ContinueToken("cpu")) == keys.after_key("/sensu.io/checks/default/cpu")
    assert start_key("checks", None, ContinueToken("cpu", "ns")) == keys.after_key("/sensu.io/checks/ns/cpu")
    assert start_key("checks", None, ContinueToken("cpu")) is None
    assert start_key("users", None, ContinueToken("alice")) == keys.after_key("/sensu.io/users/alice")
    assert start_key("events", "d", ContinueToken("web01/cpu")) == keys.after_key(keys.event_key("d", "web01", "cpu"))
    assert start_key("events", None, decode_continue(encode_continue("web01/cpu", "d"), all_namespaces=True)) == (
        keys.after_key(keys.event_key("d", "web01", "cpu"))
    )
    assert start_key("events", "d", ContinueToken("web01")) is None
    assert start_key("assets", "d", ContinueToken("a/b")) == keys.after_key(keys.key_for("assets", "d", "a/b"))


def test_start_key_is_after_the_last_item_and_before_the_next() -> None:
    last = keys.key_for("checks", "d", "b")
    nxt = keys.key_for("checks", "d", "b0")
    key = start_key("checks", "d", ContinueToken("b"))
    assert key is not None and last < key <= nxt


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(max_size=30))
def test_decode_never_raises(token: str) -> None:
    decode_continue(token)
    decode_continue(token, all_namespaces=True)


@settings(max_examples=200, deadline=None, database=None)
@given(st.text(min_size=1, max_size=20).filter(lambda s: not s.endswith("\x00")))
def test_encode_decode_round_trip(name: str) -> None:
    assert decode_continue(encode_continue(name)) == ContinueToken(name)
