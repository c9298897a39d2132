"""Typed store errors, one class per outcome a caller can act on.

Exception tree::

    StoreError
    ├── NoLeaderError        no leader is known (election running, no quorum)
    ├── StoreTimeoutError    the write was not acknowledged before its deadline;
    │                        it may still be applied later
    ├── LeaderChangedError   leadership moved while the write was in flight
    ├── CompareFailedError   a transaction's compare did not hold
    ├── KeyNotFoundError     the key does not exist
    ├── LeaseNotFoundError   the lease does not exist (expired or revoked)
    ├── WatchLaggedError     a watcher fell too far behind to catch up; re-list
    └── StoreClosedError     the store is shutting down
"""

from __future__ import annotations

__all__ = [
    "StoreError",
    "NoLeaderError",
    "StoreTimeoutError",
    "LeaderChangedError",
    "CompareFailedError",
    "KeyNotFoundError",
    "LeaseNotFoundError",
    "WatchLaggedError",
    "StoreClosedError",
    "StoreFullError",
]


class StoreError(Exception):
    """Base class of every error raised by :mod:`cluster`."""


class NoLeaderError(StoreError):
    """No Raft leader is reachable; the write was not accepted."""


class StoreTimeoutError(StoreError):
    """The write was not acknowledged in time; its outcome is unknown."""


class LeaderChangedError(StoreError):
    """Leadership changed while the write was in flight."""


class CompareFailedError(StoreError):
    """A compare-and-swap found a different revision than expected."""

    def __init__(self, key: str, expected: int, actual: int) -> None:
        super().__init__(f"{key}: expected mod_revision {expected}, found {actual}")
        self.key = key
        self.expected = expected
        self.actual = actual


class KeyNotFoundError(StoreError):
    """The key does not exist."""

    def __init__(self, key: str) -> None:
        super().__init__(f"{key}: not found")
        self.key = key


class LeaseNotFoundError(StoreError):
    """The lease has expired or was revoked."""

    def __init__(self, lease_id: int) -> None:
        super().__init__(f"lease {lease_id:x} not found")
        self.lease_id = lease_id


class WatchLaggedError(StoreError):
    """The watcher missed events; it must re-read the prefix and watch again.

    ``revision`` is the store revision a fresh range read will be at least as
    new as; watching again from ``revision + 1`` is safe.
    """

    def __init__(self, prefix: str, revision: int) -> None:
        super().__init__(f"watch on {prefix!r} fell behind at revision {revision}")
        self.prefix = prefix
        self.revision = revision


class StoreClosedError(StoreError):
    """The store is closed or the node is shutting down."""


class StoreFullError(StoreError):
    """The disk holding this node's Raft journal is full; writes are refused until space is freed.

    Refused before anything is proposed, so the write did not happen. Reads
    (and their no-op barriers, which fit in the journal's reserve) go on.
    """
