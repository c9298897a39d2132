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
import contextlib, json, logging, sys, trio
from cluster.membership import Member, RaftSettings
from cluster.store import open_store

truncations = []

class Catch(logging.Handler):
    def emit(self, record):
        if "truncating already-applied" in record.getMessage():
            truncations.append(record.getMessage())

logging.getLogger("pysyncobj").addHandler(Catch())
logging.getLogger("pysyncobj").setLevel(logging.INFO)

async def main(root, *peers):
    members = tuple(Member(f"m{i}", p) for i, p in enumerate(peers))
    async with contextlib.AsyncExitStack() as stack:
        stores = []
        for m in members:
            settings = RaftSettings(name=m.name, advertise_url=m.peer_url, listen_url=m.peer_url, members=members,
                                    token="follower-log-test", state_dir=f"{root}/{m.name}")
            stores.append(await stack.enter_async_context(open_store(settings)))
        await stores[0].wait_leader(30)
        with trio.fail_after(30):
            while not any(s.raft_status().is_leader for s in stores):
                await trio.sleep(0.05)
        leader = next(s for s in stores if s.raft_status().is_leader)
        follower = next(s for s in stores if s is not leader)
        for i in range(300):
            await leader.put(f"/a/{i:04}", b"first")
        with trio.fail_after(30):
            while follower.raft_status().last_applied < leader.raft_status().commit_index:
                await trio.sleep(0.02)
        applied = follower.raft_status().last_applied
        so = leader.node.syncobj
        node = next(n for n in so.otherNodes if n.id == follower.node.self_address)
        so._SyncObj__raftNextIndex[node] = applied - 200  # resend from well below the follower's commit index
        for i in range(50):
            await leader.put(f"/b/{i:04}", b"second")
        target = leader.raft_status().commit_index
        with trio.fail_after(30):
            while any(s.raft_status().last_applied < target for s in stores):
                await trio.sleep(0.02)
        out = {
            "truncations": len(truncations),
            "values": [len((await s.range("/a/")).items) + len((await s.range("/b/")).items) for s in stores],
        }
        print(json.dumps(out))

trio.run(main, *sys.argv[1:])
"""


def _peer() -> str:
    return f"http://127.0.0.1:{free_port('127.0.0.1')}"


async def test_an_old_append_does_not_truncate_applied_entries(tmp_path: Path) -> None:
    out = await run_store_script(_SCRIPT, str(tmp_path), _peer(), _peer(), _peer(), timeout=120)
    assert out["values"] == [350, 350, 350]
    assert out["truncations"] == 0
