"""``/metrics`` text written by prometheus_client from our own counters (api/metrics.py)."""

from __future__ import annotations

from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from api.metrics import ApiMetrics, GoCounterFamily, render


def test_exposition_keeps_our_names_types_and_help() -> None:
    metrics = ApiMetrics()
    metrics.observe("GET", "/health", 200, 0.003)
    metrics.observe("GET", "/health", 200, 7.0)
    processed = GoCounterFamily("sensu_go_events_processed", "The total number of processed events",
                                labels=["status", "event_type"])
    processed.add_metric(["success", "check"], 3)
    text = render(metrics, {"sensu_raft_term": ("Current Raft term.", 4)}, extra=lambda: [processed]).decode()
    lines = text.splitlines()
    assert "# HELP sensu_api_requests_total API requests by method, route and status." in lines
    assert "# TYPE sensu_api_requests_total counter" in lines
    assert 'sensu_api_requests_total{method="GET",route="/health",status="200"} 2.0' in lines
    assert "# TYPE sensu_api_request_duration_seconds histogram" in lines
    assert 'sensu_api_request_duration_seconds_bucket{le="0.005",method="GET",route="/health"} 1.0' in lines
    assert 'sensu_api_request_duration_seconds_bucket{le="+Inf",method="GET",route="/health"} 2.0' in lines
    assert "# TYPE sensu_raft_term gauge" in lines and "sensu_raft_term 4.0" in lines
    # Sensu Go's counter keeps its name on the HELP and TYPE lines, not name_total.
    assert "# HELP sensu_go_events_processed The total number of processed events" in lines
    assert "# TYPE sensu_go_events_processed counter" in lines
    assert 'sensu_go_events_processed{event_type="check",status="success"} 3.0' in lines
    families = {f.name: f.type for f in text_string_to_metric_families(text)}
    assert families["sensu_go_events_processed"] == "counter"


def test_nothing_is_registered_in_the_global_registry() -> None:
    before = set(REGISTRY._collector_to_names)
    render(ApiMetrics(), {"sensu_store_keys": ("Keys in the store.", 1)})
    assert set(REGISTRY._collector_to_names) == before
    assert REGISTRY.get_sample_value("sensu_store_keys") is None
