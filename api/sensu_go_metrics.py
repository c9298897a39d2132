"""The ``sensu_go_*`` series of ``/metrics``: the names Sensu Go's dashboards and alerts use.

Why: operators switching from Sensu Go keep their Grafana dashboards and
Prometheus alerts; these series carry the same names, types and labels as
Sensu Go 6 where we have the same figure (``docs/metrics.md`` lists them).
They are read from the node's daemons through ``ApiContext.services``
(duck-typed: the API imports no daemon); a daemon that is not running on
this node simply contributes nothing.

Summaries have ``_sum`` and ``_count`` only: Sensu Go's quantiles need a
sliding window per series, which we do not keep.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping
from typing import Any

from core.version import BUILD_SHA, SENSU_COMPAT_VERSION

__all__ = ["sensu_go_lines"]


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**kv: object) -> str:
    if not kv:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in kv.items()) + "}"


def _header(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines.append(f"# HELP {name} {help_text}")
    lines.append(f"# TYPE {name} {kind}")


def _summary(lines: list[str], name: str, help_text: str, series: list[tuple[dict[str, str], Any]]) -> None:
    _header(lines, name, "summary", help_text)
    for labels, summary in series:
        lines.append(f"{name}_sum{_labels(**labels)} {float(summary.total):.6f}")
        lines.append(f"{name}_count{_labels(**labels)} {int(summary.count)}")


def sensu_go_lines(services: Mapping[str, Any]) -> list[str]:
    """Prometheus text lines for every ``sensu_go_*`` series this node can fill."""
    lines: list[str] = []
    _header(lines, "sensu_go_build_info", "gauge", "Sensu Go build information")
    lines.append("sensu_go_build_info" + _labels(version=SENSU_COMPAT_VERSION, buildsha=BUILD_SHA,
                                                  goversion=f"python{platform.python_version()}") + " 1")

    agentd = services.get("agentd")
    if agentd is not None:
        _header(lines, "sensu_go_agent_sessions", "gauge", "Number of active agent sessions on this backend")
        for namespace, count in sorted(agentd.fanout.sessions_by_namespace().items()):
            lines.append(f"sensu_go_agent_sessions{_labels(namespace=namespace)} {count}")
        stats = agentd.services.stats
        _header(lines, "sensu_go_agentd_event_bytes", "summary", "Distribution of event sizes, in bytes, received "
                "by agentd on this backend")
        lines.append(f"sensu_go_agentd_event_bytes_sum {float(stats['event_bytes_sum']):.1f}")
        lines.append(f"sensu_go_agentd_event_bytes_count {int(stats['event_bytes_count'])}")
        _header(lines, "sensu_go_session_errors", "counter", "Number of errors in agent sessions (invalid messages "
                "dropped, oversized messages, store failures)")
        errors = stats["protocol_errors"] + stats["too_big"] + stats["store_errors"]
        lines.append(f"sensu_go_session_errors {errors}")

    hook = services.get("eventd")
    if hook is not None:
        _header(lines, "sensu_go_events_processed", "counter", "The total number of processed events")
        hs = hook.stats
        lines.append(f"sensu_go_events_processed{_labels(status='success', event_type='check')} "
                     f"{hs.get('events_check', 0)}")
        lines.append(f"sensu_go_events_processed{_labels(status='success', event_type='metrics')} "
                     f"{hs.get('events_metrics', 0)}")
        if agentd is not None:
            rejected = agentd.services.stats["events_rejected"] + agentd.services.stats["store_errors"]
            lines.append(f"sensu_go_events_processed{_labels(status='error', event_type='unknown')} {rejected}")

    pipelined = services.get("pipelined")
    if pipelined is not None:
        by_step: dict[str, list[tuple[dict[str, str], Any]]] = {}
        for (step, status, ref), summary in sorted(pipelined.stats.durations.items()):
            labels = {"status": status} if step == "pipeline" else {"status": status, "resource_ref": ref}
            by_step.setdefault(step, []).append((labels, summary))
        names = {"pipeline": ("sensu_go_pipeline_duration", "pipeline execution latency distribution"),
                 "filter": ("sensu_go_pipeline_filter_duration", "pipeline filter execution latency distribution"),
                 "mutator": ("sensu_go_pipeline_mutator_duration",
                             "pipeline mutator execution latency distribution"),
                 "handler": ("sensu_go_pipeline_handler_duration",
                             "pipeline handler execution latency distribution")}
        for step, (name, help_text) in names.items():
            _summary(lines, name, help_text, by_step.get(step, []))

    assets = services.get("assets")
    if assets is not None:
        _summary(lines, "sensu_go_asset_fetch_duration", "asset fetch latency distribution",
                 [({}, assets.durations["fetch"])])
        _summary(lines, "sensu_go_asset_expand_duration", "asset expand latency distribution",
                 [({}, assets.durations["expand"])])

    schedulerd = services.get("schedulerd")
    if schedulerd is not None:
        counts = schedulerd.schedulers_by_kind()
        for kind in ("interval", "cron"):
            name = f"sensu_go_{kind}_schedulers"
            _header(lines, name, "gauge", f"Number of active {kind} check schedulers on this backend")
            for (k, namespace), count in sorted(counts.items()):
                if k == kind:
                    lines.append(f"{name}{_labels(namespace=namespace)} {count}")
    return lines
