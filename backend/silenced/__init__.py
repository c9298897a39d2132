"""Silencing: pure matching of silenced entries against check events (runtime.md §7)."""

from backend.silenced.silenced import (
    entries_to_clear_on_resolve,
    entry_expire_at,
    entry_is_active,
    entry_name,
    event_subscriptions,
    silenced_by,
)

__all__ = [
    "entries_to_clear_on_resolve",
    "entry_expire_at",
    "entry_is_active",
    "entry_name",
    "event_subscriptions",
    "silenced_by",
]
