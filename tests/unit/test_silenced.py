"""runtime.md §7 and the five scenarios of the Sensu 0.28 silencing seed."""

from __future__ import annotations

from typing import Any

import pytest

from backend.eventd.merge import merge_event
from backend.silenced.silenced import (
    entries_to_clear_on_resolve,
    entry_is_active,
    entry_name,
    event_subscriptions,
    silenced_by,
)

NOW = 1_700_000_000


def entry(subscription: str | None = None, check: str | None = None, **fields: Any) -> dict[str, Any]:
    e: dict[str, Any] = {
        "metadata": {"name": f"{subscription or '*'}:{check or '*'}", "namespace": "default"},
        "begin": NOW - 60,
        "expire": -1,
        "expire_at": 0,
        "expire_on_resolve": False,
    }
    if subscription is not None:
        e["subscription"] = subscription
    if check is not None:
        e["check"] = check
    e.update(fields)
    return e


def event(
    entity: str = "i-424242",
    check: str = "check_ntp",
    entity_subs: tuple[str, ...] = ("appserver", "linux"),
    check_subs: tuple[str, ...] = ("appserver", "linux"),
    status: int = 2,
    **check_fields: Any,
) -> dict[str, Any]:
    return {
        "entity": {
            "metadata": {"name": entity, "namespace": "default"},
            "entity_class": "agent",
            "subscriptions": [*entity_subs, f"entity:{entity}"],
        },
        "check": {
            "metadata": {"name": check, "namespace": "default"},
            "subscriptions": list(check_subs),
            "status": status,
            "executed": NOW,
            **check_fields,
        },
    }


# --- the five seed scenarios (0.28 "client:" subscriptions map to Go's "entity:") ---


def test_seed_silence_all_checks_on_a_client() -> None:
    silence = entry("client:i-424242")
    assert entry_name(silence) == "client:i-424242:*"  # the written id is kept
    assert silenced_by(event(check="check_ntp"), [silence], NOW) == ["client:i-424242:*"]
    assert silenced_by(event(check="mysql_status"), [silence], NOW) == ["client:i-424242:*"]
    assert silenced_by(event(entity="i-999"), [silence], NOW) == []


def test_seed_silence_a_check_on_a_client() -> None:
    silence = entry("client:i-424242", "check_ntp")
    assert silenced_by(event(check="check_ntp"), [silence], NOW) == ["client:i-424242:check_ntp"]
    assert silenced_by(event(check="check_disk"), [silence], NOW) == []
    assert silenced_by(event(entity="i-999", check="check_ntp"), [silence], NOW) == []
    # The Go spelling works the same way.
    go_style = entry("entity:i-424242", "check_ntp")
    assert silenced_by(event(), [go_style], NOW) == ["entity:i-424242:check_ntp"]


def test_seed_silence_all_checks_on_a_subscription() -> None:
    silence = entry("appserver")
    assert silenced_by(event(check="anything"), [silence], NOW) == ["appserver:*"]
    assert silenced_by(event(entity_subs=("db",), check_subs=("db",)), [silence], NOW) == []


def test_seed_silence_a_check_on_a_subscription() -> None:
    silence = entry("appserver", "mysql_status")
    assert silenced_by(event(check="mysql_status"), [silence], NOW) == ["appserver:mysql_status"]
    assert silenced_by(event(check="check_ntp"), [silence], NOW) == []
    assert silenced_by(event(check="mysql_status", entity_subs=("db",), check_subs=("db",)), [silence], NOW) == []


def test_seed_silence_a_check_everywhere() -> None:
    silence = entry(None, "mysql_status")
    assert entry_name(silence) == "*:mysql_status"
    for subs in [("appserver",), ("db",), ()]:
        ev = event(check="mysql_status", entity_subs=subs, check_subs=subs)
        assert silenced_by(ev, [silence], NOW) == ["*:mysql_status"]
    assert silenced_by(event(check="other"), [silence], NOW) == []


# --- Go matching rules ---


def test_subscription_matches_any_entity_subscription() -> None:
    silence = entry("linux")
    # 0.28's rule: the entity's subscriptions count, whatever the check was published to.
    assert silenced_by(event(entity_subs=("linux", "web"), check_subs=("web",)), [silence], NOW) == ["linux:*"]
    assert silenced_by(event(entity_subs=("web",), check_subs=("linux", "web")), [silence], NOW) == []
    assert silenced_by(event(entity_subs=("linux",), check_subs=("linux",)), [silence], NOW) == ["linux:*"]


