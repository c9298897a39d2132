"""The few backend settings the REST API reads, as a value of its own.

Why not ``BackendConfig``: the API imports no daemon package, and naming the
three settings it uses keeps the rest of the backend's configuration out of
its reach. The composition root (``backend/node.py``) fills it from the
resolved configuration; it has no defaults of its own, so it cannot drift
from the backend's.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ApiSettings"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiSettings:
    """Attributes are named as in ``BackendConfig``; the key is ``api-request-limit`` etc."""

    #: ``api-request-limit``: the largest request body, in bytes (0: no limit)
    api_request_limit: int
    #: ``default-silenced-expiry-time``: seconds a silence without an expiry lasts (0: forever)
    default_silenced_expiry_time: float
    #: ``max-silenced-expiry-time-allowed``: the longest expiry a silence may ask for, in seconds (0: no cap)
    max_silenced_expiry_time_allowed: float
