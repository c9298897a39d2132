"""Go's ``time.ParseDuration``: the one parser for every Go duration we read.

Why one module: Sensu spells durations the Go way everywhere (``@every 1h30m`` in a
check's ``cron``, ``agent-write-timeout: 15s``, ``--retry-max 300ms``), and the
scheduler, the resource validation and the configuration layer used to parse them
with three slightly different copies. Why our own code: no well-kept Python
library parses Go durations faithfully (the ones on PyPI either read ISO 8601,
accept spaces and words such as ``"1 hour"``, or drop the ``µs`` spellings and
fractions), and the grammar is small.

What Go accepts, and so what we accept: an optional sign, then one or more
``<number><unit>`` parts with no spaces (``1h30m``, ``1.5s``, ``.5m``, ``1.h``),
units ``ns``, ``us``, ``µs`` (micro sign U+00B5), ``μs`` (Greek mu U+03BC), ``ms``,
``s``, ``m``, ``h``; a lone ``0`` needs no unit. Fractions are truncated to whole
nanoseconds and the total must fit Go's int64 nanoseconds (about 292 years).
Errors carry Go's own wording (``time: missing unit in duration "10"``).
"""

from __future__ import annotations

from typing import Final

__all__ = ["parse_go_duration", "parse_go_duration_ns"]

_UNIT_NS: Final = {
    "ns": 1,
    "us": 1_000,
    "\u00b5s": 1_000,  # micro sign
    "\u03bcs": 1_000,  # Greek small letter mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_MAX_NS: Final = 2**63 - 1
_DIGITS: Final = frozenset("0123456789")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def parse_go_duration_ns(text: str) -> int:
    """Nanoseconds in a Go duration string, exactly as ``time.ParseDuration`` reads it.

    Raises ``ValueError`` with Go's message for anything Go refuses: an empty string,
    a number without a unit, an unknown unit, spaces, or a total beyond int64.
    """
    invalid = ValueError(f"time: invalid duration {_quote(text)}")
    s = text
    negative = False
    if s[:1] in ("-", "+"):
        negative = s[0] == "-"
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise invalid
    total = 0
    pos = 0
    while pos < len(s):
        if s[pos] != "." and s[pos] not in _DIGITS:
            raise invalid
        start = pos
        while pos < len(s) and s[pos] in _DIGITS:
            pos += 1
        whole_digits = s[start:pos]
        fraction, scale, post = 0, 1, False
        if pos < len(s) and s[pos] == ".":
            pos += 1
            frac_start = pos
            overflowed = False
            while pos < len(s) and s[pos] in _DIGITS:
                # Go stops adding digits once the fraction would overflow int64; the rest
                # are below a nanosecond anyway.
                if not overflowed and fraction <= (_MAX_NS - 9) // 10:
                    fraction = fraction * 10 + int(s[pos])
                    scale *= 10
                else:
                    overflowed = True
                pos += 1
            post = pos > frac_start
        if not whole_digits and not post:
            raise invalid
        unit_start = pos
        while pos < len(s) and s[pos] != "." and s[pos] not in _DIGITS:
            pos += 1
        unit = s[unit_start:pos]
        if not unit:
            raise ValueError(f"time: missing unit in duration {_quote(text)}")
        if unit not in _UNIT_NS:
            raise ValueError(f"time: unknown unit {_quote(unit)} in duration {_quote(text)}")
        unit_ns = _UNIT_NS[unit]
        value = int(whole_digits or "0") * unit_ns
        if fraction:
            # Go's arithmetic: float64(f) * (float64(unit) / scale), truncated.
            value += int(float(fraction) * (float(unit_ns) / scale))
        total += value
        if total > _MAX_NS + (1 if negative else 0):
            raise invalid
    return -total if negative else total


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration string (``"1h30m"`` is 5400.0, ``"300ms"`` 0.3, ``"-2m"`` -120.0).

    Raises ``ValueError`` as :func:`parse_go_duration_ns` does.
    """
    return parse_go_duration_ns(text) / 1e9
