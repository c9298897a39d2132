"""Check ``cron`` schedules: Sensu Go's rules on top of croniter.

Sensu Go 6 reads a check's ``cron`` with robfig/cron v3's ``ParseStandard`` and fires it
with ``SpecSchedule.Next`` (spec §2.2, runtime §4.2). croniter (pallets-eco, MIT) does
the calendar search here: given a wall-clock time, the next wall-clock minute whose
minute, hour, day, month and weekday match, across month lengths and leap years, with
day-of-month and day-of-week ORed when both are restricted, and giving up after five
years as robfig does. What croniter does not do the way Sensu does, and so this module
keeps:

* The grammar and its messages. croniter accepts more than ``ParseStandard`` (six or
  seven fields, ``L``/``W``/``#``/``H``, ``7`` for Sunday, wrapping ranges such as
  ``5-1``) and words its errors its own way, while a check's validation error must say
  what robfig says. Each field is checked against robfig's rules and handed to croniter
  as an explicit list.
* robfig's day rule: a day field written ``*`` or ``?`` (without a step above 1) lets the
  other day field alone decide; otherwise either may match. Such a field is handed to
  croniter as ``*``, which croniter reads the same way.
* The ``CRON_TZ=<zone>``/``TZ=<zone>`` prefix (without one, the backend's local time),
  the ``@yearly``/``@annually``/``@monthly``/``@weekly``/``@daily``/``@midnight``/
  ``@hourly`` descriptors, and ``@every <go duration>``.
* Wall clock to instant, Go's way. robfig steps hours and minutes in absolute time and
  matches the wall clock, so a wall time inside a spring-forward gap never fires and one
  repeated by a fall-back fires at both instants; croniter, given an aware time, would
  move the first to the end of the gap. So croniter is asked for naive wall-clock times
  and each is placed on the time line here.

Where this differs from robfig, robfig misbehaves and we fire at the wall times the
expression names: in zones whose midnight falls inside a DST gap (Santiago, Havana, Sao
Paulo before 2019) robfig's day step skips the day of the change, and in
Australia/Lord_Howe, whose clock moves by half an hour, robfig's hour steps land on the
half hour for the rest of that day.

Pure: no clock is read; callers pass the time to start from.
"""

from __future__ import annotations

import functools
import os
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Final

from croniter import CroniterBadDateError, croniter  # type: ignore[import-untyped]

from .durations import parse_go_duration

__all__ = ["CronSchedule", "cron_error", "local_zone", "next_cron_fire", "parse_cron"]

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

#: How far ahead a clock change can move a wall time back; two hours is the largest
#: DST shift in the zone database (Antarctica/Troll), three leaves a margin.
_LOOKAHEAD: Final = timedelta(hours=3)


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A parsed cron expression.

    Either ``every`` (seconds, for ``@every``) or the five field sets. ``dom_star`` and
    ``dow_star`` record a ``*``/``?`` day field, which lets the other day field alone
    decide, as in robfig/cron. ``tz`` is ``None`` for "the backend's local time".
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

    def croniter_expression(self) -> str:
        """The five fields as explicit lists, a starred day field as ``*``."""

        def listed(values: frozenset[int]) -> str:
            return ",".join(str(v) for v in sorted(values))

        return " ".join((
            listed(self.minutes),
            listed(self.hours),
            "*" if self.dom_star else listed(self.doms),
            listed(self.months),
            "*" if self.dow_star else listed(self.dows),
        ))


def _parse_value(text: str, bounds: _Bounds) -> int:
    lowered = text.lower()
    if lowered in bounds.names:
        return bounds.names[lowered]
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"failed to parse int from {text}")
    return int(text)


def _parse_range(expr: str, bounds: _Bounds) -> tuple[set[int], bool]:
    """robfig's ``getRange``: ``*``, ``?``, ``N``, ``N-M``, each with an optional ``/step``."""
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
        step_text = range_and_step[1]
        if not step_text.isdigit() or not step_text.isascii():
            raise ValueError(f"failed to parse int from {step_text}")
        step = int(step_text)
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
    try:
        for part in text.split(","):
            part_values, part_star = _parse_range(part, bounds)
            values |= part_values
            star = star or part_star
    except ValueError as exc:
        raise ValueError(f"{bounds.name}: {exc}") from None
    return frozenset(values), star


def _zone(name: str) -> tzinfo:
    if name in ("", "UTC"):  # Go's time.LoadLocation
        return timezone.utc
    try:
        return zoneinfo.ZoneInfo(name)
    except (ValueError, KeyError, OSError):  # ZoneInfoNotFoundError is a KeyError
        raise ValueError(f"provided bad location {name}") from None


