"""The ``sensu_go_*`` series of ``/metrics``: the names Sensu Go's dashboards and alerts use.

Why: operators switching from Sensu Go keep their Grafana dashboards and
Prometheus alerts; these series carry the same names, types and labels as
Sensu Go 6 where we have the same figure (``docs/metrics.md`` lists them).
They are read from the node's daemons through ``ApiContext.services``
(duck-typed: the API imports no daemon); a daemon that is not running on
this node simply contributes nothing.

Summaries have ``_sum`` and ``_count`` only: Sensu Go's quantiles need a
sliding window per series, which we do not keep. The families are written
out by prometheus_client (:func:`api.metrics.exposition`) and, label order
kept, by the platform metrics log.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric, SummaryMetricFamily

from core.version import BUILD_SHA, SENSU_COMPAT_VERSION

from .metrics import GoCounterFamily

__all__ = ["sensu_go_families"]

_PIPELINE_STEPS = {
    "pipeline": ("sensu_go_pipeline_duration", "pipeline execution latency distribution"),
    "filter": ("sensu_go_pipeline_filter_duration", "pipeline filter execution latency distribution"),
    "mutator": ("sensu_go_pipeline_mutator_duration", "pipeline mutator execution latency distribution"),
    "handler": ("sensu_go_pipeline_handler_duration", "pipeline handler execution latency distribution"),
}


def _summary(name: str, help_text: str, labels: list[str], series: list[tuple[list[str], Any]]) -> Metric:
    family = SummaryMetricFamily(name, help_text, labels=labels)
    for values, summary in series:
        family.add_metric(values, count_value=int(summary.count), sum_value=float(summary.total))
    return family


def sensu_go_families(services: Mapping[str, Any]) -> list[Metric]:
    """The metric families of every ``sensu_go_*`` series this node can fill."""
    build = GaugeMetricFamily("sensu_go_build_info", "Sensu Go build information",
                              labels=["version", "buildsha", "goversion"])
    build.add_metric([SENSU_COMPAT_VERSION, BUILD_SHA, f"python{platform.python_version()}"], 1)
    families: list[Metric] = [build]

    agentd = services.get("agentd")
    if agentd is not None:
        sessions = GaugeMetricFamily("sensu_go_agent_sessions", "Number of active agent sessions on this backend",
                                     labels=["namespace"])
        for namespace, count in sorted(agentd.fanout.sessions_by_namespace().items()):
            sessions.add_metric([namespace], count)
        stats = agentd.services.stats
        event_bytes = SummaryMetricFamily(
            "sensu_go_agentd_event_bytes", "Distribution of event sizes, in bytes, received by agentd on this "
            "backend", count_value=int(stats["event_bytes_count"]), sum_value=float(stats["event_bytes_sum"]))
        errors = GoCounterFamily("sensu_go_session_errors", "Number of errors in agent sessions (invalid messages "
                                 "dropped, oversized messages, store failures)")
        errors.add_metric([], stats["protocol_errors"] + stats["too_big"] + stats["store_errors"])
        families += [sessions, event_bytes, errors]

    hook = services.get("eventd")
    if hook is not None:
        processed = GoCounterFamily("sensu_go_events_processed", "The total number of processed events",
                                    labels=["status", "event_type"])
        hs = hook.stats
        processed.add_metric(["success", "check"], hs.get("events_check", 0))
        processed.add_metric(["success", "metrics"], hs.get("events_metrics", 0))
        if agentd is not None:
            rejected = agentd.services.stats["events_rejected"] + agentd.services.stats["store_errors"]
            processed.add_metric(["error", "unknown"], rejected)
        families.append(processed)

    pipelined = services.get("pipelined")
    if pipelined is not None:
        by_step: dict[str, list[tuple[list[str], Any]]] = {}
        for (step, status, ref), summary in sorted(pipelined.stats.durations.items()):
            values = [status] if step == "pipeline" else [status, ref]
            by_step.setdefault(step, []).append((values, summary))
        for step, (name, help_text) in _PIPELINE_STEPS.items():
            labels = ["status"] if step == "pipeline" else ["status", "resource_ref"]
            families.append(_summary(name, help_text, labels, by_step.get(step, [])))

    assets = services.get("assets")
    if assets is not None:
        families.append(_summary("sensu_go_asset_fetch_duration", "asset fetch latency distribution", [],
                                 [([], assets.durations["fetch"])]))
        families.append(_summary("sensu_go_asset_expand_duration", "asset expand latency distribution", [],
                                 [([], assets.durations["expand"])]))

    schedulerd = services.get("schedulerd")
    if schedulerd is not None:
        counts = schedulerd.schedulers_by_kind()
        for kind in ("interval", "cron"):
            schedulers = GaugeMetricFamily(f"sensu_go_{kind}_schedulers",
                                           f"Number of active {kind} check schedulers on this backend",
                                           labels=["namespace"])
            for (k, namespace), count in sorted(counts.items()):
                if k == kind:
                    schedulers.add_metric([namespace], count)
            families.append(schedulers)
    return families
