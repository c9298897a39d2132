"""The replicated map through pysyncobj: plain data in the log, the same dumps, rules without pysyncobj.

A real ``SyncObj`` with ``autoTick=False`` ticked by hand (as pysyncobj's own
tests do), one member, journal and dumps in memory.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

import pytest
from pysyncobj import SyncObj, SyncObjConf

from cluster import codec
from cluster.raft import ProposalOutcome
from cluster.raft.consumer import ReplicatedKV
from cluster.statemachine import REPLICATED, KVState
from tests.harness.backend import free_port


class _PlainDataOnly(pickle.Unpickler):
    """Refuses every global but the one pickle protocol 2 writes ``bytes`` with."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"the log holds an object: {module}.{name}")


@pytest.fixture
def member() -> Any:
    state = KVState()
    consumer = ReplicatedKV(state)
    conf = SyncObjConf(autoTick=False, raftMinTimeout=0.04, raftMaxTimeout=0.08, appendEntriesPeriod=0.01,
                      appendEntriesUseBatch=False)
    syncobj = SyncObj(f"127.0.0.1:{free_port()}", [], conf=conf, consumers=[consumer])
    try:
        yield state, consumer, syncobj
    finally:
        syncobj.destroy()


def _tick_until(syncobj: SyncObj, done: Any) -> None:
    """Tick by hand until ``done()``; bounded (a lone member elects itself within its election timeout)."""
    for _ in range(2000):
        if done():
            return
        syncobj.doTick(0.005)
    raise AssertionError("pysyncobj never got there")


def test_a_batch_is_logged_as_plain_data_and_applied(member: Any) -> None:
    state, consumer, syncobj = member
    _tick_until(syncobj, syncobj._isLeader)
    outcome: list[tuple[Any, int]] = []
    payload = codec.encode_batch([codec.put_op("/k", b"v")])
    consumer.apply_batch("node-1", payload, 1000.0, callback=lambda result, reason: outcome.append((result, reason)))
    _tick_until(syncobj, lambda: outcome)

    assert outcome == [([["ok", 1]], ProposalOutcome.SUCCESS)]
    assert state.get("/k") is not None and state.get("/k").value == b"v"
    command = bytes(syncobj._SyncObj__raftLog[-1][0])
    # pysyncobj's entry: a command type byte, then (method id, arguments): a str, bytes and a float
    assert _PlainDataOnly(io.BytesIO(command[1:])).load() == (0, ("node-1", payload, 1000.0))


def test_a_dump_holds_the_replicated_attributes_only(member: Any) -> None:
    state, consumer, _ = member
    state.apply_batch("b", codec.encode_batch([codec.put_op("/a", b"1")]), 5.0)
    dump = consumer._serialize()
    assert list(dump) == list(REPLICATED) == ["revision", "kv", "leases", "recent"]
    assert dump["revision"] == 1 and list(dump["kv"]) == ["/a"]

    resets: list[int] = []
    restored = KVState(on_reset=resets.append)
    ReplicatedKV(restored)._deserialize(pickle.loads(pickle.dumps(dump)))
    assert resets == [1]
    assert restored.get("/a") == state.get("/a")


def test_the_rules_need_no_pysyncobj() -> None:
    state = KVState()
    payload = codec.encode_batch([codec.put_op("/x", b"1"), codec.delete_op("/x"), [99]])
    results = state.apply_batch("once", payload, 1.0)
    assert results == [["ok", 1], ["ok", 2, 1], ["error", "unknown operation 99"]]
    assert state.apply_batch("once", payload, 2.0) is results  # a retried batch is not applied twice
    assert state.current_revision() == 2
