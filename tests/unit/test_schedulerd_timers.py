"""runtime.md §4.2 (interval phase, cron, subdues) and §4.4 (proxy splay)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from backend.schedulerd.timers import (
    check_splay,
    in_subdue,
    next_interval_fire,
    splay_delays,
    splay_period,
    validate_subdue,
)
from core.cron import cron_error, local_zone, next_cron_fire, parse_cron
from core.durations import parse_go_duration

UTC = timezone.utc
NS = 1_000_000_000


# --- interval phase ---


def test_splay_is_little_endian_md5_prefix() -> None:
    digest = hashlib.md5(b"check-cpu").digest()
    assert check_splay("check-cpu") == int.from_bytes(digest[:8], "little")


def test_interval_delay_formula() -> None:
    now = 1_700_000_000 * NS + 123_456_789
    splay = check_splay("check-cpu")
    assert next_interval_fire("check-cpu", 60, now) == ((splay - now) % 2**64) % (60 * NS)
    assert 0 <= next_interval_fire("check-cpu", 60, now) < 60 * NS


@pytest.mark.parametrize("name", ["check-cpu", "keepalive-ish", "disk", "a"])
def test_interval_phase_is_the_same_for_any_now(name: str) -> None:
    interval = 60
    t1 = 1_700_000_000 * NS + 17
    t2 = t1 + 12_345 * NS + 987_654_321  # another backend, later, arbitrary offset
    f1 = t1 + next_interval_fire(name, interval, t1)
    f2 = t2 + next_interval_fire(name, interval, t2)
    assert f1 % (interval * NS) == f2 % (interval * NS)
    # Consecutive ticks are an interval apart: from just after a fire, the next is a full
    # interval later.
    assert next_interval_fire(name, interval, f1 + 1) == interval * NS - 1


def test_interval_below_one_second_rejected() -> None:
    with pytest.raises(ValueError):
        next_interval_fire("x", 0, 0)


# --- go durations ---


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h30m", 5400.0), ("90s", 90.0), ("1.5h", 5400.0), ("300ms", 0.3), ("-2m", -120.0), ("0", 0.0)],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "10", "1x", "h", "1h 30m", "."])
def test_bad_go_durations(text: str) -> None:
    with pytest.raises(ValueError):
        parse_go_duration(text)


# --- cron parsing ---


def test_parse_fields_ranges_steps_lists_names() -> None:
    s = parse_cron("0,30 9-17/2 1-5 jan,JUL-sep mon-fri")
    assert s.minutes == {0, 30}
    assert s.hours == {9, 11, 13, 15, 17}
    assert s.doms == {1, 2, 3, 4, 5}
    assert s.months == {1, 7, 8, 9}
    assert s.dows == {1, 2, 3, 4, 5}
    assert not s.dom_star and not s.dow_star
    assert parse_cron("*/15 * * * *").minutes == {0, 15, 30, 45}
    assert parse_cron("5/20 * * * *").minutes == {5, 25, 45}  # "N/step" means N-max/step
    assert parse_cron("* * ? * *").dom_star


@pytest.mark.parametrize(
    ("expr", "equivalent"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_descriptors(expr: str, equivalent: str) -> None:
    assert parse_cron(expr) == parse_cron(equivalent)


@pytest.mark.parametrize(
    ("expr", "fragment"),
    [
        ("", "empty spec"),
        ("* * * *", "expected exactly 5 fields"),
        ("* * * * * *", "expected exactly 5 fields"),
        ("60 * * * *", "above maximum"),
        ("* 24 * * *", "above maximum"),
        ("* * 0 * *", "below minimum"),
        ("* * * 13 *", "above maximum"),
        ("* * * * 7", "above maximum"),
        ("5-1 * * * *", "beyond end of range"),
        ("*/0 * * * *", "positive number"),
        ("1-2-3 * * * *", "too many hyphens"),
        ("*/2/3 * * * *", "too many slashes"),
        ("x * * * *", "failed to parse int"),
        ("@fortnightly", "unrecognized descriptor"),
        ("@every 10", "failed to parse duration"),
        ("CRON_TZ=Mars/Olympus 0 * * * *", "provided bad location"),
    ],
)
def test_validate_cron_errors(expr: str, fragment: str) -> None:
    message = cron_error(expr)
    assert message is not None and fragment in message


@pytest.mark.parametrize(
    "expr", ["* * * * *", "@every 1h30m", "TZ=Europe/Paris 0 9 * * 1-5", "CRON_TZ=UTC @daily", "0 0 * * SUN"]
)
def test_validate_cron_ok(expr: str) -> None:
    assert cron_error(expr) is None


# --- cron next fire ---


@pytest.mark.parametrize(
    ("expr", "after", "expected"),
    [
        ("*/15 * * * *", datetime(2024, 1, 1, 10, 7, 30, tzinfo=UTC), datetime(2024, 1, 1, 10, 15, tzinfo=UTC)),
        ("*/15 * * * *", datetime(2024, 1, 1, 10, 15, tzinfo=UTC), datetime(2024, 1, 1, 10, 30, tzinfo=UTC)),
        ("0 9 * * *", datetime(2024, 1, 1, 8, 59, 59, 999, tzinfo=UTC), datetime(2024, 1, 1, 9, 0, tzinfo=UTC)),
        ("0 9 * * *", datetime(2024, 1, 1, 9, 0, tzinfo=UTC), datetime(2024, 1, 2, 9, 0, tzinfo=UTC)),
        ("@hourly", datetime(2024, 1, 1, 23, 30, tzinfo=UTC), datetime(2024, 1, 2, 0, 0, tzinfo=UTC)),
        ("@monthly", datetime(2024, 1, 31, 12, 0, tzinfo=UTC), datetime(2024, 2, 1, 0, 0, tzinfo=UTC)),
        ("@yearly", datetime(2024, 6, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        # 2024-01-01 is a Monday; @weekly is Sunday midnight.
        ("@weekly", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 7, tzinfo=UTC)),
        ("0 0 29 2 *", datetime(2025, 1, 1, tzinfo=UTC), datetime(2028, 2, 29, tzinfo=UTC)),
        # Day-of-month and day-of-week both restricted: either matches (Vixie OR).
        ("0 0 15 * mon", datetime(2024, 1, 2, tzinfo=UTC), datetime(2024, 1, 8, tzinfo=UTC)),
        ("0 0 15 * mon", datetime(2024, 1, 9, tzinfo=UTC), datetime(2024, 1, 15, tzinfo=UTC)),
        # One of them "*": both must match (AND), i.e. just the restricted one.
        ("0 0 * * fri", datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 5, tzinfo=UTC)),
        ("@every 90s", datetime(2024, 1, 1, 0, 0, 0, 700_000, tzinfo=UTC), datetime(2024, 1, 1, 0, 1, 30, tzinfo=UTC)),
    ],
)
def test_next_cron_fire(expr: str, after: datetime, expected: datetime) -> None:
    assert next_cron_fire(expr, after) == expected


def test_cron_tz_prefix_and_result_zone() -> None:
    after = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)  # 13:00 in Paris (CET, +01:00)
    got = next_cron_fire("CRON_TZ=Europe/Paris 0 14 * * *", after)
    assert got == datetime(2024, 1, 1, 13, 0, tzinfo=UTC)
    assert got.tzinfo is UTC  # expressed in the caller's zone
    assert next_cron_fire("TZ=Europe/Paris 0 14 * * *", after) == got


def test_without_prefix_the_callers_zone_is_local_time() -> None:
    paris = ZoneInfo("Europe/Paris")
    after = datetime(2024, 1, 1, 12, 0, tzinfo=paris)
    assert next_cron_fire("0 14 * * *", after) == datetime(2024, 1, 1, 14, 0, tzinfo=paris)


def test_naive_after_is_taken_in_the_backend_local_zone() -> None:
    got = next_cron_fire("0 9 * * *", datetime(2024, 1, 1, 8, 0))
    assert got.tzinfo is local_zone()
    assert (got.year, got.month, got.day, got.hour, got.minute) == (2024, 1, 1, 9, 0)


def test_dst_spring_forward_gap_is_skipped() -> None:
    ny = "CRON_TZ=America/New_York 30 2 * * *"
    # 2024-03-10 02:30 does not exist in New York: the next run is the day after.
    got = next_cron_fire(ny, datetime(2024, 3, 10, 5, 0, tzinfo=UTC))
    assert got == datetime(2024, 3, 11, 6, 30, tzinfo=UTC)


def test_dst_fall_back_hourly_fires_in_both_passes() -> None:
    ny = "CRON_TZ=America/New_York 0 * * * *"
    first = next_cron_fire(ny, datetime(2024, 11, 3, 4, 30, tzinfo=UTC))  # 00:30 EDT
    assert first == datetime(2024, 11, 3, 5, 0, tzinfo=UTC)  # 01:00 EDT
    second = next_cron_fire(ny, first)
    assert second == datetime(2024, 11, 3, 6, 0, tzinfo=UTC)  # 01:00 EST, an hour later


def test_cron_that_never_fires() -> None:
    with pytest.raises(ValueError, match="never fires"):
        next_cron_fire("0 0 30 2 *", datetime(2024, 1, 1, tzinfo=UTC))


# --- subdues ---


def window(begin: str, end: str, *repeat: str) -> dict[str, object]:
    return {"begin": begin, "end": end, "repeat": list(repeat)}


def test_absolute_subdue_includes_end_plus_one_second() -> None:
    w = [window("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z")]
    assert not in_subdue(w, datetime(2024, 1, 1, 9, 59, 59, tzinfo=UTC))
    assert in_subdue(w, datetime(2024, 1, 1, 10, 0, tzinfo=UTC))
    assert in_subdue(w, datetime(2024, 1, 1, 11, 0, 0, 999_999, tzinfo=UTC))
    assert not in_subdue(w, datetime(2024, 1, 1, 11, 0, 1, tzinfo=UTC))
    assert not in_subdue(w, datetime(2024, 1, 2, 10, 30, tzinfo=UTC))
    assert not in_subdue([], datetime(2024, 1, 1, 10, 30, tzinfo=UTC))
    assert not in_subdue(None, datetime(2024, 1, 1, 10, 30, tzinfo=UTC))


def test_daily_subdue_repeats_and_never_before_begin() -> None:
    w = [window("2024-01-10T22:00:00Z", "2024-01-10T23:00:00Z", "daily")]
    assert in_subdue(w, datetime(2024, 2, 3, 22, 30, tzinfo=UTC))
    assert not in_subdue(w, datetime(2024, 2, 3, 21, 59, tzinfo=UTC))
    assert not in_subdue(w, datetime(2024, 1, 9, 22, 30, tzinfo=UTC))  # before begin


def test_daily_subdue_crossing_midnight() -> None:
    w = [window("2024-01-10T22:00:00Z", "2024-01-11T02:00:00Z", "daily")]
    assert in_subdue(w, datetime(2024, 2, 3, 23, 0, tzinfo=UTC))
    assert in_subdue(w, datetime(2024, 2, 4, 1, 0, tzinfo=UTC))
    assert not in_subdue(w, datetime(2024, 2, 4, 3, 0, tzinfo=UTC))


def test_weekday_and_weekend_repeats_use_begin_offset() -> None:
    # 09:00-17:00 at -05:00 == 14:00-22:00 UTC.
    w = [window("2024-01-01T09:00:00-05:00", "2024-01-01T17:00:00-05:00", "weekdays")]
    assert in_subdue(w, datetime(2024, 1, 3, 15, 0, tzinfo=UTC))  # Wednesday
    assert not in_subdue(w, datetime(2024, 1, 6, 15, 0, tzinfo=UTC))  # Saturday
    assert not in_subdue(w, datetime(2024, 1, 3, 23, 0, tzinfo=UTC))
    weekend = [window("2024-01-01T00:00:00Z", "2024-01-01T23:59:59Z", "weekends")]
    assert in_subdue(weekend, datetime(2024, 1, 7, 12, 0, tzinfo=UTC))  # Sunday
    assert not in_subdue(weekend, datetime(2024, 1, 8, 12, 0, tzinfo=UTC))


def test_named_day_weekly_monthly_annually() -> None:
    fri = [window("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", "fridays")]
    assert in_subdue(fri, datetime(2024, 1, 5, 10, 30, tzinfo=UTC))
    assert not in_subdue(fri, datetime(2024, 1, 4, 10, 30, tzinfo=UTC))
    weekly = [window("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", "weekly")]  # Mondays
    assert in_subdue(weekly, datetime(2024, 1, 15, 10, 30, tzinfo=UTC))
    assert not in_subdue(weekly, datetime(2024, 1, 16, 10, 30, tzinfo=UTC))
    monthly = [window("2024-01-15T10:00:00Z", "2024-01-15T11:00:00Z", "monthly")]
    assert in_subdue(monthly, datetime(2024, 3, 15, 10, 30, tzinfo=UTC))
    assert not in_subdue(monthly, datetime(2024, 3, 16, 10, 30, tzinfo=UTC))
    annually = [window("2024-07-04T00:00:00Z", "2024-07-05T00:00:00Z", "annually")]
    assert in_subdue(annually, datetime(2026, 7, 4, 18, 0, tzinfo=UTC))
    assert not in_subdue(annually, datetime(2026, 7, 6, 18, 0, tzinfo=UTC))


def test_validate_subdue() -> None:
    assert validate_subdue(window("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", "daily")) is None
    assert "invalid begin" in (validate_subdue(window("yesterday", "2024-01-01T11:00:00Z")) or "")
    assert "after begin" in (validate_subdue(window("2024-01-01T11:00:00Z", "2024-01-01T10:00:00Z")) or "")
    assert "invalid repeat" in (validate_subdue(window("2024-01-01T10:00:00Z", "2024-01-01T11:00:00Z", "hourly")) or "")


# --- proxy splay ---


def test_splay_delays() -> None:
    # period 60 s, coverage 90 % over 3 entities: 18 s apart, the first after 18 s.
    assert splay_delays(60, 90, 3) == pytest.approx([18.0, 36.0, 54.0])
    assert splay_delays(60, 0, 2) == pytest.approx([27.0, 54.0])  # 0 -> default 90
    assert splay_delays(60, 50, 0) == []


def test_splay_period() -> None:
    now = datetime(2024, 1, 1, 10, 0, 57, tzinfo=UTC)
    assert splay_period(30, None, now) == 30.0
    # Next fire of "* * * * *" is 3 s away, under the 5 s floor: use the one after.
    assert splay_period(0, "* * * * *", now) == pytest.approx(63.0)
    assert splay_period(0, "*/5 * * * *", now - timedelta(seconds=57)) == pytest.approx(300.0)
