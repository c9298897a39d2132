"""ObjectMeta, name regexes, lenient decoding helpers and the error types."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import ObjectMeta, ValidationError, WireTypeError
from core.resources.meta import (
    ASSET_NAME_RE,
    NAME_RE,
    SUBSCRIPTION_RE,
    USERNAME_RE,
    WireReader,
    decode_bool,
    decode_float,
    decode_int,
    decode_str,
    decode_str_list,
    decode_str_map,
)


def test_meta_round_trip_omits_empty_keys() -> None:
    wire = {"name": "web01", "namespace": "default", "labels": {"region": "eu"}, "annotations": {"team": "ops"},
            "created_by": "admin"}
    assert ObjectMeta.from_wire(wire).to_wire() == wire
    assert ObjectMeta.from_wire({"name": "x", "labels": {}, "annotations": None, "namespace": ""}).to_wire() == {
        "name": "x"
    }
    assert ObjectMeta.from_wire(None).to_wire() == {}


def test_meta_rejects_non_string_label() -> None:
    with pytest.raises(WireTypeError) as info:
        ObjectMeta.from_wire({"labels": {"a": True}})
    assert info.value.reason == "metadata.labels.a: expected a string, got boolean"
    assert info.value.field == "metadata.labels.a"


@pytest.mark.parametrize(
    ("regex", "good", "bad"),
    [
        (NAME_RE, ["cpu", "a.b-c_d:e", "0"], ["", "a b", "a/b", "é", "a\n", "a*"]),
        (SUBSCRIPTION_RE, ["linux", "system:agent", "entity:web-01"], ["a:b:c", ":a", "a b", "é"]),
        (ASSET_NAME_RE, ["sensu/monitoring-plugins", "a:b.c_d-e"], ["a b", "a@b", ""]),
        (USERNAME_RE, ["admin", "a.b_c-1"], ["Admin", "a b", "a:b", ""]),
    ],
)
def test_name_regexes(regex: Any, good: list[str], bad: list[str]) -> None:
    for name in good:
        assert regex.match(name), name
    for name in bad:
        assert not regex.match(name), name


def test_regexes_are_ascii() -> None:
    assert not NAME_RE.match("ünïcode")
    assert not NAME_RE.match("\u0663")  # Arabic-Indic digit three: \w without re.ASCII would match


def test_decoders_null_is_zero() -> None:
    assert decode_str(None, "f") == ""
    assert decode_bool(None, "f") is False
    assert decode_int(None, "f") == 0
    assert decode_float(None, "f") == 0.0
    assert decode_str_list(None, "f") is None
    assert decode_str_map(None, "f") == {}


def test_decoders_types() -> None:
    assert decode_float(3, "f") == 3.0
    assert decode_int(7.0, "f") == 7
    with pytest.raises(WireTypeError, match="f: expected a number, got boolean"):
        decode_float(True, "f")
    with pytest.raises(WireTypeError, match="f: expected a boolean, got integer"):
        decode_bool(0, "f")
    with pytest.raises(WireTypeError, match="f: expected an integer, got string"):
        decode_int("1", "f")
    with pytest.raises(WireTypeError, match="f: expected a string, got array"):
        decode_str([], "f")
    with pytest.raises(WireTypeError, match="f: number is out of range"):
        decode_float(10**400, "f")
    with pytest.raises(WireTypeError, match="expected an integer, got number inf"):
        decode_int(float("inf"), "f")
    with pytest.raises(WireTypeError, match=r"f: 2147483648 is out of range for int32"):
        decode_int(2**31, "f", "int32")


def test_reader_paths() -> None:
    r = WireReader({"a": {"b": [1]}}, "root")
    assert r.field("a") == "root.a"
    with pytest.raises(WireTypeError) as info:
        r.get_obj("a", lambda v, p: WireReader(v, p).get_str_list("b"))
    assert info.value.reason == "root.a.b[0]: expected a string, got integer"


def test_reader_rejects_non_object() -> None:
    with pytest.raises(WireTypeError, match="x: expected an object, got string"):
        WireReader("nope", "x")


def test_validation_error_text_and_nesting() -> None:
    err = ValidationError("interval", "must be greater than 0 when cron is not set")
    assert str(err) == err.reason == "interval: must be greater than 0 when cron is not set"
    nested = err.nested("check")
    assert nested.field == "check.interval"
    assert nested.reason == "check.interval: must be greater than 0 when cron is not set"
    verbatim = ValidationError("type", "empty handler type", verbatim=True)
    assert str(verbatim) == "empty handler type"
    assert verbatim.nested("x").reason == "x: empty handler type"
    assert isinstance(WireTypeError("a", "b").nested("c"), WireTypeError)
    assert issubclass(WireTypeError, ValidationError)
