"""Prometheus text for ``/metrics``: API request counts and latencies, store and Raft figures.

A tiny registry of our own (counters and a fixed-bucket histogram), because the
figures are few and the text format is simple; no client library needed.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Callable

__all__ = ["ApiMetrics", "render"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        self.latency_buckets[(method, route)][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[(method, route)] += seconds


def _labels(**kv: object) -> str:
    inner = ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                     for k, v in kv.items())
    return "{" + inner + "}"


def render(metrics: ApiMetrics, gauges: dict[str, tuple[str, float]], extra: Callable[[], list[str]] | None = None) -> str:
    lines = [
        "# HELP sensu_api_requests_total API requests by method, route and status.",
        "# TYPE sensu_api_requests_total counter",
    ]
    for (method, route, status), n in sorted(metrics.requests.items()):
        lines.append(f"sensu_api_requests_total{_labels(method=method, route=route, status=status)} {n}")
    lines += [
        "# HELP sensu_api_request_duration_seconds API request latency.",
        "# TYPE sensu_api_request_duration_seconds histogram",
    ]
    for (method, route), counts in sorted(metrics.latency_buckets.items()):
        cumulative = 0
        for bound, n in zip(BUCKETS, counts):
            cumulative += n
            lines.append(f"sensu_api_request_duration_seconds_bucket{_labels(method=method, route=route, le=bound)} {cumulative}")
        cumulative += counts[-1]
        lines.append(f"sensu_api_request_duration_seconds_bucket{_labels(method=method, route=route, le='+Inf')} {cumulative}")
        lines.append(f"sensu_api_request_duration_seconds_sum{_labels(method=method, route=route)} {metrics.latency_sum[(method, route)]:.6f}")
        lines.append(f"sensu_api_request_duration_seconds_count{_labels(method=method, route=route)} {cumulative}")
    for name, (help_text, value) in sorted(gauges.items()):
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name} {value}")
    if extra is not None:
        lines += extra()
    return "\n".join(lines) + "\n"
