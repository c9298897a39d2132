"""keepalived: agent registration, liveness deadlines held in the store, keepalive failures."""

from .keepalived import Keepalived, claim_prefix, deadline_key, deadline_prefix

__all__ = ["Keepalived", "claim_prefix", "deadline_key", "deadline_prefix"]
