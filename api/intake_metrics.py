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

__all__ = ["intake_lines"]

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


def intake_lines(services: Mapping[str, Any]) -> list[str]:
    """Prometheus text lines for both intake gates (``kind="event"``, ``kind="keepalive"``)."""
    agentd = services.get("agentd")
    if agentd is None:
        return []
    gates = [("event", agentd.event_gate), ("keepalive", agentd.keepalive_gate)]
    stats = [(kind, gate.statistics()) for kind, gate in gates]
    lines: list[str] = []
    for kind_of, table in (("counter", _COUNTERS), ("gauge", _GAUGES)):
        for name, key, help_text in table:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind_of}")
            for kind, st in stats:
                value = st[key]
                lines.append(f'{name}{{kind="{kind}"}} {value:.3f}' if isinstance(value, float)
                             else f'{name}{{kind="{kind}"}} {value}')
    name = "sensu_agentd_intake_latency_seconds"
    lines.append(f"# HELP {name} From reading an agent message to its end (events: handlers run).")
    lines.append(f"# TYPE {name} histogram")
    for kind, gate in gates:
        cumulative = 0
        for bound, n in zip(gate.latency_bounds(), gate.latency_counts):
            cumulative += n
            lines.append(f'{name}_bucket{{kind="{kind}",le="{bound}"}} {cumulative}')
        cumulative += gate.latency_counts[-1]
        lines.append(f'{name}_bucket{{kind="{kind}",le="+Inf"}} {cumulative}')
        lines.append(f'{name}_sum{{kind="{kind}"}} {gate.stats["latency_sum"]:.6f}')
        lines.append(f'{name}_count{{kind="{kind}"}} {cumulative}')
    return lines
