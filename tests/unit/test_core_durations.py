"""Go's ``time.ParseDuration``, the one duration parser (core/durations.py)."""

from __future__ import annotations

import pytest

from core.config_values import parse_duration
from core.durations import parse_go_duration, parse_go_duration_ns


@pytest.mark.parametrize(("text", "ns"), [
    ("0", 0), ("+0", 0), ("-0", 0), ("1ns", 1), ("1.5ns", 1), ("3us", 3_000), ("3\u00b5s", 3_000),
    ("3\u03bcs", 3_000), ("300ms", 300_000_000), ("1.5s", 1_500_000_000), (".5m", 30_000_000_000),
    ("1.h", 3_600_000_000_000), ("1h30m", 5_400_000_000_000), ("-2m", -120_000_000_000),
    ("1h1m1s1ms1us1ns", 3_661_001_001_001), ("2562047h47m16.854775807s", 2**63 - 1),
    ("-2562047h47m16.854775808s", -(2**63)),
])
def test_what_go_accepts(text: str, ns: int) -> None:
    assert parse_go_duration_ns(text) == ns
    assert parse_go_duration(text) == ns / 1e9


@pytest.mark.parametrize(("text", "message"), [
    ("", 'time: invalid duration ""'),
    ("-", 'time: invalid duration "-"'),
    (".", 'time: invalid duration "."'),
    ("h", 'time: invalid duration "h"'),
    (".s", 'time: invalid duration ".s"'),
    ("10", 'time: missing unit in duration "10"'),
    ("1..5s", 'time: missing unit in duration "1..5s"'),
    ("1x", 'time: unknown unit "x" in duration "1x"'),
    ("1h 30m", 'time: unknown unit "h " in duration "1h 30m"'),
    ("2562047h47m16.854775808s", 'time: invalid duration "2562047h47m16.854775808s"'),
])
def test_what_go_refuses_in_its_words(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_go_duration(text)
    assert str(info.value) == message


def test_configuration_also_reads_bare_seconds_around_the_same_parser() -> None:
    assert parse_duration(" 15 ") == 15.0
    assert parse_duration("1h0m30s") == 3630.0
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration("15 s")
