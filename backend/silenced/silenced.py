"""Pure silence matching (runtime.md §7, api.md §2.5 step 7 and §6).

Mirrors ``backend/silenced/silenced.go``: no I/O, the caller supplies the namespace's
silenced entries and the clock.  Silencing only *annotates* an event (``check.silenced``,
``check.is_silenced``); handlers skip it only through the ``not_silenced`` filter.

Entries are core/v2 dicts: ``{metadata: {name, namespace}, subscription, check, begin,
expire, expire_at, expire_on_resolve, creator, reason}``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from core.resources.event import is_resolution

__all__ = [
    "ENTITY_SUBSCRIPTION_PREFIX",
    "LEGACY_CLIENT_PREFIX",
    "entries_to_clear_on_resolve",
    "entry_expire_at",
    "entry_is_active",
    "entry_name",
    "event_subscriptions",
    "silenced_by",
]

ENTITY_SUBSCRIPTION_PREFIX: Final = "entity:"
LEGACY_CLIENT_PREFIX: Final = "client:"
"""Sensu 0.28 clients subscribed to ``client:<name>``; Go uses ``entity:<name>``."""

_WILDCARD: Final = "*"


def _meta(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("metadata") or {}


def entry_name(entry: Mapping[str, Any]) -> str:
    """``<subscription or *>:<check or *>``, the read-only name Go computes on write.

    The stored ``metadata.name`` wins when present, so an imported 0.28 id such as
    ``client:i-424242:*`` is reported as written.
    """
    name = _meta(entry).get("name")
    if name:
        return str(name)
    return f"{entry.get('subscription') or _WILDCARD}:{entry.get('check') or _WILDCARD}"


def entry_expire_at(entry: Mapping[str, Any]) -> int:
    """Unix second at which the entry stops applying; 0 means never.

    Uses ``expire_at`` when set; otherwise derives it from ``expire`` > 0 counted from
    ``begin`` (an entry written before ``expire_at`` existed).  ``expire`` -1 or 0 without
    ``expire_at`` means no expiry.
    """
    expire_at = int(entry.get("expire_at") or 0)
    if expire_at:
        return expire_at
    expire = int(entry.get("expire") or 0)
    begin = int(entry.get("begin") or 0)
    if expire > 0 and begin > 0:
        return begin + expire
    return 0


def entry_is_active(entry: Mapping[str, Any], now: int) -> bool:
    """``begin <= now < expire_at`` (``expire_at`` 0 = never): a future begin is inactive."""
    begin = int(entry.get("begin") or 0)
    if begin > now:
        return False
    expire_at = entry_expire_at(entry)
    return expire_at == 0 or now < expire_at


def event_subscriptions(event: Mapping[str, Any]) -> set[str]:
    """Subscriptions an entry's ``subscription`` may name to match this check event.

    Every subscription of the event's entity (the proxy entity for proxy
    results), plus ``entity:<entity name>``. This is Sensu 0.28's rule ("the
    subscriptions associated with the client") and what the silencing issue
    asks for; Go narrows it to subscriptions shared by the check and the
    entity, so there a result posted through an API (no check subscriptions)
    only matches ``entity:`` and wildcard entries. docs/pipeline.md says why
    we chose the wider rule.
    """
    entity = event.get("entity") or {}
    subs = {str(s) for s in (entity.get("subscriptions") or [])}
    entity_name = _meta(entity).get("name")
    if entity_name:
        subs.add(ENTITY_SUBSCRIPTION_PREFIX + str(entity_name))
    return subs


def _normalise_subscription(subscription: str) -> str:
    if subscription.startswith(LEGACY_CLIENT_PREFIX):
        return ENTITY_SUBSCRIPTION_PREFIX + subscription[len(LEGACY_CLIENT_PREFIX):]
    return subscription


def _same_namespace(entry: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    entry_ns = _meta(entry).get("namespace")
    entity = event.get("entity") or {}
    event_ns = _meta(entity).get("namespace") or _meta(event).get("namespace")
    return not entry_ns or not event_ns or entry_ns == event_ns


def _matches(entry: Mapping[str, Any], check_name: str, subs: set[str]) -> bool:
    entry_check = entry.get("check") or ""
    if entry_check not in ("", _WILDCARD) and entry_check != check_name:
        return False
    entry_sub = entry.get("subscription") or ""
    if entry_sub in ("", _WILDCARD):
        return True
    return _normalise_subscription(str(entry_sub)) in subs


def silenced_by(event: Mapping[str, Any], entries: Iterable[Mapping[str, Any]], now: int) -> list[str]:
    """Sorted, de-duplicated names of the active entries that silence this check event.

    An active entry matches when its ``check`` is empty, ``*`` or the check's name, and its
    ``subscription`` is empty, ``*`` or one of ``event_subscriptions(event)``; a 0.28-style
    ``client:<name>`` subscription is treated as ``entity:<name>``.  Entries from another
    namespace than the event's entity are ignored.  Metrics-only events are never
    silenced.
    """
    check = event.get("check")
    if not check:
        return []
    check_name = str(_meta(check).get("name") or check.get("name") or "")
    subs = event_subscriptions(event)
    names = {
        entry_name(entry)
        for entry in entries
        if _same_namespace(entry, event) and entry_is_active(entry, now) and _matches(entry, check_name, subs)
    }
    return sorted(names)


def entries_to_clear_on_resolve(event: Mapping[str, Any], entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """Names of entries to delete because this merged event is a resolution (§7.4).

    Only on a resolution (previous history entry non-zero, current status 0): the entries
    listed in ``check.silenced`` that have ``expire_on_resolve``.  OK after OK deletes
    nothing (0.28 deleted on any matching OK).  The caller deletes them and removes them
    from ``check.silenced`` before the pipeline, so the recovery passes ``not_silenced``;
    ``check.is_silenced`` stays as it was, like the reference.
    """
    if not is_resolution(event):
        return []
    listed = set((event.get("check") or {}).get("silenced") or [])
    if not listed:
        return []
    return sorted({entry_name(e) for e in entries if e.get("expire_on_resolve") and entry_name(e) in listed})
