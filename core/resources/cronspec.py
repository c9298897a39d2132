"""Syntax rules for check ``cron`` strings (Go durations: :mod:`core.durations`).

Go validates ``cron`` with robfig/cron's ``ParseStandard``: five fields (minute hour
day-of-month month day-of-week), the ``@yearly``/``@annually``/``@monthly``/``@weekly``/
``@daily``/``@midnight``/``@hourly`` descriptors, ``@every <go duration>``, and an optional
``CRON_TZ=<zone>`` or ``TZ=<zone>`` prefix (spec §2.2, runtime §4.2).  Only validation
lives here: a resource module must stay pure, and the scheduler owns evaluation.
"""

from __future__ import annotations

import zoneinfo
from typing import Final

from ..durations import parse_go_duration

__all__ = ["cron_error"]

_DESCRIPTORS: Final = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

_MONTHS: Final = {m: i + 1 for i, m in enumerate(
    ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"])}
_DOWS: Final = {d: i for i, d in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}

# (name, low, high, names)
_FIELDS: Final[list[tuple[str, int, int, dict[str, int]]]] = [
    ("minute", 0, 59, {}),
    ("hour", 0, 23, {}),
    ("day of month", 1, 31, {}),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DOWS),
]

def _value(text: str, low: int, high: int, names: dict[str, int]) -> int:
    named = names.get(text.lower())
    if named is not None:
        return named
    if not text.isdigit() or not text.isascii():
        raise ValueError(f"failed to parse int from {text}")
    value = int(text)
    if value < low or value > high:
        raise ValueError(f"value {value} out of range [{low}, {high}]")
    return value


def _field_error(text: str, low: int, high: int, names: dict[str, int]) -> str | None:
    for expr in text.split(","):
        range_and_step = expr.split("/")
        if len(range_and_step) > 2:
            return f"too many slashes: {expr}"
        low_and_high = range_and_step[0].split("-")
        if len(low_and_high) > 2:
            return f"too many hyphens: {expr}"
        try:
            if low_and_high[0] in ("*", "?"):
                start, end = low, high
                if len(low_and_high) > 1:
                    return f"too many hyphens: {expr}"
            else:
                start = _value(low_and_high[0], low, high, names)
                end = start
                if len(low_and_high) == 2:
                    end = _value(low_and_high[1], low, high, names)
            if len(range_and_step) == 2:
                step_text = range_and_step[1]
                if not step_text.isdigit() or not step_text.isascii():
                    return f"failed to parse int from {step_text}"
                if int(step_text) <= 0:
                    return f"step of range should be a positive number: {expr}"
        except ValueError as e:
            return str(e)
        if start > end:
            return f"beginning of range ({start}) beyond end of range ({end}): {expr}"
    return None


def cron_error(spec: str) -> str | None:
    """Why ``spec`` is not a valid cron schedule, or ``None`` when it is."""
    spec = spec.strip()
    if not spec:
        return "empty spec string"
    if spec.startswith(("TZ=", "CRON_TZ=")):
        space = spec.find(" ")
        if space < 0:
            return "missing schedule after time zone"
        zone = spec[spec.index("=") + 1:space]
        try:
            zoneinfo.ZoneInfo(zone)
        except (ValueError, KeyError, OSError, TypeError):
            return f"provided bad location {zone}"
        spec = spec[space:].strip()
        if not spec:
            return "missing schedule after time zone"
    if spec.startswith("@"):
        if spec in _DESCRIPTORS:
            return None
        if spec.startswith("@every "):
            try:
                parse_go_duration(spec[len("@every "):].strip())
            except ValueError as e:
                return f"failed to parse duration {spec}: {e}"
            return None
        return f"unrecognized descriptor: {spec}"
    fields = spec.split()
    if len(fields) != 5:
        return f"expected exactly 5 fields, found {len(fields)}: {spec}"
    for text, (name, low, high, names) in zip(fields, _FIELDS):
        err = _field_error(text, low, high, names)
        if err is not None:
            return f"{name}: {err}"
    return None
