"""The async store API that the rest of the backend uses.

Writes are group-committed: callers enqueue operations, one commit task packs
everything queued into a single Raft entry (one ``apply_batch`` call) and keeps
a few such entries in flight, so throughput does not collapse to one round
trip per write. Every batch carries an id; retries after a leader change reuse
it, and the state machine applies a batch at most once.

Throughput-oriented writers (event processing, keepalives) may mark their
writes with :meth:`Store.lingering`: the commit task then waits up to
:data:`LINGER_S` for more writes before proposing an entry that starts with
one, so that under load many events share an entry. Every Raft entry costs
each node a round of peer messages (pickling, system calls, thread wake-ups),
which was the largest part of the cost of an event on a three-node cluster.
Any other write (API requests, leases, scheduler ownership) ends the wait at
once, and so do :data:`LINGER_OPS` queued writes: latency-sensitive writes
never linger, and under heavy load (entries already that full) nothing does.

Read-your-writes: a write returns only after this node applied it, and reads
are served from this node's applied state, so a client that talks to one node
always sees its own acknowledged writes. ``linearizable=True`` reads, and
:meth:`Store.sync_reads`, first push a no-op through the log (a read barrier
that also proves leadership), so that what they see is not older than any
write acknowledged anywhere before they began.
"""

from __future__ import annotations

import contextvars
import itertools
import logging
import math
import secrets
import time
from contextlib import AbstractContextManager, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, AsyncIterator, Iterator, Sequence

import trio

from . import codec
from .bridge import ProposalFailed, RaftBridge
from .errors import (
    CompareFailedError,
    LeaseNotFoundError,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StoreTimeoutError,
)
from .membership import RaftSettings
from .raft import RaftNode, RaftStatus
from .statemachine import KeyValue, KVState, WatchEvent
from .watch import Watcher, WatchHub

__all__ = ["Store", "open_store", "TxnResult", "RangeResult", "KeyValue", "WatchEvent"]

logger = logging.getLogger(__name__)

#: Most operations packed into one Raft entry.
MAX_BATCH_OPS = 2000
#: Most bytes of values packed into one Raft entry (keeps entries well under
#: the append batch of RaftSettings, so followers are never starved).
MAX_BATCH_BYTES = 1 << 20
#: Raft entries in flight at once from this node. Few, so that writes queue
#: and share entries under load (each entry costs every node CPU; docs/store.md).
MAX_INFLIGHT = 2
#: Default deadline of a write.
WRITE_TIMEOUT_S = 10.0
#: Longest wait for company of an entry whose first write is lingering (see the module docstring).
#: 15 ms cut the CPU per event on a three-node cluster by a quarter at 900 events/s; 25 ms (with
#: LINGER_OPS 24) cuts another 6 % at 2,000 events/s for ~5 ms more median latency (docs/performance.md).
LINGER_S = 0.025
#: A linger ends as soon as this many writes are queued, and is skipped while entries fill up this
#: much without it: under heavy load writes queue anyway, and waiting would only add latency to
#: the event workers (whose throughput is bounded by that latency).
LINGER_OPS = 24

_lingering: contextvars.ContextVar[bool] = contextvars.ContextVar("store_lingering", default=False)


@dataclass(frozen=True, slots=True)
class RangeResult:
    items: list[KeyValue]
    more: bool
    revision: int


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    revision: int
    results: list[Any]


class _Pending:
    __slots__ = ("op", "size", "timeout", "linger", "event", "result", "error")

    def __init__(self, op: codec.Op, size: int, timeout: float, linger: bool) -> None:
        self.op = op
        self.size = size
        self.timeout = timeout
        self.linger = linger
        self.event = trio.Event()
        self.result: Any = None
        self.error: BaseException | None = None


