"""Pure filter decisions for the pipeline (runtime.md §6.1 and §6.2).

The built-in filters, the ``when`` time windows and the allow/deny combination of
JavaScript results are decided here without I/O.  JavaScript itself runs in
``backend.pipeline.jsengine`` (threads); the pipeline daemon evaluates the expressions
there and hands the results to ``filter_decision``.  One adapter per concern, as in
sensu-go's ``backend/pipeline/filter/*.go``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Final

from core.resources.event import has_metrics, is_incident, is_resolution, is_silenced

__all__ = [
    "BUILTIN_FILTERS",
    "HANDLER_SET_MAX_DEPTH",
    "HandlerExpansion",
    "builtin_filter_passes",
    "filter_decision",
    "filter_has_metrics",
    "filter_is_incident",
    "filter_not_silenced",
    "evaluate_when",
    "handler_set_expand",
    "parse_kitchen_time",
    "validate_when",
    "when_gate",
]

HANDLER_SET_MAX_DEPTH: Final = 3
"""Go expands top-level names at level 1 and refuses to expand beyond level 3."""

_DAY_KEYS: Final = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_KITCHEN: Final = re.compile(r"^(\d{1,2}):(\d{2})(AM|PM)$")


# --------------------------------------------------------------------------- built-ins


def filter_is_incident(event: Mapping[str, Any]) -> bool:
    """Pass non-zero statuses and resolutions; deny OK -> OK and metrics-only events."""
    return is_incident(event) or is_resolution(event)


def filter_not_silenced(event: Mapping[str, Any]) -> bool:
    """Deny events whose ``check.silenced`` is non-empty."""
    return not is_silenced(event)


def filter_has_metrics(event: Mapping[str, Any]) -> bool:
    """Deny events without a ``metrics`` object."""
    return has_metrics(event)


BUILTIN_FILTERS: Final[Mapping[str, Callable[[Mapping[str, Any]], bool]]] = {
    "is_incident": filter_is_incident,
    "not_silenced": filter_not_silenced,
    "has_metrics": filter_has_metrics,
}
"""Reserved filter names: they are never looked up in the store."""


def builtin_filter_passes(name: str, event: Mapping[str, Any]) -> bool:
    """Whether the built-in filter ``name`` lets ``event`` through.

    Raises ``KeyError`` if ``name`` is not one of the reserved names.
    """
    return BUILTIN_FILTERS[name](event)


# --------------------------------------------------------------------------- when


def parse_kitchen_time(text: str) -> tuple[int, int]:
    """``(hour, minute)`` of a Go ``time.Kitchen`` string such as ``9:00AM``.

    Spaces are removed first (Sensu 1 wrote ``"3:00 PM"``).  Like Go, the hour is 0..12,
    minutes are two digits and the AM/PM marker is upper case; ``12AM`` is midnight.
    Raises ``ValueError`` otherwise.
    """
    compact = str(text).replace(" ", "")
    m = _KITCHEN.match(compact)
    if not m:
        raise ValueError(f'parsing time "{compact}" as "3:04PM": cannot parse')
    hour, minute, marker = int(m.group(1)), int(m.group(2)), m.group(3)
    if hour > 12:
        raise ValueError(f'parsing time "{compact}": hour out of range')
    if minute > 59:
        raise ValueError(f'parsing time "{compact}": minute out of range')
    if marker == "PM" and hour < 12:
        hour += 12
    elif marker == "AM" and hour == 12:
        hour = 0
    return hour, minute


def _in_window(window: Mapping[str, Any], now: datetime) -> bool:
    begin_h, begin_m = parse_kitchen_time(str(window.get("begin", "")))
    end_h, end_m = parse_kitchen_time(str(window.get("end", "")))
    begin = now.replace(hour=begin_h, minute=begin_m, second=0, microsecond=0)
    end = now.replace(hour=end_h, minute=end_m, second=0, microsecond=0)
    if end < begin:
        # The window wraps midnight: either we are in its morning part (from 00:00) or
        # in its evening part (until the end of today).
        if now < end:
            begin = now.replace(hour=0, minute=0, second=0, microsecond=0)
        else:
            end = now.replace(hour=23, minute=59, second=59, microsecond=999999)
    return begin <= now <= end


def _windows_for(when: Mapping[str, Any], now: datetime) -> list[Mapping[str, Any]]:
    days = when.get("days") or {}
    # Python: Monday == 0; Go and Sensu: Sunday == 0.
    today = _DAY_KEYS[(now.weekday() + 1) % 7]
    return list(days.get("all") or []) + list(days.get(today) or [])


def evaluate_when(when: Mapping[str, Any], now_utc: datetime) -> bool:
    """Whether ``now_utc`` falls in any of the ``when`` windows that apply today.

    Windows under ``days.all`` and under today's weekday apply; times are UTC, both ends
    inclusive at minute precision (``begin <= now <= end``), and ``end`` before ``begin``
    wraps midnight.  A naive ``now_utc`` is taken as UTC.  Raises ``ValueError`` for an
    unparseable time, as Go's ``InWindows`` returns an error.
    """
    now = now_utc.replace(tzinfo=timezone.utc) if now_utc.tzinfo is None else now_utc.astimezone(timezone.utc)
    return any(_in_window(window, now) for window in _windows_for(when, now))


def validate_when(when: Mapping[str, Any] | None) -> str | None:
    """An error message for the first unparseable window in ``when``, or ``None``."""
    if not when:
        return None
    days = when.get("days") or {}
    for key in ("all", *_DAY_KEYS):
        for window in days.get(key) or []:
            for edge in ("begin", "end"):
                try:
                    parse_kitchen_time(str(window.get(edge, "")))
                except ValueError as exc:
                    return f"when.days.{key}: {edge}: {exc}"
    return None


def when_gate(event_filter: Mapping[str, Any], now_utc: datetime) -> bool | None:
    """The decision the time windows alone force, or ``None`` to evaluate expressions.

    As in sensu-go's ``evaluateEventFilter``: no ``when`` -> ``None``; an unparseable
    window -> ``True`` (the event passes; Go logs and does not filter); ``allow`` outside
    every window -> ``False``; ``deny`` outside every window -> ``True`` (the deny filter
    is not in force); otherwise ``None``.
    """
    when = event_filter.get("when")
    if not when:
        return None
    try:
        inside = evaluate_when(when, now_utc)
    except ValueError:
        return True
    action = event_filter.get("action")
    if not inside:
        if action == "allow":
            return False
        if action == "deny":
            return True
    return None


def filter_decision(
    event_filter: Mapping[str, Any],
    event: Mapping[str, Any],
    js_results: Sequence[bool | None],
    *,
    now_utc: datetime | None = None,
) -> bool:
    """``True`` if the event passes the stored ``EventFilter``, ``False`` if it is denied.

    ``js_results`` holds one entry per ``expressions`` item, ``None`` for an expression
    that threw, timed out or returned a non-boolean: such results are skipped.  After the
    ``when`` gate (see ``when_gate``): ``allow`` passes only if every remaining result is
    true (AND); ``deny`` (6.9+) denies if any remaining result is true (OR).  With no
    remaining results the event passes.  An unknown action passes, as Go does after
    logging "unhandled case".  ``event`` is accepted for symmetry with the built-ins.
    """
    gate = when_gate(event_filter, now_utc or datetime.now(timezone.utc))
    if gate is not None:
        return gate
    results = [r for r in js_results if r is not None]
    action = event_filter.get("action")
    if action == "allow":
        return all(results)
    if action == "deny":
        return not any(results)
    return True


# --------------------------------------------------------------------------- handler sets


@dataclass(slots=True, kw_only=True)
class HandlerExpansion:
    """Result of expanding handler names: what runs, and what was skipped and why."""

    handlers: list[Mapping[str, Any]] = field(default_factory=list)
    """Non-set handlers, de-duplicated by name (first seen wins) and sorted by name."""
    missing: list[str] = field(default_factory=list)
    """Names that the lookup did not find (Go logs "handler does not exist" at info)."""
    dropped_sets: list[str] = field(default_factory=list)
    """Sets whose members were nested too deeply (Go logs "handler sets cannot be deeply
    nested" and drops the whole set)."""


def _handler_name(handler: Mapping[str, Any], fallback: str) -> str:
    return str((handler.get("metadata") or {}).get("name") or handler.get("name") or fallback)


def handler_set_expand(
    names: Iterable[str], lookup: Callable[[str], Mapping[str, Any] | None]
) -> HandlerExpansion:
    """Expand handler names, recursing into ``set`` handlers, as Go's ``expandHandlers``.

    Top-level names are level 1 and a set's members one level deeper; expanding a set
    whose members would sit below level 3 fails and drops that set (the only protection
    against loops: a self-referencing set simply hits the limit).  Unknown names are
    skipped.  ``lookup`` returns the handler dict for a name in the event's namespace, or
    ``None``.
    """
    result = HandlerExpansion()
    found = _expand(list(names), 1, lookup, result) or {}
    result.handlers = [found[name] for name in sorted(found)]
    return result


def _expand(level_names: Iterable[str], level: int, lookup: Callable[[str], Mapping[str, Any] | None],
            result: HandlerExpansion) -> dict[str, Mapping[str, Any]] | None:
    """One level of :func:`handler_set_expand`; None when the level is too deep.

    A module function rather than a closure that calls itself: that closure
    was a reference cycle per event, freed only by the garbage collector.
    """
    if level > HANDLER_SET_MAX_DEPTH:
        return None
    out: dict[str, Mapping[str, Any]] = {}
    for name in level_names:
        handler = lookup(name)
        if handler is None:
            if name not in result.missing:
                result.missing.append(name)
            continue
        if handler.get("type") == "set":
            members = _expand(list(handler.get("handlers") or []), level + 1, lookup, result)
            if members is None:
                set_name = _handler_name(handler, name)
                if set_name not in result.dropped_sets:
                    result.dropped_sets.append(set_name)
                continue
            for member_name, member in members.items():
                out.setdefault(member_name, member)
        else:
            out.setdefault(_handler_name(handler, name), handler)
    return out
