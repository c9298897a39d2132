"""Silenced: spec §2.9 and runtime §7.1 (computed name, expire -1 / as stored, expire_at)."""

from __future__ import annotations

from typing import Any

import pytest

from core.resources import Silenced, ValidationError, silenced_name
from core.resources.silenced import silenced_fields

SPEC_EXAMPLE: dict[str, Any] = {
    "metadata": {"name": "linux:*", "namespace": "default", "created_by": "admin"}, "expire": 3600,
    "expire_on_resolve": False, "creator": "admin", "subscription": "linux", "reason": "maint",
    "begin": 1700000000, "expire_at": 1700003600,
}


def reason(s: Silenced) -> str:
    with pytest.raises(ValidationError) as info:
        s.validate()
    return info.value.reason


def entry(**overrides: Any) -> Silenced:
    data: dict[str, Any] = {"metadata": {"name": "x", "namespace": "default"}}
    data.update(overrides)
    return Silenced.from_wire(data)


def test_spec_example_round_trips() -> None:
    s = Silenced.from_wire(SPEC_EXAMPLE)
    s.validate()
    assert s.to_wire() == SPEC_EXAMPLE
    assert Silenced.from_store(s.to_store()) == s


@pytest.mark.parametrize(
    ("sub", "check", "name"),
    [("linux", "", "linux:*"), ("", "disk", "*:disk"), ("entity:web01", "disk", "entity:web01:disk"),
     ("*", "disk", "*:disk"), ("linux", "*", "linux:*")],
)
def test_name_is_computed(sub: str, check: str, name: str) -> None:
    assert silenced_name(sub, check) == name
    s = entry(subscription=sub, check=check, metadata={"name": "whatever", "namespace": "default"})
    assert s.with_defaults(now=100, creator="alice").metadata.name == name


def test_with_defaults_begin_creator_expire_at() -> None:
    s = entry(subscription="linux", expire=60, creator="mallory").with_defaults(now=1000, creator="alice")
    assert (s.begin, s.creator, s.expire, s.expire_at) == (1000, "alice", 60, 1060)


def test_with_defaults_counts_from_begin() -> None:
    s = entry(subscription="linux", expire=60, begin=5000).with_defaults(now=1000, creator="a")
    assert (s.begin, s.expire_at) == (5000, 5060)


def test_with_defaults_keeps_explicit_expire_at() -> None:
    s = entry(subscription="linux", expire=60, expire_at=9999).with_defaults(now=1000, creator="a")
    assert s.expire_at == 9999


def test_with_defaults_is_pure() -> None:
    original = entry(subscription="linux", expire=60)
    original.with_defaults(now=1000, creator="a")
    assert original.begin == 0 and original.expire_at == 0 and original.metadata.name == "x"


def test_no_expiry_reads_minus_one() -> None:
    s = entry(subscription="linux").with_defaults(now=1000, creator="a")
    assert s.to_wire()["expire"] == -1
    assert s.to_wire()["expire_at"] == 0
    assert s.to_store()["expire"] == 0


def test_expiry_reads_stored_value_not_countdown() -> None:
    s = entry(subscription="linux", expire=3600).with_defaults(now=1000, creator="a")
    assert s.to_wire()["expire"] == 3600
    assert s.expire_countdown(now=1043) == 3557
    assert entry(subscription="l").expire_countdown(now=5) == -1


def test_reput_of_a_get_is_stable() -> None:
    # A client GETs and PUTs back: -1 must not turn into an expiry.
    first = entry(subscription="linux").with_defaults(now=1000, creator="a")
    again = Silenced.from_wire(first.to_wire()).with_defaults(now=2000, creator="a")
    assert again.to_wire()["expire"] == -1 and again.expire_at == 0


def test_expired_and_active() -> None:
    s = entry(subscription="linux", expire=10, begin=100).with_defaults(now=50, creator="a")
    assert not s.is_active(99) and s.is_active(100) and s.is_active(109)
    assert s.is_expired(110) and not s.is_active(110)
    forever = entry(subscription="linux").with_defaults(now=50, creator="a")
    assert not forever.is_expired(10**12)


def test_omitempty_fields() -> None:
    wire = entry(subscription="linux").to_wire()
    for key in ("creator", "check", "reason"):
        assert key not in wire
    for key in ("expire", "expire_on_resolve", "begin", "expire_at"):
        assert key in wire


def test_check_or_subscription_required() -> None:
    assert reason(entry()) == "must provide check or subscription"
    assert reason(entry(subscription="*", check="*")) == "must provide check or subscription"


def test_subscription_regex_allows_one_colon() -> None:
    entry(subscription="entity:web01").validate()
    assert reason(entry(subscription="a:b:c")) == "subscription: cannot contain spaces or special characters"


def test_check_regex() -> None:
    assert reason(entry(check="dis k")) == "check: cannot contain spaces or special characters"
    entry(check="*", subscription="linux").validate()


def test_namespace_required() -> None:
    assert reason(Silenced.from_wire({"subscription": "linux"})) == "metadata.namespace: must not be empty"


def test_fields() -> None:
    s = Silenced.from_wire(SPEC_EXAMPLE)
    assert silenced_fields(s) == {
        "silenced.name": "linux:*", "silenced.namespace": "default", "silenced.check": "",
        "silenced.creator": "admin", "silenced.subscription": "linux", "silenced.expire_on_resolve": "false",
    }
