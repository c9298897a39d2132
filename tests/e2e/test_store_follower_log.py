"""A follower never drops committed entries from its log when the leader resends older ones.

pysyncobj's follower deletes every entry after ``prevLogIdx`` on each append,
even entries it holds with the same term and has already applied; a node
killed before the leader resends them has lost acknowledged entries from its
durable log. Raft only deletes on a conflict, and committed entries never
conflict. Here the leader is made to resend from well below the follower's
commit index (as after a restart or a leader change) and the follower must
not truncate anything it had applied.

Real stores (three members) in a child process, as in a node.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness.backend import free_port, run_store_script

_SCRIPT = r"""
import json, logging, sys, trio
from tests.harness.stores import leader_of, open_members

truncations = []

cleared = []
refused = []

class Refused(logging.Handler):
    def emit(self, record):
        if "refusing a snapshot once" in record.getMessage():
            refused.append(record.getMessage())

logging.getLogger("cluster.membership").addHandler(Refused())
logging.getLogger("cluster.membership").setLevel(logging.INFO)

class Catch(logging.Handler):
    def emit(self, record):
        if "truncating already-applied" in record.getMessage():
            truncations.append(record.getMessage())
        if "exceeds journal end" in record.getMessage():
            cleared.append(record.getMessage())

logging.getLogger("pysyncobj").addHandler(Catch())
logging.getLogger("pysyncobj").setLevel(logging.INFO)

async def main(root, case, *peers):
    # "lagging": no member stands by itself (the test starts the one election), so a follower
    # cut off from the leader waits instead of campaigning
    election_s = 60.0 if case == "lagging" else 0.4
    async with open_members(root, peers, token="follower-log-test", election_s=election_s) as stores:
        if case == "lagging":
            stores[0]._raft._syncobj._SyncObj__raftElectionDeadline = 0
        leader = await leader_of(stores)
        follower = next(s for s in stores if s is not leader)
        for i in range(300):
            await leader.put(f"/a/{i:04}", b"first")
        with trio.fail_after(30):
            while follower.raft_status().last_applied < leader.raft_status().commit_index:
                await trio.sleep(0.02)
        applied = follower.raft_status().last_applied
        so = leader._raft._syncobj  # the patches under test are pysyncobj's
        node = next(n for n in so.otherNodes if n.id == follower.self_address)
        if case == "append":
            so._SyncObj__raftNextIndex[node] = applied - 200  # resend from well below the follower's commit index
        elif case == "lagging":
            # the leader stops sending to the follower, goes on and compacts past everything it holds
            connected = so._SyncObj__connectedNodes
            connected.discard(node)
            for i in range(20):
                await leader.put(f"/c/{i:04}", b"third")
            log = so._SyncObj__raftLog
            so.forceLogCompaction()
            with trio.fail_after(30):
                while log[0][1] < leader.raft_status().commit_index - 5:
                    await trio.sleep(0.02)
            connected.add(node)  # its next send to the follower is the dump
        else:
            # the leader compacts, goes on, and then believes the follower needs its whole dump
            log = so._SyncObj__raftLog
            so.forceLogCompaction()
            with trio.fail_after(30):
                while log[0][1] < applied - 10:
                    await trio.sleep(0.02)
            for i in range(20):
                await leader.put(f"/c/{i:04}", b"third")
            with trio.fail_after(30):
                while follower.raft_status().last_applied < leader.raft_status().commit_index:
                    await trio.sleep(0.02)
            # at the dump: pysyncobj sends the snapshot. A success reply still in flight (the follower
            # syncs its journal before replying) can move nextIndex up again first: set it until a
            # snapshot is offered (the writes under /d/ only make the leader send; they are not counted)
            for attempt in range(50):
                so._SyncObj__raftNextIndex[node] = log[0][1]
                await leader.put(f"/d/{attempt:04}", b"nudge")
                with trio.move_on_after(0.5):
                    while not refused:
                        await trio.sleep(0.01)
                if refused:
                    break
        for i in range(50):
            await leader.put(f"/b/{i:04}", b"second")
        target = leader.raft_status().commit_index
        with trio.fail_after(30):
            while any(s.raft_status().last_applied < target for s in stores):
                await trio.sleep(0.02)
        values = []
        for s in stores:
            values.append(sum([len((await s.range(p)).items) for p in ("/a/", "/b/", "/c/")]))
        out = {
            "truncations": len(truncations),
            "cleared": len(cleared),
            "refused": len(refused),
            "values": values,
        }
        print(json.dumps(out))

trio.run(main, *sys.argv[1:])
"""


def _peer() -> str:
    return f"http://127.0.0.1:{free_port('127.0.0.1')}"


async def test_an_old_append_does_not_truncate_applied_entries(tmp_path: Path) -> None:
    out = await run_store_script(_SCRIPT, str(tmp_path), "append", _peer(), _peer(), _peer(), timeout=120)
    assert out["values"] == [350, 350, 350]
    assert out["truncations"] == 0


async def test_a_stale_snapshot_does_not_clear_committed_entries(tmp_path: Path) -> None:
    out = await run_store_script(_SCRIPT, str(tmp_path), "snapshot", _peer(), _peer(), _peer(), timeout=120)
    assert out["values"] == [370, 370, 370]
    assert out["cleared"] == 0
    assert out["truncations"] == 0
    assert out["refused"] >= 1  # and the leader appended from the follower's committed end instead


async def test_a_follower_behind_the_dump_still_installs_it(tmp_path: Path) -> None:
    out = await run_store_script(_SCRIPT, str(tmp_path), "lagging", _peer(), _peer(), _peer(), timeout=120)
    assert out["values"] == [370, 370, 370]
    # refused once, then the next snapshot is installed (the leader's log no longer holds what the
    # follower lacks, so only the dump can bring it level); a later stale resend may be refused again
    assert out["refused"] >= 1
