"""What core/cron.py adds to croniter: robfig/cron's grammar, day rule and DST reading."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from core.cron import cron_error, next_cron_fire

UTC = timezone.utc


@pytest.mark.parametrize("expr", ["0 0 L * *", "0 0 1W * *", "0 0 * * 1#2", "H * * * *", "0 0 * * 7",
                                  "0 0 * * * 2030", "22-2 * * * *"])
def test_croniter_extensions_that_robfig_refuses(expr: str) -> None:
    assert cron_error(expr) is not None


@pytest.mark.parametrize(("expr", "message"), [
    ("61 * * * *", "minute: end of range (61) above maximum (59): 61"),
    ("* * * * sun-x", "day of week: failed to parse int from x"),
    ("* * * *", "expected exactly 5 fields, found 4: * * * *"),
    ("@every 10", 'failed to parse duration @every 10: time: missing unit in duration "10"'),
])
def test_messages(expr: str, message: str) -> None:
    assert cron_error(expr) == message


def test_restricted_day_fields_are_ored_even_when_one_covers_the_month() -> None:
    # robfig: neither field is "*", so either matches, and 1-31 matches every day.
    assert next_cron_fire("0 0 1-31 * mon", datetime(2024, 1, 2, 12, tzinfo=UTC)) == datetime(2024, 1, 3, tzinfo=UTC)
    # "*/1" keeps the star: the weekday alone decides.
    assert next_cron_fire("0 0 */1 * mon", datetime(2024, 1, 2, 12, tzinfo=UTC)) == datetime(2024, 1, 8, tzinfo=UTC)


def test_a_wall_time_repeated_by_a_fall_back_fires_twice() -> None:
    ny = "CRON_TZ=America/New_York 30 1 * * *"
    first = next_cron_fire(ny, datetime(2024, 11, 3, 4, 0, tzinfo=UTC))  # 00:00 EDT
    assert first == datetime(2024, 11, 3, 5, 30, tzinfo=UTC)  # 01:30 EDT
    assert next_cron_fire(ny, first) == datetime(2024, 11, 3, 6, 30, tzinfo=UTC)  # 01:30 EST
    assert next_cron_fire(ny, datetime(2024, 11, 3, 6, 30, tzinfo=UTC)) == datetime(2024, 11, 4, 6, 30, tzinfo=UTC)


def test_a_wall_time_before_the_start_can_come_later_across_a_fall_back() -> None:
    # 01:50 EDT; 01:10 EST comes twenty minutes later on the time line.
    got = next_cron_fire("CRON_TZ=America/New_York 10 1 * * *", datetime(2024, 11, 3, 5, 50, tzinfo=UTC))
    assert got == datetime(2024, 11, 3, 6, 10, tzinfo=UTC)
