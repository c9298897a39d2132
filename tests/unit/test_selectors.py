"""labelSelector / fieldSelector parsing and matching (spec §1.9)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from api.selectors import Operation, SelectorError, compile_selector, join_selectors, parse_selector

FIELDS = {
    "check.name": "cpu",
    "check.subscriptions": "linux,windows",
    "check.publish": "true",
    "check.labels.region": "eu-west",
    "empty": "",
}


def matches(selector: str, values: dict[str, str] = FIELDS) -> bool:
    return parse_selector(selector).matches(values)


def test_grammar() -> None:
    sel = parse_selector("check.name == cpu && region in [eu, 'us-east', \"ap\"] && x notin [a,b] && y matches z")
    assert sel.operations == (
        Operation("check.name", "==", ("cpu",)),
        Operation("region", "in", ("eu", "us-east", "ap")),
        Operation("x", "notin", ("a", "b")),
        Operation("y", "matches", ("z",)),
    )


def test_whitespace_is_optional_around_symbols() -> None:
    assert parse_selector("a==b&&c!=d").operations == (Operation("a", "==", ("b",)), Operation("c", "!=", ("d",)))


def test_empty_selector_matches_everything() -> None:
    assert parse_selector("").operations == ()
    assert parse_selector("   ").matches({})


def test_equality() -> None:
    assert matches("check.name == cpu")
    assert not matches("check.name == mem")
    assert not matches("missing == cpu")


def test_inequality() -> None:
    assert matches("check.name != mem")
    assert not matches("check.name != cpu")
    assert matches("missing != cpu")


def test_in_list() -> None:
    assert matches("check.name in [cpu, mem]")
    assert not matches("check.name in [disk, mem]")
    assert not matches("missing in [cpu]")
    assert not matches("check.name in []")


def test_notin_list() -> None:
    assert matches("check.name notin [disk, mem]")
    assert not matches("check.name notin [cpu]")
    assert matches("missing notin [cpu]")


def test_value_in_list_field() -> None:
    assert matches("linux in check.subscriptions")
    assert matches("windows in [check.subscriptions]")
    assert not matches("darwin in check.subscriptions")
    assert matches("darwin notin check.subscriptions")
    assert not matches("linux notin check.subscriptions")


def test_matches_is_substring() -> None:
    assert matches("check.labels.region matches eu")
    assert matches("check.labels.region matches 'west'")
    assert not matches("check.labels.region matches us")
    assert not matches("missing matches x")


def test_booleans_and_quoted_values() -> None:
    assert matches("check.publish == true")
    assert not matches("check.publish == false")
    assert matches("check.labels.region == 'eu-west'")
    assert matches('check.labels.region == "eu-west"')
    assert matches("empty == ''")


def test_bare_values_may_contain_dashes_and_colons() -> None:
    assert matches("check.labels.region == eu-west")
    assert matches("x == entity:web01", {"x": "entity:web01"})


def test_quoted_keys() -> None:
    assert matches("'app-name' == web", {"app-name": "web"})


def test_operators_are_case_insensitive() -> None:
    assert matches("check.name IN [cpu]")
    assert matches("check.name NotIn [mem]")


def test_conjunction_needs_all() -> None:
    assert matches("check.name == cpu && check.publish == true")
    assert not matches("check.name == cpu && check.publish == false")


@pytest.mark.parametrize(
    ("text", "position", "token"),
    [
        ("check.name = cpu", 11, "= "),
        ("check.name == cpu &", 18, "&"),
        ("check.name", 10, ""),
        ("&& a == b", 0, "&&"),
        ("a == b &&", 9, ""),
        ("a == b c == d", 7, "c"),
        ("a ==", 4, ""),
        ("a in [b, c", 10, ""),
        ("a in ]", 5, "]"),
        ("a == 'open", 5, "'open"),
        ("a-b == c", 0, "a-b"),
        ("a. == c", 0, "a."),
        ("a == [b]", 5, "["),
        ("in == b", 0, "in"),
        ("a ! b", 2, "! "),
    ],
)
def test_errors_name_position_and_token(text: str, position: int, token: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(text)
    assert info.value.position == position
    assert info.value.token == token
    assert str(info.value).startswith("invalid selector: ")
    assert f"position {position}" in str(info.value)


def test_compile_selector_checks_both() -> None:
    match = compile_selector("region == eu", "check.name == cpu")
    assert match({"region": "eu"}, {"check.name": "cpu"})
    assert not match({"region": "us"}, {"check.name": "cpu"})
    assert not match({"region": "eu"}, {"check.name": "mem"})


def test_compile_selector_none_matches_all() -> None:
    match = compile_selector(None, "")
    assert match({}, {})


def test_compile_selector_raises_before_matching() -> None:
    with pytest.raises(SelectorError):
        compile_selector("ok == 1", "bad =")


def test_join_selectors() -> None:
    assert join_selectors([]) is None
    assert join_selectors(["", " "]) is None
    assert join_selectors(["a == b", "c == d"]) == "a == b && c == d"
    assert parse_selector(join_selectors(["a == b", "c in [d]"]) or "").matches({"a": "b", "c": "d"})


@settings(max_examples=300, deadline=None, database=None)
@given(st.text(max_size=40))
def test_parser_only_raises_selector_error(text: str) -> None:
    try:
        sel = parse_selector(text)
    except SelectorError:
        return
    sel.matches(FIELDS)
