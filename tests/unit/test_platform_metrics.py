"""Metric families to InfluxDB line protocol, and a platform metrics log that cannot be written."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily

from backend.platformmetrics import PlatformMetricsLog, to_line_protocol


def gauge(name: str, value: float) -> list[Metric]:
    return [GaugeMetricFamily(name, "help", value=value)]


def test_samples_become_line_protocol_labels_in_order_and_empty_ones_dropped() -> None:
    sessions = GaugeMetricFamily("sensu_go_agent_sessions", "x", labels=["namespace"])
    sessions.add_metric(["a b,c"], 3)
    build = GaugeMetricFamily("sensu_go_build_info", "x", labels=["version", "buildsha"])
    build.add_metric(["6.9.2", ""], 1)
    fetch = SummaryMetricFamily("sensu_go_asset_fetch_duration", "x", count_value=2, sum_value=0.25)
    assert to_line_protocol([sessions, build, fetch], 7) == [
        "sensu_go_agent_sessions,namespace=a\\ b\\,c value=3 7",
        "sensu_go_build_info,version=6.9.2 value=1 7",
        "sensu_go_asset_fetch_duration_count value=2 7",
        "sensu_go_asset_fetch_duration_sum value=0.25 7",
    ]


async def test_appends_and_an_unwritable_file_is_only_counted(tmp_path: Path) -> None:
    good = PlatformMetricsLog(str(tmp_path / "stats.log"), 60, lambda: gauge("sensu_go_x", 1))
    await good.write_once()
    await good.write_once()
    assert [ln.split(" ")[0] for ln in (tmp_path / "stats.log").read_text().splitlines()] == ["sensu_go_x"] * 2
    bad = PlatformMetricsLog(str(tmp_path / "missing" / "stats.log"), 60, lambda: gauge("sensu_go_x", 1))
    await bad.write_once()
    assert bad.stats == {"writes": 0, "errors": 1}