@functools.lru_cache(maxsize=1024)
def parse_cron(expr: str) -> CronSchedule:
    """Parse a check's ``cron`` as robfig/cron's ``ParseStandard`` does.

    Raises ``ValueError`` with robfig's wording, a field's message prefixed with the
    field's name (``minute: end of range (61) above maximum (59): 61``).
    """
    spec = expr.strip()
    if not spec:
        raise ValueError("empty spec string")
    tz: tzinfo | None = None
    if spec.startswith(("TZ=", "CRON_TZ=")):
        head, _, rest = spec.partition(" ")
        tz = _zone(head.split("=", 1)[1])
        spec = rest.strip()
        if not spec:
            raise ValueError("missing schedule after time zone")
    if spec.startswith("@"):
        if spec.startswith("@every "):
            try:
                seconds = parse_go_duration(spec[len("@every "):].strip())
            except ValueError as exc:
                raise ValueError(f"failed to parse duration {spec}: {exc}") from None
            # robfig: at least one second, rounded down to whole seconds.
            return CronSchedule(every=float(int(max(1.0, seconds))), tz=tz)
        if spec not in _DESCRIPTORS:
            raise ValueError(f"unrecognized descriptor: {spec}")
        spec = _DESCRIPTORS[spec]
    fields = spec.split()
    if len(fields) != 5:
        raise ValueError(f"expected exactly 5 fields, found {len(fields)}: {spec}")
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


def cron_error(expr: str) -> str | None:
    """Why ``expr`` is not a valid check ``cron``, in robfig's words, or ``None``."""
    try:
        parse_cron(expr)
    except ValueError as exc:
        return str(exc)
    return None


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


def _instants(wall: datetime, tz: tzinfo) -> list[datetime]:
    """The UTC instants at which the clock in ``tz`` reads ``wall`` (naive): none inside
    a spring-forward gap, two in an hour a fall-back repeats, else one."""
    out: list[datetime] = []
    for fold in (0, 1):
        instant = wall.replace(tzinfo=tz, fold=fold).astimezone(timezone.utc)
        if instant.astimezone(tz).replace(tzinfo=None) == wall and instant not in out:
            out.append(instant)
    return out


def _next_spec_fire(schedule: CronSchedule, tz: tzinfo, after: datetime) -> datetime | None:
    """The first whole minute strictly after ``after`` whose wall clock in ``tz`` matches.

    croniter lists matching wall times from a start; a wall time earlier than
    ``after``'s can still come later on the time line when the clock is about to be
    turned back, so the search starts that much earlier and keeps the earliest instant.
    """
    after_utc = after.astimezone(timezone.utc)
    local = after_utc.astimezone(tz)
    later = (after_utc + _LOOKAHEAD).astimezone(tz)
    slack = max(timedelta(0), (local.utcoffset() or timedelta(0)) - (later.utcoffset() or timedelta(0)))
    walls = croniter(schedule.croniter_expression(), local.replace(tzinfo=None) - slack,
                     day_or=True, max_years_between_matches=5)
    best: datetime | None = None
    horizon: datetime | None = None
    while True:
        try:
            wall: datetime = walls.get_next(datetime)
        except CroniterBadDateError:
            return best
        if horizon is not None and wall > horizon:
            return best
        for instant in _instants(wall, tz):
            if instant > after_utc and (best is None or instant < best):
                best = instant
                horizon = wall + slack
        if best is not None and not slack:
            return best  # no clock change ahead: wall order is time order


def next_cron_fire(expr: str | CronSchedule, after: datetime) -> datetime:
    """The first time strictly after ``after`` at which the cron schedule fires.

    Without a ``CRON_TZ``/``TZ`` prefix the schedule runs in ``after``'s own zone, so the
    caller passes ``after`` in the backend's local zone (``local_zone()``) to get Go's
    "backend local time"; a naive ``after`` is taken in ``local_zone()``. Use a
    ``ZoneInfo`` rather than a fixed offset so DST transitions are honoured: a wall time
    inside a spring-forward gap is skipped and an hourly job also fires in the repeated
    hour of a fall-back. ``@every d`` fires ``d`` after ``after`` truncated to the
    second. The result is expressed in ``after``'s zone. Raises ``ValueError`` for a bad
    expression, or if nothing fires within five years (e.g. ``0 0 30 2 *``).
    """
    schedule = parse_cron(expr) if isinstance(expr, str) else expr
    if after.tzinfo is None:
        after = after.replace(tzinfo=local_zone())
    out_tz = after.tzinfo
    if schedule.every is not None:
        start = after.astimezone(timezone.utc).replace(microsecond=0)
        return (start + timedelta(seconds=schedule.every)).astimezone(out_tz)
    fire = _next_spec_fire(schedule, schedule.tz or out_tz or local_zone(), after)
    if fire is None:
        raise ValueError(f"cron expression {expr!r} never fires within five years")
    return fire.astimezone(out_tz)
