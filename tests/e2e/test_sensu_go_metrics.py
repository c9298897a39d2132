"""``/metrics`` exposes Sensu Go's ``sensu_go_*`` series, and the platform metrics log is written
(issue 17, point 6 and the platform metrics settings)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.harness.agent import Api, initialized_node, ns_path, put_resource, read_events, recorder_command, wait_until
from tests.harness.backend import BackendProcess

from .test_agents_backend import connect, keepalive_frame, next_message

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
async def node(tmp_path: Path, client: httpx.AsyncClient) -> AsyncIterator[BackendProcess]:
    async with initialized_node(tmp_path, client, [
            "--platform-metrics-log-file", str(tmp_path / "backend-stats.log"),
            "--platform-metrics-logging-interval", "200ms"]) as proc:
        yield proc


def sample(text: str, series: str) -> float | None:
    """The value of one exact series line (``name{labels}``) in Prometheus text.

    prometheus_client writes labels sorted by name (as Sensu Go's client_golang does) and
    values as floats (``1.0``).
    """
    for line in text.splitlines():
        if line.startswith(series + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


async def test_sensu_go_series_and_platform_metrics_log(tmp_path: Path, node: BackendProcess,
                                                       client: httpx.AsyncClient) -> None:
    api = Api(client, [node])
    out = tmp_path / "handled.jsonl"
    await put_resource(api, "handlers", "rec", {"type": "pipe", "command": recorder_command(out)})
    await put_resource(api, "checks", "scheduled", {"command": "true", "subscriptions": ["nobody"],
                                                    "interval": 60, "publish": True})
    body = {"entity": {"metadata": {"name": "m-entity", "namespace": "default"}, "entity_class": "proxy"},
            "check": {"metadata": {"name": "m-check", "namespace": "default"}, "status": 2, "output": "x",
                      "interval": 60, "handlers": ["rec"]}}
    r = await api.request("PUT", ns_path("events", "m-entity", "m-check"), json=body)
    assert r is not None and r.status_code in (200, 201)
    await wait_until("the handler ran", lambda: read_events(out), node.log)

    async with connect(node, "metrics-agent") as ws:
        await next_message(ws, "entity_config")
        await ws.send_message(keepalive_frame("metrics-agent", 1))

        async def scraped() -> str | None:
            text = (await client.get(f"{node.api_url}/metrics")).text
            ready = (sample(text, 'sensu_go_agent_sessions{namespace="default"}') == 1
                     and sample(text, 'sensu_go_interval_schedulers{namespace="default"}') == 1
                     and (sample(text, 'sensu_go_agentd_event_bytes_count') or 0) >= 1)
            return text if ready else None

        text = await wait_until("the sensu_go series", scraped, node.log)
    assert (sample(text, 'sensu_go_events_processed{event_type="check",status="success"}') or 0) >= 1
    assert (sample(text, 'sensu_go_pipeline_handler_duration_count{resource_ref="core/v2.Handler(Name=rec)",'
                         'status="success"}') or 0) >= 1
    assert (sample(text, 'sensu_go_pipeline_duration_count{status="success"}') or 0) >= 1
    assert re.search(r'^sensu_go_build_info\{buildsha="[^"]*",goversion="[^"]+",version="[^"]+"\} 1\.0$', text, re.M)
    assert "# TYPE sensu_go_asset_fetch_duration summary" in text
    assert "sensu_api_requests_total" in text  # our own series stay beside them
    assert "# TYPE sensu_go_events_processed counter" in text  # Sensu Go's name, without _total

    stats_log = tmp_path / "backend-stats.log"
    lines = await wait_until("the platform metrics log",
                             lambda: [ln for ln in (stats_log.read_text().splitlines() if stats_log.exists() else [])
                                      if ln.startswith("sensu_go_events_processed,")], node.log)
    assert re.fullmatch(r"sensu_go_events_processed,status=\w+,event_type=\w+ value=\d+(\.\d+)? \d{19}", lines[-1])
