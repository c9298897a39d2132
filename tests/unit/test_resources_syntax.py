"""The cron and JavaScript syntax screens used by validation."""

from __future__ import annotations

import pytest

from core.cron import cron_error
from core.durations import parse_go_duration
from core.resources.jscheck import js_syntax_error


@pytest.mark.parametrize("spec", [
    "* * * * *", "*/5 * * * *", "0 9-17 * * 1-5", "0 0 1,15 * *", "0 0 * JAN-MAR sun", "0 0 ? * *",
    "@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly", "@every 10s",
    "@every 1h30m", "@every 1.5h", "CRON_TZ=America/New_York 0 6 * * *", "TZ=UTC @daily", "  @daily  ",
])
def test_valid_cron(spec: str) -> None:
    assert cron_error(spec) is None


@pytest.mark.parametrize("spec", [
    "", "* * * *", "* * * * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *", "* * * * 7",
    "*/0 * * * *", "5-1 * * * *", "1-2-3 * * * *", "a * * * *", "@often", "@every", "@every 10",
    "@every 10x", "TZ=Nowhere/City 0 0 * * *", "CRON_TZ=UTC", "*/a * * * *", "1/2/3 * * * *",
])
def test_invalid_cron(spec: str) -> None:
    assert cron_error(spec) is not None


def test_go_durations() -> None:
    assert parse_go_duration("1h30m") == 5400
    assert parse_go_duration("1.5s") == 1.5
    assert parse_go_duration("-2m") == -120
    assert parse_go_duration("0") == 0
    assert parse_go_duration("100ms") == pytest.approx(0.1)
    assert parse_go_duration("3\u00b5s") == pytest.approx(3e-6)
    for bad in ("", "1", "h", "1hx", ".s", "1..5s"):
        with pytest.raises(ValueError):
            parse_go_duration(bad)


@pytest.mark.parametrize("expr", [
    "event.check.status == 1",
    "event.check.occurrences == 1 || event.check.status != 0",
    "event.entity.labels['region'] == \"eu\"",
    "event.check.output.match(/disk [(]full/)",
    "event.check.output.match(/a\\/b/) != null",
    "weekday(event.timestamp) >= 1 && hour(event.timestamp) < 17",
    "a / b > 1 // trailing comment",
    "/* c */ [1, 2, 3].indexOf(event.check.status) >= 0",
    "'it\\'s' == x",
    "x == `template`",
    "{a: 1}.a == 1",
])
def test_valid_js(expr: str) -> None:
    assert js_syntax_error(expr) is None


@pytest.mark.parametrize("expr", ["", "   ", "(", "a)", "a[1", "'open", "\"open", "/* open", "a == /unterminated",
                                  "(]", "f(a, b", "x = {"])
def test_invalid_js(expr: str) -> None:
    assert js_syntax_error(expr) is not None
