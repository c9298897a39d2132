"""The ``sensu_agentd_intake_*`` series of ``/metrics``: backpressure and shedding at the agent port.

Why: when event processing falls behind, agentd stops reading agent sockets
(docs/agents.md, "Overload"); an operator must see that it happens, how
long sessions wait, what the node holds, and whether anything read was
lost. Sensu Go has no such series, so these carry our own ``sensu_agentd_``
prefix. Read duck-typed from ``services["agentd"]`` (the API imports no
daemon); a node without agentd contributes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric

from .metrics import histogram_buckets

__all__ = ["intake_families"]

_COUNTERS = (
    ("sensu_agentd_intake_admitted_total", "admitted", "Agent messages admitted for processing."),
    ("sensu_agentd_intake_waits_total", "waits", "Times a session stopped reading its agent's socket because "
     "the node's intake was full (backpressure)."),
    ("sensu_agentd_intake_blocked_seconds_total", "blocked_s", "Seconds sessions spent not reading, waiting "
     "for intake room."),
    ("sensu_agentd_intake_shed_total", "shed", "Agent messages read but never processed: their session ended "
     "while they waited for room."),
    ("sensu_agentd_intake_finished_total", "finished", "Agent messages finished (events: through the pipeline)."),
    ("sensu_agentd_intake_ended_total", "ended", "Agent messages that ended unfinished (rejected, store error)."),
)
_GAUGES = (
    ("sensu_agentd_intake_in_flight", "in_flight", "Agent messages held between the read and their end."),
    ("sensu_agentd_intake_in_flight_bytes", "in_flight_bytes", "Bytes of those messages (frame sizes)."),
    ("sensu_agentd_intake_waiting_sessions", "waiting", "Sessions not reading, waiting for intake room."),
    ("sensu_agentd_intake_limit", "max_items", "Most messages held at once (eventd-buffer-size, "
     "keepalived-buffer-size)."),
    ("sensu_agentd_intake_limit_bytes", "max_bytes", "Most bytes held at once."),
)


def intake_families(services: Mapping[str, Any]) -> list[Metric]:
    """Metric families for both intake gates (``kind="event"``, ``kind="keepalive"``)."""
    agentd = services.get("agentd")
    if agentd is None:
        return []
    gates = [("event", agentd.event_gate), ("keepalive", agentd.keepalive_gate)]
    stats = [(kind, gate.statistics()) for kind, gate in gates]
    families: list[Metric] = []
    for family_of, table in ((CounterMetricFamily, _COUNTERS), (GaugeMetricFamily, _GAUGES)):
        for name, key, help_text in table:
            family = family_of(name, help_text, labels=["kind"])
            for kind, st in stats:
                family.add_metric([kind], st[key])
            families.append(family)
    latency = HistogramMetricFamily("sensu_agentd_intake_latency_seconds",
                                    "From reading an agent message to its end (events: handlers run).",
                                    labels=["kind"])
    for kind, gate in gates:
        latency.add_metric([kind], histogram_buckets(gate.latency_bounds(), gate.latency_counts),
                           sum_value=gate.stats["latency_sum"])
    families.append(latency)
    return families