def test_api_result_without_check_subscriptions_matches_entity_subscriptions() -> None:
    ev = event(check_subs=(), entity_subs=("appserver",))
    entries = [entry("linux"), entry("appserver"), entry("entity:i-424242"), entry("*", "check_ntp"),
               entry(None, "check_ntp")]
    entries[3]["metadata"]["name"] = "*:check_ntp"
    assert silenced_by(ev, entries, NOW) == ["*:check_ntp", "appserver:*", "entity:i-424242:*"]


def test_proxy_check_matches_any_proxy_entity_subscription() -> None:
    ev = event(entity="router-1", entity_subs=("network",), check_subs=("poller",), proxy_entity_name="router-1")
    assert event_subscriptions(ev) == {"network", "entity:router-1"}
    assert silenced_by(ev, [entry("network")], NOW) == ["network:*"]
    assert silenced_by(ev, [entry("entity:router-1")], NOW) == ["entity:router-1:*"]
    assert silenced_by(ev, [entry("poller")], NOW) == []  # the check's subscription, not the entity's


def test_empty_fields_and_wildcards() -> None:
    e = entry("*", None)
    e["check"] = ""
    assert silenced_by(event(), [e], NOW) == ["*:*"]


def test_result_is_sorted_and_deduplicated() -> None:
    entries = [entry("linux"), entry("appserver"), entry("linux")]
    assert silenced_by(event(), entries, NOW) == ["appserver:*", "linux:*"]


def test_other_namespace_ignored() -> None:
    e = entry("linux")
    e["metadata"]["namespace"] = "prod"
    assert silenced_by(event(), [e], NOW) == []


def test_metrics_only_events_are_never_silenced() -> None:
    ev = {"entity": event()["entity"], "metrics": {"points": []}}
    assert silenced_by(ev, [entry("*")], NOW) == []


# --- begin and expiry ---


def test_begin_in_future_is_inactive_until_begin() -> None:
    e = entry("linux", begin=NOW + 100)
    assert silenced_by(event(), [e], NOW) == []
    assert silenced_by(event(), [e], NOW + 100) == ["linux:*"]


@pytest.mark.parametrize(
    ("fields", "now", "active"),
    [
        ({"expire_at": NOW + 10}, NOW + 9, True),
        ({"expire_at": NOW + 10}, NOW + 10, False),  # begin <= now < expire_at
        ({"expire_at": 0, "expire": -1}, NOW + 10**6, True),  # no expiry
        ({"expire_at": 0, "expire": 30, "begin": NOW}, NOW + 29, True),  # derived from expire
        ({"expire_at": 0, "expire": 30, "begin": NOW}, NOW + 30, False),
    ],
)
def test_expiry(fields: dict[str, Any], now: int, active: bool) -> None:
    e = entry("linux", **fields)
    assert entry_is_active(e, now) is active
    assert (silenced_by(event(), [e], now) == ["linux:*"]) is active


# --- expire_on_resolve ---


def merged_sequence(statuses: list[int], silenced: list[str]) -> dict[str, Any]:
    prev = None
    for i, status in enumerate(statuses):
        new = event(status=status, silenced=list(silenced))
        new["check"]["executed"] = NOW + i
        prev = merge_event(new, prev, NOW + i)
    assert prev is not None
    return prev


def test_expire_on_resolve_clears_only_on_resolution() -> None:
    entries = [
        entry("client:i-424242", "check_ntp", expire_on_resolve=True),
        entry("linux", expire_on_resolve=False),
        entry("appserver", expire_on_resolve=True),  # not listed on the event
    ]
    listed = ["client:i-424242:check_ntp", "linux:*"]
    resolution = merged_sequence([2, 0], listed)
    assert entries_to_clear_on_resolve(resolution, entries) == ["client:i-424242:check_ntp"]
    # OK after OK deletes nothing (0.28 did), nor does a failure.
    assert entries_to_clear_on_resolve(merged_sequence([0, 0], listed), entries) == []
    assert entries_to_clear_on_resolve(merged_sequence([0, 2], listed), entries) == []
    assert entries_to_clear_on_resolve(merged_sequence([0], listed), entries) == []
