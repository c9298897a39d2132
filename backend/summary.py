"""A Prometheus-style summary without quantiles: how many observations, and their sum.

Why this small: daemons time a few steps per event (pipeline, filter,
mutator, handler, asset fetch), and ``/metrics`` exports them as Sensu Go's
``sensu_go_*_duration`` summaries (``_sum``/``_count``; quantiles, which need
a sliding window per series, are left out). Updating it is two additions on
the event loop, so it costs nothing measurable per event.
"""

from __future__ import annotations

__all__ = ["Summary"]


class Summary:
    """Observation count and sum (seconds, bytes...)."""

    __slots__ = ("count", "total")

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.count += 1
        self.total += value
