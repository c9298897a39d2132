"""The replicated map as pysyncobj sees it: one consumer with one ``@replicated`` method.

:class:`~cluster.statemachine.KVState` holds the state and its rules and
knows nothing of pysyncobj. This wrapper is what pysyncobj logs, applies and
dumps:

* ``apply_batch(batch_id, payload, now)`` is the only replicated method, so
  a log entry is pysyncobj's pickle of ``(0, (batch_id, payload, now))``:
  an id, a str, bytes and a float, never one of our objects (STYLE: plain
  data in the log). pysyncobj calls it on every node, in log order, on the
  tick thread, and it hands the batch to ``KVState.apply_batch``.
* a dump holds ``KVState.snapshot()``, the same dict of ``revision``, ``kv``,
  ``leases`` and ``recent`` that dumps held when ``KVState`` was itself the
  consumer, so dumps written before and after read alike.
"""

from __future__ import annotations

from typing import Any

from pysyncobj import SyncObjConsumer, replicated

from ..statemachine import KVState

__all__ = ["ReplicatedKV"]


class ReplicatedKV(SyncObjConsumer):
    """Hands pysyncobj's applies and dumps to a :class:`KVState`; construct it before ``SyncObj``."""

    def __init__(self, state: KVState) -> None:
        self.state = state  # local: set before SyncObjConsumer records the attributes that are not replicated
        super().__init__()

    @replicated
    def apply_batch(self, batch_id: str, payload: bytes, now: float) -> list[Any]:
        """Tick thread: apply one group-commit batch; the results go to the proposer's callback."""
        return self.state.apply_batch(batch_id, payload, now)

    def _serialize(self) -> dict[str, Any]:
        """Tick thread: the replicated state for a dump (live objects; pysyncobj pickles them at once)."""
        return self.state.snapshot()

    def _deserialize(self, data: dict[str, Any]) -> None:
        """Tick thread: a dump or a leader's snapshot replaced the state."""
        self.state.restore(data)
