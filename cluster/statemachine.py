"""The replicated state: a revisioned key/value map with leases, applied on every node.

``KVState.apply_batch`` is the one way the state changes. The Raft log
(cluster/raft/consumer.py, the only replicated method) calls it on every
node, in log order, on the tick thread. It must therefore be deterministic and
must never raise (a raising apply is retried forever, STYLE §1): the proposer
supplies the time, lease ids and the batch id; every operation returns a
result instead of raising. Nothing here knows pysyncobj: the rules can be
read and tested as plain code.

Semantics follow what Sensu needs from etcd:

* one cluster-wide ``revision``; each mutating operation (or transaction)
  bumps it once and stamps the keys it touches with ``mod_revision``;
  ``create_revision`` and ``version`` are kept per key;
* ``txn`` compares ``mod``/``create``/``version``/``value``/``lease`` of keys
  and applies one of two op lists atomically;
* leases carry a TTL; keys attached to a lease vanish when the lease expires.
  Expiry happens only when an ``OP_LEASE_EXPIRE`` entry is applied, so it is
  decided once, in the log, for the whole cluster;
* a bounded table of recent batch ids makes retried proposals idempotent: a
  batch that was committed before its proposer heard back is not applied twice.

Reads come from the trio thread while apply runs on the tick thread, so the map
sits behind ``self._lock`` (held for microseconds). Stored entries are tuples,
so readers can hand them out without copying.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, NamedTuple

from sortedcontainers import SortedDict

from .codec import (
    OP_DELETE,
    OP_DELETE_PREFIX,
    OP_LEASE_EXPIRE,
    OP_LEASE_GRANT,
    OP_LEASE_KEEPALIVE,
    OP_LEASE_REVOKE,
    OP_NOOP,
    OP_PUT,
    OP_TXN,
    decode_batch,
)

__all__ = ["KVState", "KeyValue", "WatchEvent", "EVENT_PUT", "EVENT_DELETE", "RECENT_BATCHES", "REPLICATED"]

logger = logging.getLogger(__name__)

EVENT_PUT = 0
EVENT_DELETE = 1

#: How many batch results are remembered for deduplicating retried proposals.
RECENT_BATCHES = 2048

#: The attributes that are the replicated state (what a dump holds); everything else is local to a node.
REPLICATED = ("revision", "kv", "leases", "recent")


class KeyValue(NamedTuple):
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


class WatchEvent(NamedTuple):
    """One change, as watchers see it; ``value`` is empty for deletes."""

    revision: int
    kind: int  # EVENT_PUT or EVENT_DELETE
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int


# kv entry layout: (value, create_revision, mod_revision, version, lease)
_Entry = tuple[bytes, int, int, int, int]

AppliedHook = Callable[[int, list[WatchEvent]], None]
ResetHook = Callable[[int], None]


class KVState:
    """The replicated map. Only the Raft log changes it (:meth:`apply_batch`, :meth:`restore`).

    ``on_applied(revision, events)`` and ``on_reset(revision)`` run on the tick
    thread after each apply and after a snapshot replaced the whole state; they
    must return at once (the bridge turns them into trio callbacks).
    """

    def __init__(self, on_applied: AppliedHook | None = None, on_reset: ResetHook | None = None) -> None:
        # Local, never replicated:
        self._lock = threading.Lock()
        self._on_applied = on_applied
        self._on_reset = on_reset
        self._flush: Callable[[], object] | None = None
        self.applied_bytes = 0  # batch bytes applied by this process (the byte bound of log compaction)
        # Replicated state (REPLICATED: what dumps hold):
        self.revision = 0
        self.kv: SortedDict[str, _Entry] = SortedDict()
        self.leases: dict[int, list[Any]] = {}  # id -> [ttl, deadline, {key: None}]
        self.recent: OrderedDict[str, list[Any]] = OrderedDict()

    # ------------------------------------------------------------------ local hooks

    def set_hooks(self, on_applied: AppliedHook | None, on_reset: ResetHook | None) -> None:
        self._on_applied = on_applied
        self._on_reset = on_reset

    def set_flush(self, flush: Callable[[], object] | None) -> None:
        """Called after every applied batch, before its watchers and its writers hear of it: syncs the journal."""
        self._flush = flush

    # ------------------------------------------------------------------ snapshots

    def snapshot(self) -> dict[str, Any]:
        """Tick thread: the replicated state for a dump, as the live objects (pickle them before the next apply)."""
        return {name: getattr(self, name) for name in REPLICATED}

    def restore(self, data: dict[str, Any]) -> None:
        """Tick thread: a snapshot replaced the state; watchers cannot know what changed."""
        with self._lock:
            for name, value in data.items():
                self.__dict__[name] = value
            revision = self.revision
        if self._on_reset is not None:
            self._on_reset(revision)

    # ------------------------------------------------------------------ apply

    def apply_batch(self, batch_id: str, payload: bytes, now: float) -> list[Any]:
        """Tick thread, in log order: apply a group-commit batch; returns one result list per operation."""
        events: list[WatchEvent] = []
        with self._lock:
            cached = self.recent.get(batch_id)
            if cached is not None:
                return cached
            self.applied_bytes += len(payload)
            try:
                ops = decode_batch(payload)
            except Exception as exc:  # never raise from apply
                results: list[Any] = [["error", f"undecodable batch: {exc}"]]
            else:
                results = []
                for op in ops:
                    try:
                        results.append(self._apply_op(op, float(now), events, nested=False))
                    except Exception as exc:  # a bad op must not stall the log
                        results.append(["error", f"{type(exc).__name__}: {exc}"])
            self.recent[batch_id] = results
            while len(self.recent) > RECENT_BATCHES:
                self.recent.popitem(last=False)
            revision = self.revision
        if self._flush is not None:  # before anyone hears of it: watchers, and the writer (after return)
            self._flush()
        if events and self._on_applied is not None:
            self._on_applied(revision, events)
        return results

    def _apply_op(self, op: list[Any], now: float, events: list[WatchEvent], *, nested: bool) -> list[Any]:
        """Apply one operation through :data:`_OP_APPLIERS`; an unknown code is an error result."""
        code = op[0]
        try:
            apply = _OP_APPLIERS.get(code)
        except TypeError:  # an unhashable code is as unknown as any other
            apply = None
        if apply is None:
            return ["error", f"unknown operation {code!r}"]
        return apply(self, op, now, events, nested)

    # One method per operation code, each ``(op, now, events, nested) -> result``. ``nested`` is
    # true inside a transaction, which bumps the revision once for all of its operations.

    def _op_put(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        _, key, value, lease, only_if_absent = op
        existing = self.kv.get(key)
        if only_if_absent and existing is not None:
            return ["exists", existing[2]]
        if lease and lease not in self.leases:
            return ["nolease", lease]
        if not nested:
            self.revision += 1
        self._put(key, value, lease, events)
        return ["ok", self.revision]

    def _op_delete(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        key = op[1]
        if key not in self.kv:
            return ["ok", self.revision, 0]
        if not nested:
            self.revision += 1
        self._delete(key, events)
        return ["ok", self.revision, 1]

    def _op_delete_prefix(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        prefix = op[1]
        keys = [k for k in self.kv.irange(minimum=prefix) if True]
        doomed = []
        for k in keys:
            if not k.startswith(prefix):
                break
            doomed.append(k)
        if not doomed:
            return ["ok", self.revision, 0]
        if not nested:
            self.revision += 1
        for k in doomed:
            self._delete(k, events)
        return ["ok", self.revision, len(doomed)]

    def _op_txn(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        if nested:
            return ["error", "nested transactions are not allowed"]
        _, compares, success, failure = op
        ok = all(self._compare(c) for c in compares)
        branch = success if ok else failure
        for sub in branch:
            if sub[0] not in (OP_PUT, OP_DELETE, OP_DELETE_PREFIX):
                return ["error", f"operation {sub[0]} is not allowed in a transaction"]
            if sub[0] == OP_PUT and sub[3] and sub[3] not in self.leases:
                return ["nolease", sub[3]]
        before = len(events)
        self.revision += 1
        sub_results = [self._apply_op(sub, now, events, nested=True) for sub in branch]
        if len(events) == before:
            self.revision -= 1  # nothing changed: no new revision
        return ["ok", ok, self.revision, sub_results]

    def _op_lease_grant(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        _, lease_id, ttl = op
        if lease_id in self.leases or lease_id <= 0:
            return ["error", f"lease {lease_id} already exists or is invalid"]
        self.leases[lease_id] = [float(ttl), now + float(ttl), {}]
        return ["ok", lease_id, now + float(ttl)]

    def _op_lease_keepalive(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        lease = self.leases.get(op[1])
        if lease is None:
            return ["nolease", op[1]]
        if len(op) > 2 and op[2]:
            lease[0] = float(op[2])  # keepalive may change the TTL
        lease[1] = now + lease[0]
        return ["ok", op[1], lease[1]]

    def _op_lease_revoke(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        lease = self.leases.pop(op[1], None)
        if lease is None:
            return ["nolease", op[1]]
        if lease[2]:
            self.revision += 1
            for key in list(lease[2]):
                self._delete(key, events, detach=False)
        return ["ok", self.revision]

    def _op_lease_expire(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        due = [lid for lid, lease in self.leases.items() if lease[1] <= now]
        for lid in due:
            lease = self.leases.pop(lid)
            if lease[2]:
                self.revision += 1
                for key in list(lease[2]):
                    self._delete(key, events, detach=False)
        return ["ok", due]

    def _op_noop(self, op: list[Any], now: float, events: list[WatchEvent], nested: bool) -> list[Any]:
        return ["ok", self.revision]

    def _put(self, key: str, value: bytes, lease: int, events: list[WatchEvent]) -> None:
        rev = self.revision
        existing = self.kv.get(key)
        if existing is None:
            entry: _Entry = (value, rev, rev, 1, lease)
        else:
            if existing[4] and existing[4] != lease:
                old = self.leases.get(existing[4])
                if old is not None:
                    old[2].pop(key, None)
            entry = (value, existing[1], rev, existing[3] + 1, lease)
        if lease:
            self.leases[lease][2][key] = None
        self.kv[key] = entry
        events.append(WatchEvent(rev, EVENT_PUT, key, value, entry[1], rev, entry[3], lease))

    def _delete(self, key: str, events: list[WatchEvent], *, detach: bool = True) -> None:
        existing = self.kv.pop(key, None)
        if existing is None:
            return
        if detach and existing[4]:
            lease = self.leases.get(existing[4])
            if lease is not None:
                lease[2].pop(key, None)
        # A delete caused by its lease ending (expiry or revoke) names that lease;
        # an explicit delete has lease 0, so watchers can tell a deadline firing from a disarm.
        gone_with = 0 if detach else existing[4]
        events.append(WatchEvent(self.revision, EVENT_DELETE, key, b"", existing[1], self.revision, 0, gone_with))

    def _compare(self, cmp: list[Any]) -> bool:
        key, target, op, value = cmp
        entry = self.kv.get(key)
        if target == "mod":
            actual: Any = entry[2] if entry else 0
        elif target == "create":
            actual = entry[1] if entry else 0
        elif target == "version":
            actual = entry[3] if entry else 0
        elif target == "lease":
            actual = entry[4] if entry else 0
        elif target == "value":
            actual = entry[0] if entry else None
        else:
            return False
        if op == "==":
            return bool(actual == value)
        if op == "!=":
            return bool(actual != value)
        if actual is None or value is None:
            return False
        if op == "<":
            return bool(actual < value)
        if op == ">":
            return bool(actual > value)
        return False

    # ------------------------------------------------------------------ local reads

    def get(self, key: str) -> KeyValue | None:
        with self._lock:
            entry = self.kv.get(key)
        return None if entry is None else KeyValue(key, *entry)

    def range(self, prefix: str, *, start_after: str | None = None, limit: int = 0) -> tuple[list[KeyValue], bool, int]:
        """Keys under ``prefix`` in key order; returns (items, more, revision)."""
        items: list[KeyValue] = []
        with self._lock:
            if start_after is not None and start_after >= prefix:
                it = self.kv.irange(minimum=start_after, inclusive=(False, True))
            else:
                it = self.kv.irange(minimum=prefix)
            more = False
            for key in it:
                if not key.startswith(prefix):
                    break
                if limit and len(items) >= limit:
                    more = True
                    break
                items.append(KeyValue(key, *self.kv[key]))
            revision = self.revision
        return items, more, revision

    def count(self, prefix: str) -> int:
        with self._lock:
            n = 0
            for key in self.kv.irange(minimum=prefix):
                if not key.startswith(prefix):
                    break
                n += 1
        return n

    def lease(self, lease_id: int) -> tuple[float, float, list[str]] | None:
        """(ttl, deadline, keys) of a live lease, or None."""
        with self._lock:
            lease = self.leases.get(lease_id)
            if lease is None:
                return None
            return lease[0], lease[1], list(lease[2])

    def next_lease_deadline(self) -> float | None:
        with self._lock:
            if not self.leases:
                return None
            deadline: float = min(lease[1] for lease in self.leases.values())
            return deadline

    def statistics(self) -> dict[str, int]:
        with self._lock:
            return {"keys": len(self.kv), "leases": len(self.leases), "revision": self.revision}

    def current_revision(self) -> int:
        with self._lock:
            return self.revision


#: Operation code -> the :class:`KVState` method that applies it (plain functions, called with the
#: state: a lookup and a call per operation, nothing allocated).
_OP_APPLIERS: dict[int, Callable[[KVState, list[Any], float, list[WatchEvent], bool], list[Any]]] = {
    OP_PUT: KVState._op_put,
    OP_DELETE: KVState._op_delete,
    OP_DELETE_PREFIX: KVState._op_delete_prefix,
    OP_TXN: KVState._op_txn,
    OP_LEASE_GRANT: KVState._op_lease_grant,
    OP_LEASE_KEEPALIVE: KVState._op_lease_keepalive,
    OP_LEASE_REVOKE: KVState._op_lease_revoke,
    OP_LEASE_EXPIRE: KVState._op_lease_expire,
    OP_NOOP: KVState._op_noop,
}
