"""Platform metrics log: the ``sensu_go_*`` series appended to a file every interval.

Why: Sensu Go writes its own metrics to ``platform-metrics-log-file`` every
``platform-metrics-logging-interval`` unless ``disable-platform-metrics``,
so that operators without a Prometheus server still have a history of the
backend's health. We write the same series ``/metrics`` exports under the
``sensu_go_`` names, one sample per line in InfluxDB line protocol
(``name,label=value value=<number> <unix ns>``), a format every log shipper
and time series database reads. It takes the same metric families as
``/metrics`` (prometheus_client's data model), not their text.

Resource handling: the file is opened in append mode for each write (in a
worker thread), so logrotate may move it at any time without a signal. A
file that cannot be written is a warning (the default path under
``/var/log/sensu`` often does not exist outside packages), repeated only
when the error changes; it never stops the backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

import trio
from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

__all__ = ["PlatformMetricsLog", "to_line_protocol"]

logger = logging.getLogger(__name__)

#: prometheus_client's Go float formatting (``+Inf``, ``NaN``, Go's exponents); the library leaves it unannotated.
_go_float: Callable[[float], str] = floatToGoString


def _tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _value(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else _go_float(value)


def to_line_protocol(families: Iterable[Metric], now_ns: int) -> list[str]:
    """Every sample of ``families`` as InfluxDB line protocol, labels in their order; empty
    label values are dropped."""
    out = []
    for family in families:
        for sample in family.samples:
            tags = "".join(f",{k}={_tag(v)}" for k, v in sample.labels.items() if v)
            out.append(f"{sample.name}{tags} value={_value(sample.value)} {now_ns}")
    return out


class PlatformMetricsLog:
    """Appends ``source()`` (metric families) to ``path`` every ``interval`` seconds."""

    name = "platform-metrics"

    def __init__(self, path: str, interval: float, source: Callable[[], Iterable[Metric]]) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.path = path
        self._interval = interval
        self._source = source
        self._last_error = ""
        self.stats = {"writes": 0, "errors": 0}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write once per interval until cancelled (the first write after one interval)."""
        task_status.started()
        while True:
            await trio.sleep(self._interval)
            await self.write_once()

    async def write_once(self) -> None:
        lines = to_line_protocol(self._source(), time.time_ns())
        data = "".join(line + "\n" for line in lines)
        try:
            await trio.to_thread.run_sync(self._append, data)
            self.stats["writes"] += 1
            self._last_error = ""
        except OSError as exc:
            self.stats["errors"] += 1
            reason = str(exc.strerror or exc)
            if reason != self._last_error:
                logger.warning("cannot write the platform metrics log %s: %s", self.path, reason)
                self._last_error = reason

    def _append(self, data: str) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(data)