class Store:
    """Async facade over the replicated state; use from the trio thread only."""

    def __init__(self, raft: RaftNode, state: KVState, bridge: RaftBridge, hub: WatchHub) -> None:
        self._raft = raft  # the seam to pysyncobj (cluster/raft/): proposals, leadership, membership
        self._state = state
        self._bridge = bridge
        self._hub = hub
        self._send, self._recv = trio.open_memory_channel[_Pending](math.inf)
        self._inflight = trio.Semaphore(MAX_INFLIGHT)
        self._batch_ids = itertools.count(1)
        self._batch_prefix = f"{raft.settings.name}-{secrets.token_hex(4)}"
        self._closed = False
        self._urgent: trio.Event | None = None  # set while the commit task lingers
        self._urgent_queued = 0  # queued writes that must not linger
        self._queued = 0  # queued writes, all kinds
        self._last_batch_ops = 0
        self.linger_s = LINGER_S
        self.stats = {"batches": 0, "ops": 0, "retries": 0, "timeouts": 0}

    @staticmethod
    @contextmanager
    def lingering() -> Iterator[None]:
        """Writes made inside may wait up to :data:`LINGER_S` to share a Raft entry.

        For callers that write many small values under load and can afford
        a few milliseconds (event processing, keepalives). A contextvar, so
        it covers exactly the calling task's writes.
        """
        token = _lingering.set(True)
        try:
            yield
        finally:
            _lingering.reset(token)

    # ------------------------------------------------------------------ writes

    async def _submit(self, op: codec.Op, size: int = 0, timeout: float = WRITE_TIMEOUT_S) -> Any:
        """Queue one operation for the next group commit and wait for its result.

        The deadline is enforced per batch by :meth:`_propose` (one cancel
        scope per Raft entry rather than one per write: cancel scopes are a
        large share of the per-write cost under load).
        """
        if self._closed:
            raise StoreClosedError("store is closed")
        if op[0] != codec.OP_NOOP and self._raft.disk_full:
            raise StoreFullError(f"no space left for the Raft journal in {self._raft.settings.state_dir}; "
                                 "writes are refused until space is freed")
        pending = _Pending(op, size, timeout, _lingering.get())
        self._send.send_nowait(pending)
        self._queued += 1
        if not pending.linger:
            self._urgent_queued += 1
        if self._urgent is not None and (not pending.linger or self._queued + 1 >= LINGER_OPS):
            self._urgent.set()
        await pending.event.wait()
        if pending.error is not None:
            raise pending.error
        result = pending.result
        if result and result[0] == "error":
            raise StoreError(result[1])
        return result

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Store ``value`` under ``key``; returns the new revision."""
        result = await self._submit(codec.put_op(key, value, lease), len(key) + len(value))
        if result[0] == "nolease":
            raise LeaseNotFoundError(lease)
        return int(result[1])

    async def create(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Store only if absent; raises CompareFailedError if the key exists."""
        result = await self._submit(codec.put_op(key, value, lease, only_if_absent=True), len(key) + len(value))
        if result[0] == "exists":
            raise CompareFailedError(key, 0, int(result[1]))
        if result[0] == "nolease":
            raise LeaseNotFoundError(lease)
        return int(result[1])

    async def update(self, key: str, value: bytes, *, mod_revision: int, lease: int = 0) -> int:
        """Compare-and-swap on ``mod_revision`` (0 = must not exist)."""
        res = await self.txn(
            [codec.compare(key, "mod", "==", mod_revision)],
            [codec.put_op(key, value, lease)],
        )
        if not res.succeeded:
            current = self._state.get(key)
            raise CompareFailedError(key, mod_revision, current.mod_revision if current else 0)
        return res.revision

    async def delete(self, key: str) -> bool:
        """Delete ``key``; returns whether it existed."""
        result = await self._submit(codec.delete_op(key), len(key))
        return bool(result[2])

    async def delete_if(self, key: str, *, mod_revision: int) -> bool:
        res = await self.txn([codec.compare(key, "mod", "==", mod_revision)], [codec.delete_op(key)])
        return res.succeeded

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; returns how many."""
        result = await self._submit(codec.delete_prefix_op(prefix), len(prefix))
        return int(result[2])

    async def txn(self, compares: Sequence[codec.Compare], success: Sequence[codec.Op],
                  failure: Sequence[codec.Op] = ()) -> TxnResult:
        size = sum(len(op[1]) + (len(op[2]) if op[0] == codec.OP_PUT else 0) for op in [*success, *failure])
        result = await self._submit(codec.txn_op(compares, success, failure), size)
        if result[0] == "nolease":
            raise LeaseNotFoundError(int(result[1]))
        return TxnResult(bool(result[1]), int(result[2]), list(result[3]))

    async def sync_reads(self) -> None:
        """Make this node's next reads see every write acknowledged anywhere before now.

        A no-op goes through the log, on the leader as on a follower
        (concurrent callers share one Raft entry through group commit). Its
        commit proves that a quorum still followed this term's leader after
        the call began, and once it is applied here, the local state holds
        every write acknowledged before that. A leader cannot skip it: one that
        was paused or cut off may no longer lead without knowing it yet, and
        its local state would then miss writes a newer leader acknowledged
        (etcd's ReadIndex confirms leadership for the same reason).
        """
        await self.barrier()

    async def barrier(self) -> int:
        """Push a no-op through the log; afterwards local reads are linearizable."""
        result = await self._submit([codec.OP_NOOP])
        return int(result[1])

    # ------------------------------------------------------------------ leases

    async def grant_lease(self, ttl: float) -> int:
        """Create a lease of ``ttl`` seconds; returns its id."""
        lease_id = secrets.randbits(62) + 1
        result = await self._submit([codec.OP_LEASE_GRANT, lease_id, float(ttl)])
        return int(result[1])

    async def keepalive_lease(self, lease_id: int, *, ttl: float | None = None) -> float:
        """Push the lease's deadline to now + TTL (optionally a new TTL); returns it."""
        op = [codec.OP_LEASE_KEEPALIVE, lease_id] + ([float(ttl)] if ttl else [])
        result = await self._submit(op)
        if result[0] == "nolease":
            raise LeaseNotFoundError(lease_id)
        return float(result[2])

    async def revoke_lease(self, lease_id: int) -> bool:
        result = await self._submit([codec.OP_LEASE_REVOKE, lease_id])
        revoked: bool = result[0] == "ok"
        return revoked

    def lease_info(self, lease_id: int) -> tuple[float, float, list[str]] | None:
        return self._state.lease(lease_id)

    # ------------------------------------------------------------------ reads

    async def get(self, key: str, *, linearizable: bool = False) -> KeyValue | None:
        if linearizable:
            await self.barrier()
        return self._state.get(key)

    async def range(self, prefix: str, *, start_after: str | None = None, limit: int = 0,
                    linearizable: bool = False) -> RangeResult:
        if linearizable:
            await self.barrier()
        items, more, revision = self._state.range(prefix, start_after=start_after, limit=limit)
        return RangeResult(items, more, revision)

    def count(self, prefix: str) -> int:
        return self._state.count(prefix)

    @property
    def revision(self) -> int:
        return self._state.current_revision()

    # ------------------------------------------------------------------ watches

    def watch(self, prefix: str, *, start_revision: int | None = None, max_buffer: int = 10_000) -> AbstractContextManager[Watcher]:
        """Context manager yielding a :class:`~cluster.watch.Watcher` on ``prefix``."""
        return self._hub.watch(prefix, start_revision=start_revision, max_buffer=max_buffer)

    # ------------------------------------------------------------------ cluster

    def raft_status(self) -> RaftStatus:
        """This member's view of the Raft cluster (leader, term, indexes, peer links), copied."""
        return self._raft.status()

    def is_leader(self) -> bool:
        """Whether this member is the Raft leader now (not for ownership: that is a lease in the log)."""
        return self._raft.is_leader()

    def leader(self) -> str | None:
        """The leader's ``host:port``, or None while there is none."""
        return self._raft.leader()

    def members(self) -> list[str]:
        """Every member's ``host:port``, this one included, sorted."""
        return self._raft.members()

    @property
    def self_address(self) -> str:
        """This member's ``host:port``, as :meth:`leader` and :meth:`members` name it."""
        return self._raft.self_address

    async def add_member(self, address: str) -> None:
        await self._membership_call(self._raft.add_member, address)

    async def remove_member(self, address: str) -> None:
        await self._membership_call(self._raft.remove_member, address)

    async def _membership_call(self, fn: Any, address: str) -> None:
        deadline = trio.current_time() + WRITE_TIMEOUT_S
        while True:
            try:
                await self._bridge.call(lambda cb: fn(address, cb))
                return
            except ProposalFailed as exc:
                if not exc.retryable or trio.current_time() > deadline:
                    raise exc.as_store_error() from exc
                await trio.sleep(0.1)

    def statistics(self) -> dict[str, Any]:
        return {**self.stats, **self._state.statistics(), **{f"watch_{k}": v for k, v in self._hub.statistics().items()}}

    # ------------------------------------------------------------------ background tasks

    async def _commit_loop(self, nursery: trio.Nursery) -> None:
        while True:
            first = await self._recv.receive()
            self._queued -= 1
            if not first.linger:
                self._urgent_queued -= 1
            elif self.linger_s > 0 and self._last_batch_ops < LINGER_OPS:
                await self._linger()
            # a free slot first, then everything queued by then: writes that
            # had to wait for the slot anyway share this entry
            await self._inflight.acquire()
            batch = [first]
            size = first.size
            while len(batch) < MAX_BATCH_OPS and size < MAX_BATCH_BYTES:
                try:
                    item = self._recv.receive_nowait()
                except trio.WouldBlock:
                    break
                self._queued -= 1
                if not item.linger:
                    self._urgent_queued -= 1
                batch.append(item)
                size += item.size
            self._last_batch_ops = len(batch)
            nursery.start_soon(self._propose, batch)

    async def _linger(self) -> None:
        """Wait :attr:`linger_s`, or less if a write that must not linger or :data:`LINGER_OPS` writes are queued."""
        if self._urgent_queued or self._queued + 1 >= LINGER_OPS:
            return
        self._urgent = trio.Event()
        try:
            with trio.move_on_after(self.linger_s):
                await self._urgent.wait()
        finally:
            self._urgent = None

    async def _propose(self, batch: list[_Pending]) -> None:
        """Propose one batch until it is applied, fails for good, or its deadline passes."""
        try:
            payload = codec.encode_batch([p.op for p in batch])
            batch_id = f"{self._batch_prefix}-{next(self._batch_ids)}"
            self.stats["batches"] += 1
            self.stats["ops"] += len(batch)
            timeout = min(p.timeout for p in batch)
            outcome: BaseException | list[Any] | None = None
            with trio.move_on_after(timeout):
                outcome = await self._propose_until_done(batch_id, payload)
            if outcome is None:
                self.stats["timeouts"] += 1
                outcome = StoreTimeoutError(f"write not acknowledged within {timeout:.1f}s (outcome unknown)")
            if isinstance(outcome, BaseException):
                for p in batch:
                    p.error = outcome
                    p.event.set()
                return
            for p, result in zip(batch, outcome):
                p.result = result
                p.event.set()
        finally:
            self._inflight.release()

    async def _propose_until_done(self, batch_id: str, payload: bytes) -> BaseException | list[Any]:
        """Retry retryable failures with the same batch id (applied at most once)."""
        delay = 0.02
        while True:
            now = time.time()
            try:
                return list(await self._bridge.call(
                    lambda cb: self._raft.propose_batch(batch_id, payload, now, cb)
                ))
            except ProposalFailed as exc:
                if not exc.retryable:
                    return exc.as_store_error()
                self.stats["retries"] += 1
                await trio.sleep(delay)
                delay = min(delay * 2, 0.25)
            except StoreError as exc:
                return exc

    async def _lease_expirer(self) -> None:
        """On the Raft leader, propose expiry of leases past their deadline.

        Only the proposal is leader-driven; the decision is made in apply, with
        the proposer's clock, so each lease expires exactly once cluster-wide.
        """
        while True:
            await trio.sleep(0.1)
            deadline = self._state.next_lease_deadline()
            if deadline is None or deadline > time.time():
                continue
            if not self._raft.is_leader():
                continue
            try:
                await self._submit([codec.OP_LEASE_EXPIRE], timeout=2.0)
            except StoreError as exc:
                logger.debug("lease expiry proposal failed: %s", exc)

    async def wait_leader(self, timeout: float) -> bool:
        """Wait until a leader is known and a no-op commits through it."""
        with trio.move_on_after(timeout):
            while True:
                if self._raft.leader() is not None:
                    try:
                        await self.barrier()
                        return True
                    except StoreError:
                        pass
                await trio.sleep(0.05)
        return False


@asynccontextmanager
async def open_store(settings: RaftSettings) -> AsyncIterator[Store]:
    """Start the Raft node and the store tasks; stop them on exit.

    The node is built on a worker thread (it reads the journal and binds the
    peer port). Raises ``PeerAddressInUseError`` when the port is taken.
    """
    bridge = RaftBridge()
    hub = WatchHub()
    state = KVState(
        on_applied=lambda rev, events: bridge.post(hub.publish, rev, events),
        on_reset=lambda rev: bridge.post(hub.reset, rev),
    )
    bridge.attach()
    raft = await trio.to_thread.run_sync(RaftNode, settings, state)
    store = Store(raft, state, bridge, hub)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(store._commit_loop, nursery)
            nursery.start_soon(store._lease_expirer)
            try:
                yield store
            finally:
                nursery.cancel_scope.cancel()
    finally:
        store._closed = True
        bridge.close()
        raft.destroy()
