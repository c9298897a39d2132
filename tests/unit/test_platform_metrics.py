"""Prometheus text to InfluxDB line protocol, and a platform metrics log that cannot be written."""

from __future__ import annotations

from pathlib import Path

from backend.platformmetrics import PlatformMetricsLog, to_line_protocol


def test_samples_become_line_protocol_and_comments_are_dropped() -> None:
    lines = ["# HELP x y", "# TYPE x gauge", 'sensu_go_agent_sessions{namespace="a b,c"} 3',
             'sensu_go_build_info{version="6.9.2",buildsha=""} 1', "sensu_go_asset_fetch_duration_sum 0.250000"]
    assert to_line_protocol(lines, 7) == [
        "sensu_go_agent_sessions,namespace=a\\ b\\,c value=3 7",
        "sensu_go_build_info,version=6.9.2 value=1 7",
        "sensu_go_asset_fetch_duration_sum value=0.250000 7",
    ]


async def test_appends_and_an_unwritable_file_is_only_counted(tmp_path: Path) -> None:
    good = PlatformMetricsLog(str(tmp_path / "stats.log"), 60, lambda: ["sensu_go_x 1"])
    await good.write_once()
    await good.write_once()
    assert [ln.split(" ")[0] for ln in (tmp_path / "stats.log").read_text().splitlines()] == ["sensu_go_x"] * 2
    bad = PlatformMetricsLog(str(tmp_path / "missing" / "stats.log"), 60, lambda: ["sensu_go_x 1"])
    await bad.write_once()
    assert bad.stats == {"writes": 0, "errors": 1}
