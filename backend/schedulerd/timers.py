"""Pure scheduling arithmetic (runtime.md §4.2 and §4.4).

* Interval checks fire at a phase derived from the check name, so every backend (and
  every restart) computes the same ticks without coordination (Go's
  ``calcExecutionSplay``/``calcInitialOffset``).
* Cron checks use a small re-implementation of robfig/cron v3's ``ParseStandard`` and
  ``SpecSchedule.Next``: five fields, descriptors, ``@every <go duration>`` and an
  optional ``CRON_TZ=``/``TZ=`` prefix; without one, the backend's local time.
* Subdue windows (6.7+) skip ticks; ``splay_delays`` spreads proxy requests.

No clocks are read here: callers pass ``now``.
"""

from __future__ import annotations

import functools
import os
import hashlib
import struct
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from typing import Any, Final

from core.durations import parse_go_duration

__all__ = [
    "CronSchedule",
    "DEFAULT_SPLAY_COVERAGE",
    "SPLAY_PERIOD_FLOOR_S",
    "SUBDUE_REPEATS",
    "check_splay",
    "in_subdue",
    "local_zone",
    "next_cron_fire",
    "next_interval_fire",
    "parse_cron",
    "splay_delays",
    "splay_period",
    "validate_cron",
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


# --------------------------------------------------------------------------- cron

_MONTHS: Final = {
    m: i + 1
    for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"))
}
_DOWS: Final = {d: i for i, d in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}

_DESCRIPTORS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


@dataclass(frozen=True, slots=True)
class _Bounds:
    name: str
    low: int
    high: int
    names: Mapping[str, int]


_FIELDS: Final = (
    _Bounds("minute", 0, 59, {}),
    _Bounds("hour", 0, 23, {}),
    _Bounds("day of month", 1, 31, {}),
    _Bounds("month", 1, 12, _MONTHS),
    _Bounds("day of week", 0, 6, _DOWS),
)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression.

    Either ``every`` (seconds, for ``@every``) or the five field sets.  ``dom_star`` and
    ``dow_star`` record an unrestricted ``*``/``?`` day field, which switches day
    matching from OR to AND exactly as robfig/cron does.  ``tz`` is ``None`` for "the
    backend's local time".
    """

    minutes: frozenset[int] = frozenset()
    hours: frozenset[int] = frozenset()
    doms: frozenset[int] = frozenset()
    months: frozenset[int] = frozenset()
    dows: frozenset[int] = frozenset()
    dom_star: bool = False
    dow_star: bool = False
    every: float | None = None
    tz: tzinfo | None = None


def _parse_value(text: str, bounds: _Bounds) -> int:
    lowered = text.lower()
    if lowered in bounds.names:
        return bounds.names[lowered]
    if not text.isdigit():
        raise ValueError(f"failed to parse int from {text}")
    return int(text)


def _parse_range(expr: str, bounds: _Bounds) -> tuple[set[int], bool]:
    range_and_step = expr.split("/")
    low_high = range_and_step[0].split("-")
    star = False
    if low_high[0] in ("*", "?"):
        if len(low_high) > 1:
            raise ValueError(f"too many hyphens: {expr}")
        start, end, star = bounds.low, bounds.high, True
    else:
        start = _parse_value(low_high[0], bounds)
        if len(low_high) == 1:
            end = start
        elif len(low_high) == 2:
            end = _parse_value(low_high[1], bounds)
        else:
            raise ValueError(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        if not range_and_step[1].isdigit():
            raise ValueError(f"failed to parse int from {range_and_step[1]}")
        step = int(range_and_step[1])
        if len(low_high) == 1:  # "N/step" means "N-max/step"
            end = bounds.high
        if step > 1:
            star = False
    else:
        raise ValueError(f"too many slashes: {expr}")
    if start < bounds.low:
        raise ValueError(f"beginning of range ({start}) below minimum ({bounds.low}): {expr}")
    if end > bounds.high:
        raise ValueError(f"end of range ({end}) above maximum ({bounds.high}): {expr}")
    if start > end:
        raise ValueError(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise ValueError(f"step of range should be a positive number: {expr}")
    return set(range(start, end + 1, step)), star


def _parse_field(text: str, bounds: _Bounds) -> tuple[frozenset[int], bool]:
    values: set[int] = set()
    star = False
    for part in text.split(","):
        part_values, part_star = _parse_range(part, bounds)
        values |= part_values
        star = star or part_star
    return frozenset(values), star


def parse_cron(expr: str) -> CronSchedule:
    """Parse a cron expression as robfig/cron's ``ParseStandard`` does.

    Raises ``ValueError`` with robfig's wording for anything it would reject.
    """
    spec = expr.strip()
    if not spec:
        raise ValueError("empty spec string")
    tz: tzinfo | None = None
    if spec.startswith("TZ=") or spec.startswith("CRON_TZ="):
        head, _, rest = spec.partition(" ")
        zone = head.split("=", 1)[1]
        try:
            tz = zoneinfo.ZoneInfo(zone) if zone not in ("UTC", "") else timezone.utc
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"provided bad location {zone}") from None
        spec = rest.strip()
    if spec.startswith("@"):
        if spec.startswith("@every "):
            try:
                seconds = parse_go_duration(spec[len("@every "):].strip())
            except ValueError as exc:
                raise ValueError(f"failed to parse duration {spec}: {exc}") from None
            # robfig: at least one second, rounded down to whole seconds.
            seconds = max(1.0, seconds)
            return CronSchedule(every=float(int(seconds)), tz=tz)
        if spec not in _DESCRIPTORS:
            raise ValueError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {fields}")
    parsed = [_parse_field(text, bounds) for text, bounds in zip(fields, _FIELDS)]
    return CronSchedule(
        minutes=parsed[0][0],
        hours=parsed[1][0],
        doms=parsed[2][0],
        months=parsed[3][0],
        dows=parsed[4][0],
        dom_star=parsed[2][1],
        dow_star=parsed[4][1],
        tz=tz,
    )


def validate_cron(expr: str) -> str | None:
    """robfig/cron's error message for ``expr``, or ``None`` if it parses."""
    try:
        parse_cron(expr)
    except ValueError as exc:
        return str(exc)
    return None


def _day_matches(s: CronSchedule, d: date) -> bool:
    dom = d.day in s.doms
    dow = ((d.weekday() + 1) % 7) in s.dows
    if s.dom_star or s.dow_star:
        return dom and dow
    return dom or dow


@functools.cache
def local_zone() -> tzinfo:
    """The backend's local zone with its DST rules, like Go's ``time.Local``.

    ``$TZ`` if it names a zone, else ``/etc/localtime``, else the current fixed offset.
    Read once and cached (call it at startup to keep file reads off the hot path).
    """
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return zoneinfo.ZoneInfo.from_file(f, key="localtime")
    except (OSError, ValueError):
        return datetime.now().astimezone().tzinfo or timezone.utc


def _wall(tz: tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """Go's ``time.Date`` in ``tz``: month/day overflow normalised, a wall time inside a DST
    gap shifted forward by the gap, a repeated wall time resolved to its first instant."""
    year += (month - 1) // 12
    month = (month - 1) % 12 + 1
    day_one = date(year, month, 1) + timedelta(days=day - 1)
    naive = datetime(day_one.year, day_one.month, day_one.day, hour, minute)
    return naive.replace(tzinfo=tz, fold=0).astimezone(timezone.utc).astimezone(tz)


def _add(t: datetime, delta: timedelta) -> datetime:
    """Absolute-time addition (Go's ``Time.Add``), unlike aware ``datetime + timedelta``."""
    tz = t.tzinfo
    assert tz is not None
    return (t.astimezone(timezone.utc) + delta).astimezone(tz)


def _after_utc(t: datetime, ref: datetime) -> bool:
    # Aware datetimes sharing a tzinfo compare by wall time and ignore ``fold``.
    return t.astimezone(timezone.utc) > ref.astimezone(timezone.utc)


def next_cron_fire(expr: str | CronSchedule, after: datetime) -> datetime:
    """The first time strictly after ``after`` at which the cron schedule fires.

    Without a ``CRON_TZ``/``TZ`` prefix the schedule runs in ``after``'s own zone, so the
    caller passes ``after`` in the backend's local zone (``local_zone()``) to get Go's
    "backend local time"; a naive ``after`` is taken in ``local_zone()``.  Use a
    ``ZoneInfo`` rather than a fixed offset so DST transitions are honoured: this is a
    port of robfig/cron's ``SpecSchedule.Next`` (wall-clock steps for months and days,
    absolute steps for hours and minutes), so a wall time inside a spring-forward gap is
    skipped and an hourly job also fires in the repeated hour of a fall-back.
    ``@every d`` fires ``d`` after ``after`` truncated to the second.  The result is
    expressed in ``after``'s zone.  Raises ``ValueError`` for a bad expression, or if
    nothing fires within five years (e.g. ``0 0 30 2 *``).
    """
    schedule = parse_cron(expr) if isinstance(expr, str) else expr
    if after.tzinfo is None:
        after = after.replace(tzinfo=local_zone())
    out_tz = after.tzinfo
    if schedule.every is not None:
        start = after.astimezone(timezone.utc).replace(microsecond=0)
        return (start + timedelta(seconds=schedule.every)).astimezone(out_tz)
    tz = schedule.tz or out_tz or local_zone()
    # Start at the next whole second; the seconds field is always {0}.
    t = _add(after.astimezone(tz).replace(microsecond=0), timedelta(seconds=1))
    year_limit = t.year + 5
    added = False
    for _ in range(200_000):
        if t.year > year_limit:
            break
        if t.month not in schedule.months:
            if not added:
                added = True
                t = _wall(tz, t.year, t.month, 1)
            t = _wall(tz, t.year, t.month + 1, t.day, t.hour, t.minute)
            continue
        if not _day_matches(schedule, t.date()):
            if not added:
                added = True
                t = _wall(tz, t.year, t.month, t.day)
            t = _wall(tz, t.year, t.month, t.day + 1, t.hour, t.minute)
            if t.hour != 0:
                # DST moved midnight: step back or forward onto a day boundary.
                t = _add(t, timedelta(hours=24 - t.hour) if t.hour > 12 else timedelta(hours=-t.hour))
            continue
        if t.hour not in schedule.hours:
            if not added:
                added = True
                t = _wall(tz, t.year, t.month, t.day, t.hour)
            t = _add(t, timedelta(hours=1))
            continue
        if t.minute not in schedule.minutes:
            if not added:
                added = True
                t = t.replace(second=0)
            t = _add(t, timedelta(minutes=1))
            continue
        if t.second != 0:
            added = True
            t = _add(t.replace(second=0), timedelta(minutes=1))
            continue
        if _after_utc(t, after):
            return t.astimezone(out_tz)
        t = _add(t, timedelta(minutes=1))
    raise ValueError(f"cron expression {expr!r} never fires within five years")


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
