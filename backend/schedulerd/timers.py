"""Pure scheduling arithmetic (runtime.md §4.2 and §4.4).

* Interval checks fire at a phase derived from the check name, so every backend (and
  every restart) computes the same ticks without coordination (Go's
  ``calcExecutionSplay``/``calcInitialOffset``).
* Cron checks: :mod:`core.cron` (robfig/cron v3's rules over croniter); the backend's
  local time unless the expression names a zone.
* Subdue windows (6.7+) skip ticks; ``splay_delays`` spreads proxy requests.

No clocks are read here: callers pass ``now``.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from datetime import date, datetime, timedelta, timezone
from typing import Any, Final

from core.cron import next_cron_fire, parse_cron

__all__ = [
    "DEFAULT_SPLAY_COVERAGE",
    "SPLAY_PERIOD_FLOOR_S",
    "SUBDUE_REPEATS",
    "check_splay",
    "in_subdue",
    "next_interval_fire",
    "splay_delays",
    "splay_period",
    "validate_subdue",
]

DEFAULT_SPLAY_COVERAGE: Final = 90
SPLAY_PERIOD_FLOOR_S: Final = 5.0
_U64: Final = 2**64

# --------------------------------------------------------------------------- interval


def check_splay(name: str) -> int:
    """Little-endian uint64 of the first 8 bytes of ``MD5(name)``."""
    return int(struct.unpack("<Q", hashlib.md5(name.encode("utf-8")).digest()[:8])[0])


def next_interval_fire(name: str, interval_s: int, now_ns: int) -> int:
    """Nanoseconds from ``now_ns`` until the interval check ``name`` first fires.

    ``((splay - now_ns) mod 2**64) mod (interval * 10**9)``; afterwards the timer fires
    every ``interval`` seconds.  ``now_ns + result`` lands on the same phase modulo the
    interval on every backend.  Raises ``ValueError`` for an interval below 1 s.
    """
    if interval_s < 1:
        raise ValueError("interval must be at least 1 second")
    return ((check_splay(name) - now_ns) % _U64) % (int(interval_s) * 1_000_000_000)


# --------------------------------------------------------------------------- subdues

SUBDUE_REPEATS: Final = frozenset(
    {
        "annually",
        "monthly",
        "weekly",
        "weekdays",
        "weekends",
        "daily",
        "sundays",
        "mondays",
        "tuesdays",
        "wednesdays",
        "thursdays",
        "fridays",
        "saturdays",
    }
)
_DAY_REPEATS: Final = {
    "sundays": 0,
    "mondays": 1,
    "tuesdays": 2,
    "wednesdays": 3,
    "thursdays": 4,
    "fridays": 5,
    "saturdays": 6,
}


def _parse_rfc3339(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("z", "Z").replace("Z", "+00:00"))
    if value.tzinfo is None:
        raise ValueError(f"{text!r} has no UTC offset (RFC 3339 requires one)")
    return value


def validate_subdue(subdue: Mapping[str, Any]) -> str | None:
    """An error message for an invalid subdue window, or ``None`` (Go's ``Validate``)."""
    try:
        begin = _parse_rfc3339(subdue.get("begin", ""))
    except ValueError as exc:
        return f"invalid begin time format: {exc}"
    try:
        end = _parse_rfc3339(subdue.get("end", ""))
    except ValueError as exc:
        return f"invalid end time format: {exc}"
    if end < begin:
        return "end time must be after begin time"
    for repeat in subdue.get("repeat") or []:
        if repeat not in SUBDUE_REPEATS:
            return f"invalid repeat period: {repeat}"
    return None


def _go_weekday(d: date) -> int:
    return (d.weekday() + 1) % 7


def _occurrence_days(repeat: str, begin: datetime, today: date) -> list[date]:
    """Dates (in ``begin``'s zone) on which an occurrence of the window may have started
    and still cover ``today``: the current period's and the previous period's."""
    if repeat == "daily":
        return [today, today - timedelta(days=1)]
    weekdays: list[int]
    if repeat in _DAY_REPEATS:
        weekdays = [_DAY_REPEATS[repeat]]
    elif repeat == "weekly":
        weekdays = [_go_weekday(begin.date())]
    elif repeat == "weekdays":
        weekdays = [1, 2, 3, 4, 5]
    elif repeat == "weekends":
        weekdays = [6, 0]
    elif repeat == "monthly":
        days = []
        year, month = today.year, today.month
        for _ in range(2):
            try:
                days.append(date(year, month, begin.day))
            except ValueError:
                pass
            year, month = (year, month - 1) if month > 1 else (year - 1, 12)
        return days
    elif repeat == "annually":
        days = []
        for year in (today.year, today.year - 1):
            try:
                days.append(date(year, begin.month, begin.day))
            except ValueError:
                pass
        return days
    else:
        return []
    out = []
    for wd in weekdays:
        latest = today - timedelta(days=(_go_weekday(today) - wd) % 7)
        out.extend([latest, latest - timedelta(days=7)])
    return out


def _in_one_subdue(subdue: Mapping[str, Any], now: datetime) -> bool:
    try:
        begin = _parse_rfc3339(subdue.get("begin", ""))
        end = _parse_rfc3339(subdue.get("end", ""))
    except ValueError:
        return False
    slack = timedelta(seconds=1)
    repeats = list(subdue.get("repeat") or [])
    if not repeats:
        return begin <= now < end + slack
    if now < begin:
        return False
    duration = end - begin
    local_now = now.astimezone(begin.tzinfo)
    for repeat in repeats:
        for day in _occurrence_days(repeat, begin, local_now.date()):
            start = datetime.combine(day, begin.timetz())
            if start <= local_now < start + duration + slack:
                return True
    return False


def in_subdue(subdues: Sequence[Mapping[str, Any]] | None, now: datetime) -> bool:
    """Whether ``now`` is inside any subdue window, so the tick must be skipped.

    Each window is ``[begin, end + 1 s)``.  Without ``repeat`` it is one absolute window.
    With ``repeat``, the window's time of day and length (taken in ``begin``'s UTC
    offset) recur on the listed days, never before ``begin``.  Unlike Go's
    ``TimeWindowRepeated``, an occurrence that runs past midnight (or past the end of its
    week/month/year) is honoured after midnight too.  A naive ``now`` is taken as UTC; an
    unparseable window never matches (validation rejects it at the API).
    """
    if not subdues:
        return False
    if now.tzinfo is None:
        now = now.replace(tzinfo=timezone.utc)
    return any(_in_one_subdue(s, now) for s in subdues)


# --------------------------------------------------------------------------- proxy splay


def splay_period(interval_s: int, cron: str | None, now: datetime) -> float:
    """The period a proxy check's splay spreads over, in seconds.

    The interval, or for cron checks the time until the next fire; if that is under
    5 s, the time until the fire after it.
    """
    if not cron:
        return float(interval_s)
    schedule = parse_cron(cron)
    nxt = next_cron_fire(schedule, now)
    period = (nxt - now).total_seconds()
    if period < SPLAY_PERIOD_FLOOR_S:
        period = (next_cron_fire(schedule, nxt) - now).total_seconds()
    return period


def splay_delays(period_s: float, coverage_pct: int, n: int) -> list[float]:
    """Offsets (seconds after the tick) at which to publish each of ``n`` proxy requests.

    Sensu sleeps ``period * coverage / 100 / n`` before each publish, so request ``i``
    (0-based) goes out at ``(i + 1) * step``.  ``coverage_pct`` 0 means the default 90.
    """
    if n <= 0:
        return []
    coverage = coverage_pct or DEFAULT_SPLAY_COVERAGE
    step = float(period_s) * (coverage / 100.0) / n
    return [step * (i + 1) for i in range(n)]
