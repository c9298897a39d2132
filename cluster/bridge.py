"""The one crossing between the Raft tick thread and trio.

The Raft member (pysyncobj, behind cluster/raft/) applies log entries, fires
proposal callbacks and reports state changes on its own tick thread. Nothing on that thread may touch a trio
object or wait for trio, and nothing in trio may block on that thread.
This module is the whole contract:

* **trio → Raft**: :meth:`RaftBridge.call` hands a ``submit(callback)``
  function a callback and returns once that callback fired. ``submit`` only
  enqueues (e.g. :meth:`cluster.raft.RaftNode.propose_batch`), so the event
  loop never blocks. A pending-proposal table maps ids to waiters, as etcd's
  ``pkg/wait`` does.
* **Raft → trio**: every callback or apply notice is appended to an outbox
  and returns; the first notice after a flush also does one
  ``TrioToken.run_sync_soon``, whose flush runs everything queued by then,
  in order. (One wake-up of the trio thread per burst rather than per
  notice: a busy tick applies an entry and fires several callbacks.)
  Notices that arrive before trio is attached (journal replay during
  start-up) are buffered in order and flushed on :meth:`attach`, so watchers
  see every change in revision order.

Shared state (the token, the start-up backlog and the outbox) sits behind one lock.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any, Callable

import trio

from .errors import LeaderChangedError, NoLeaderError, StoreClosedError, StoreError
from .raft import RETRYABLE, ProposalOutcome, outcome_name

__all__ = ["RaftBridge", "ProposalFailed", "RETRYABLE"]

logger = logging.getLogger(__name__)

class ProposalFailed(StoreError):
    """Raft reported a failure (a :class:`~cluster.raft.ProposalOutcome`) for a proposal."""

    def __init__(self, reason: int) -> None:
        super().__init__(f"proposal failed: {outcome_name(reason)}")
        self.reason = reason

    @property
    def retryable(self) -> bool:
        return self.reason in RETRYABLE

    def as_store_error(self) -> StoreError:
        if self.reason == ProposalOutcome.MISSING_LEADER:
            return NoLeaderError("no leader: election in progress or no quorum")
        return LeaderChangedError(str(self))


class _Waiter:
    __slots__ = ("event", "result", "reason")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.result: Any = None
        self.reason: int | None = None


Submit = Callable[[Callable[[Any, int], None]], None]


class RaftBridge:
    """Owns the TrioToken and the table of proposals waiting for Raft."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._token: trio.lowlevel.TrioToken | None = None
        self._backlog: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._outbox: list[tuple[Callable[..., None], tuple[Any, ...]]] = []
        self._flush_scheduled = False
        self._closed = False
        # trio-side only:
        self._waiters: dict[int, _Waiter] = {}
        self._ids = itertools.count(1)

    # ---------------------------------------------------------------- trio side

    def attach(self) -> None:
        """Bind to the running trio loop and deliver the start-up backlog, in order."""
        token = trio.lowlevel.current_trio_token()
        with self._lock:
            self._token = token
            backlog, self._backlog = self._backlog, []
            for fn, args in backlog:
                token.run_sync_soon(fn, *args)

    def close(self) -> None:
        """Fail every pending proposal; later notices are dropped."""
        with self._lock:
            self._closed = True
            self._token = None
        for waiter in self._waiters.values():
            waiter.reason = -1
            waiter.event.set()
        self._waiters.clear()

    async def call(self, submit: Submit) -> Any:
        """Submit a proposal and wait for its outcome.

        Raises :class:`ProposalFailed` with Raft's reason, or
        :class:`StoreClosedError`. Cancellation leaves the proposal in flight;
        its late callback is ignored.
        """
        if self._closed:
            raise StoreClosedError("store is closed")
        pid = next(self._ids)
        waiter = _Waiter()
        self._waiters[pid] = waiter
        try:
            callback = self._make_callback(pid)
            try:
                submit(callback)
            except BlockingIOError:
                # Raft queued the command but its wake-up pipe was full;
                # the tick thread drains the queue on its next poll anyway.
                pass
            await waiter.event.wait()
        finally:
            self._waiters.pop(pid, None)
        if waiter.reason == -1:
            raise StoreClosedError("store closed while a proposal was in flight")
        if waiter.reason != ProposalOutcome.SUCCESS:
            raise ProposalFailed(waiter.reason if waiter.reason is not None else -1)
        return waiter.result

    def _resolve(self, pid: int, result: Any, reason: int) -> None:
        waiter = self._waiters.get(pid)
        if waiter is None:
            return  # caller was cancelled
        waiter.result = result
        waiter.reason = reason
        waiter.event.set()

    # ---------------------------------------------------------------- tick-thread side

    def _make_callback(self, pid: int) -> Callable[[Any, int], None]:
        def on_result(result: Any, reason: int) -> None:
            self.post(self._resolve, pid, result, reason)

        return on_result

    def post(self, fn: Callable[..., None], *args: Any) -> None:
        """Run ``fn(*args)`` on the trio thread soon; safe from any thread.

        Before :meth:`attach`, calls are buffered in order.
        """
        with self._lock:
            if self._closed:
                return
            token = self._token
            if token is None:
                self._backlog.append((fn, args))
                return
            self._outbox.append((fn, args))
            if self._flush_scheduled:
                return
            self._flush_scheduled = True
            try:
                token.run_sync_soon(self._flush)
            except trio.RunFinishedError:
                self._closed = True

    def _flush(self) -> None:
        """Trio thread: run every queued notice, in the order posted."""
        with self._lock:
            batch, self._outbox = self._outbox, []
            self._flush_scheduled = False
        for fn, args in batch:
            fn(*args)
