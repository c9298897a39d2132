"""Metric extraction from check output (runtime.md §2.4 step 9).

Why here and pure: ``output_metric_format`` turns a check's text output into
``metrics.points[]`` on the agent, before the event is sent, so handlers get
points regardless of backend. Every parser skips lines it cannot read (a bad
line never costs the event) and returns the points it understood.

Timestamps: points without one get the check's ``executed`` time. Timestamps in
milli-, micro- or nanoseconds (InfluxDB and Prometheus write those) are scaled
down to seconds by magnitude, so every point carries Unix seconds.
"""

from __future__ import annotations

import math
import re
import shlex
from collections.abc import Callable, Iterable
from typing import Final

from core.resources.common import MetricTag
from core.resources.event import MetricPoint

__all__ = ["FORMATS", "extract_metrics"]

_NUMBER_RE: Final = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _seconds(ts: float) -> int:
    """Unix seconds from a timestamp that may be in s, ms, µs or ns."""
    value = abs(ts)
    if value >= 1e17:
        ts /= 1e9
    elif value >= 1e14:
        ts /= 1e6
    elif value >= 1e11:
        ts /= 1e3
    return int(ts)


def _float(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _nagios(output: str, executed: int) -> list[MetricPoint]:
    """``text | label=value[UOM];warn;crit;min;max ...`` (perfdata may continue on later lines)."""
    points: list[MetricPoint] = []
    lines = output.splitlines()
    perf: list[str] = []
    for i, line in enumerate(lines):
        if "|" in line:
            perf.append(line.split("|", 1)[1])
            if i == 0:
                continue
            perf.extend(lines[i + 1:])  # long-output perfdata: everything after the second pipe
            break
    for chunk in perf:
        try:
            items = shlex.split(chunk, posix=True)
        except ValueError:
            items = chunk.split()
        for item in items:
            label, sep, rest = item.rpartition("=")
            if not sep or not label:
                continue
            m = _NUMBER_RE.match(rest.split(";", 1)[0])
            value = _float(m.group(0)) if m else None
            if value is None:
                continue
            points.append(MetricPoint(name=label, value=value, timestamp=executed, tags=[]))
    return points


def _graphite(output: str, executed: int) -> list[MetricPoint]:
    """``path value [timestamp]`` per line."""
    points: list[MetricPoint] = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) not in (2, 3):
            continue
        value = _float(parts[1])
        ts = _float(parts[2]) if len(parts) == 3 else float(executed)
        if value is None or ts is None:
            continue
        points.append(MetricPoint(name=parts[0], value=value, timestamp=_seconds(ts), tags=[]))
    return points


def _split_unescaped(text: str, sep: str) -> list[str]:
    out, current, escaped = [], [], False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == sep:
            out.append("".join(current))
            current = []
        else:
            current.append(ch)
    out.append("".join(current))
    return out


def _influx(output: str, executed: int) -> list[MetricPoint]:
    """``measurement[,tag=v...] field=value[,field=value...] [timestamp]``: one point per numeric field."""
    points: list[MetricPoint] = []
    for line in output.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = _split_unescaped(line, " ")
        parts = [p for p in parts if p]
        if len(parts) not in (2, 3):
            continue
        head = _split_unescaped(parts[0], ",")
        measurement, tag_texts = head[0], head[1:]
        tags: list[MetricTag] = []
        for text in tag_texts:
            k, sep, v = text.partition("=")
            if sep and k:
                tags.append(MetricTag(name=k, value=v))
        ts = _float(parts[2]) if len(parts) == 3 else float(executed)
        if ts is None or not measurement:
            continue
        for field in _split_unescaped(parts[1], ","):
            k, sep, v = field.partition("=")
            if not sep or not k:
                continue
            value = _float(v[:-1] if v[-1:] in ("i", "u") else v)
            if value is None:
                continue  # strings and booleans are not metrics
            points.append(MetricPoint(name=f"{measurement}.{k}", value=value, timestamp=_seconds(ts),
                                      tags=list(tags)))
    return points


def _opentsdb(output: str, executed: int) -> list[MetricPoint]:
    """``[put] metric timestamp value [tag=v ...]``."""
    points: list[MetricPoint] = []
    for line in output.splitlines():
        parts = line.split()
        if parts[:1] == ["put"]:
            parts = parts[1:]
        if len(parts) < 3:
            continue
        ts, value = _float(parts[1]), _float(parts[2])
        if ts is None or value is None:
            continue
        tags = [MetricTag(name=k, value=v) for k, sep, v in (t.partition("=") for t in parts[3:]) if sep and k]
        points.append(MetricPoint(name=parts[0], value=value, timestamp=_seconds(ts), tags=tags))
    return points


_PROM_RE: Final = re.compile(
    r"^(?P<name>[A-Za-z_:][\w:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)(?:\s+(?P<ts>-?\d+))?\s*$")
_PROM_LABEL_RE: Final = re.compile(r'\s*([A-Za-z_]\w*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


def _prometheus(output: str, executed: int) -> list[MetricPoint]:
    """Prometheus text exposition: ``name{label="v"} value [timestamp_ms]``; comments skipped."""
    points: list[MetricPoint] = []
    for line in output.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _PROM_RE.match(line)
        if m is None:
            continue
        value = _float(m.group("value"))
        if value is None:
            continue
        tags: list[MetricTag] = []
        labels = m.group("labels") or ""
        pos = 0
        while pos < len(labels):
            lm = _PROM_LABEL_RE.match(labels, pos)
            if lm is None or lm.end() == pos:
                break
            raw = lm.group(2).replace('\\"', '"').replace("\\n", "\n").replace("\\\\", "\\")
            tags.append(MetricTag(name=lm.group(1), value=raw))
            pos = lm.end()
        ts = _seconds(float(m.group("ts"))) if m.group("ts") else executed
        points.append(MetricPoint(name=m.group("name"), value=value, timestamp=ts, tags=tags))
    return points


FORMATS: Final[dict[str, Callable[[str, int], list[MetricPoint]]]] = {
    "nagios_perfdata": _nagios,
    "graphite_plaintext": _graphite,
    "influxdb_line": _influx,
    "opentsdb_line": _opentsdb,
    "prometheus_text": _prometheus,
}


def extract_metrics(fmt: str, output: str, executed: int,
                    extra_tags: Iterable[MetricTag] = ()) -> list[MetricPoint]:
    """Points parsed from ``output`` in format ``fmt`` ("" or unknown -> none), each
    with ``extra_tags`` (the check's ``output_metric_tags``) appended."""
    parser = FORMATS.get(fmt)
    if parser is None:
        return []
    points = parser(output, executed)
    extra = list(extra_tags)
    if extra:
        for point in points:
            point.tags = list(point.tags or []) + [MetricTag(name=t.name, value=t.value) for t in extra]
    return points
