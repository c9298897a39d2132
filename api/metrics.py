"""``/metrics``: our counters, exposed in the Prometheus text format by prometheus_client.

What is ours: :class:`ApiMetrics` counts API requests and their latencies (fixed
buckets), and each module turns the figures it owns into metric families
(:func:`api_families` here, :mod:`api.sensu_go_metrics`, :mod:`api.intake_metrics`).
What prometheus_client does: the families and samples, label-value and HELP escaping,
and writing the text format 0.0.4 (:func:`exposition`).

Each scrape writes through a ``CollectorRegistry`` of its own, never the library's
global default registry: nothing is registered at import time, and several apps (or
tests) in one process do not see each other's series.

One thing the library does not do as Sensu Go does: Sensu Go's client_golang lets a
counter's samples go without the ``_total`` suffix (``sensu_go_events_processed``),
while prometheus_client names a counter's HELP and TYPE lines ``<name>_total``
(OpenMetrics). :class:`GoCounterFamily` marks such counters, and :func:`exposition`
puts their HELP and TYPE lines back under the sample name.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["ApiMetrics", "GoCounterFamily", "api_families", "exposition", "render"]

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class ApiMetrics:
    """API request counts and latency histograms, by method, route and status."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.latency_buckets: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * (len(BUCKETS) + 1))
        self.latency_sum: dict[tuple[str, str], float] = defaultdict(float)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests[(method, route, status)] += 1
        self.latency_buckets[(method, route)][bisect.bisect_left(BUCKETS, seconds)] += 1
        self.latency_sum[(method, route)] += seconds


class GoCounterFamily(Metric):
    """A counter whose samples carry the family name itself, without ``_total``.

    Sensu Go exposes ``sensu_go_events_processed`` and ``sensu_go_session_errors``
    this way; dashboards and alerts query those exact names.
    """

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, documentation, "counter")
        self._labelnames = tuple(labels)

    def add_metric(self, labels: Sequence[str], value: float) -> None:
        self.add_sample(self.name, dict(zip(self._labelnames, labels)), value)


def histogram_buckets(bounds: Iterable[float], counts: Sequence[int]) -> list[tuple[str, float]]:
    """Cumulative ``(le, count)`` pairs from per-bucket counts (the last one above every bound)."""
    out: list[tuple[str, float]] = []
    cumulative = 0
    for bound, n in zip(bounds, counts):
        cumulative += n
        out.append((str(bound), cumulative))
    out.append(("+Inf", cumulative + counts[-1]))
    return out


def api_families(metrics: ApiMetrics, gauges: dict[str, tuple[str, float]]) -> list[Metric]:
    """Request counts, request latencies, and the store and Raft gauges (``name: (help, value)``)."""
    requests = CounterMetricFamily("sensu_api_requests_total", "API requests by method, route and status.",
                                   labels=["method", "route", "status"])
    for (method, route, status), n in sorted(metrics.requests.items()):
        requests.add_metric([method, route, str(status)], n)
    latency = HistogramMetricFamily("sensu_api_request_duration_seconds", "API request latency.",
                                    labels=["method", "route"])
    for (method, route), counts in sorted(metrics.latency_buckets.items()):
        latency.add_metric([method, route], histogram_buckets(BUCKETS, counts),
                           sum_value=metrics.latency_sum[(method, route)])
    families: list[Metric] = [requests, latency]
    for name, (help_text, value) in sorted(gauges.items()):
        families.append(GaugeMetricFamily(name, help_text, value=value))
    return families


class _Families(Collector):
    """The families of one scrape, for a registry of their own."""

    def __init__(self, families: list[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def exposition(families: Iterable[Metric]) -> bytes:
    """The Prometheus text format (0.0.4) for ``families``, written by prometheus_client."""
    listed = list(families)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(listed))
    text = generate_latest(registry)
    for family in listed:
        if isinstance(family, GoCounterFamily):
            name = family.name.encode()
            text = text.replace(b"# HELP " + name + b"_total ", b"# HELP " + name + b" ", 1)
            text = text.replace(b"# TYPE " + name + b"_total counter\n", b"# TYPE " + name + b" counter\n", 1)
    return text


def render(metrics: ApiMetrics, gauges: dict[str, tuple[str, float]],
           extra: Callable[[], Iterable[Metric]] | None = None) -> bytes:
    """The whole ``/metrics`` body: :func:`api_families`, then ``extra()``'s families."""
    families = api_families(metrics, gauges)
    if extra is not None:
        families.extend(extra())
    return exposition(families)

