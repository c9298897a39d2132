"""Log compaction bounds the journal by bytes and never loses an acknowledged write.

A real single-node store in a child process (real pysyncobj, journal and
dump). A compaction's dump is written in the background (a thread here,
pysyncobj's forked child originally), and the journal is cut only when
pysyncobj learns the dump is done; the test holds that back, which is
exactly the state a node stopped (or killed) between the two leaves on disk.
Reopened, every value written before and after the dump is there.

With a small ``compaction_max_bytes``, writing more than that starts
compactions (a dump appears and the in-memory log shrinks) well before the
entry bound, without forking; reopened, every value is there.
"""

from __future__ import annotations

from pathlib import Path


from tests.harness.backend import free_port, run_store_script

_SCRIPT = r"""
import json, os, sys, trio
from pysyncobj.config import SERIALIZER_STATE
from cluster.membership import Member, RaftSettings
from cluster.store import open_store

async def main(peer, state_dir, phase):
    settings = RaftSettings(name="compact", advertise_url=peer, listen_url=peer, members=(Member("compact", peer),),
                            token="compact-test", state_dir=state_dir, compaction_min_entries=1_000_000)
    out = {}
    async with open_store(settings) as store:
        await store.wait_leader(30)
        syncobj = store._raft._syncobj  # the patches under test are pysyncobj's
        log = syncobj._SyncObj__raftLog
        if phase == "write":
            for i in range(200):
                await store.put(f"/v/{i:03}", b"before the dump")
            serializer = syncobj._SyncObj__serializer
            check = serializer.checkSerializing
            def never_reaped():  # the dump is written, the journal cut never comes
                if serializer._Serializer__pid != 0:
                    return SERIALIZER_STATE.SERIALIZING, serializer._Serializer__currentID
                return check()
            serializer.checkSerializing = never_reaped
            syncobj.forceLogCompaction()
            while not os.path.exists(os.path.join(state_dir, "raft.dump")):
                await trio.sleep(0.05)
            for i in range(200, 300):
                await store.put(f"/v/{i:03}", b"after the dump")
        out["log_entries"] = len(log)
        out["first_index"] = log[0][1]
        out["values"] = len((await store.range("/v/")).items)
    print(json.dumps(out))

trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
"""


_BYTES_SCRIPT = r"""
import json, os, sys, trio
from cluster.membership import Member, RaftSettings
from cluster.store import open_store

forks = []
real_fork = os.fork
def counted_fork():
    forks.append(1)
    return real_fork()
os.fork = counted_fork

async def main(peer, state_dir, phase):
    settings = RaftSettings(name="compact", advertise_url=peer, listen_url=peer, members=(Member("compact", peer),),
                            token="compact-test", state_dir=state_dir, compaction_min_entries=1_000_000,
                            compaction_max_bytes=200_000)
    out = {}
    async with open_store(settings) as store:
        await store.wait_leader(30)
        if phase == "write":
            for i in range(300):  # ~600 KB of values, one Raft entry each: 3x the byte bound
                await store.put(f"/big/{i:03}", os.urandom(1000).hex().encode())
            log = store._raft._syncobj._SyncObj__raftLog
            while not os.path.exists(os.path.join(state_dir, "raft.dump")) or len(log) >= 300:
                await trio.sleep(0.05)
            out["log_entries"] = len(log)
        out["values"] = len((await store.range("/big/")).items)
    out["forks"] = len(forks)
    print(json.dumps(out))

trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
"""


async def _run(peer: str, state_dir: Path, phase: str, script: str = _SCRIPT) -> dict[str, int]:
    # hang guard (the helper's timeout): without the byte bound no dump would ever appear
    return await run_store_script(script, peer, str(state_dir), phase, timeout=120)  # type: ignore[no-any-return]


async def test_a_stop_between_dump_and_journal_cut_loses_nothing(tmp_path: Path) -> None:
    host = "127.0.0.1"
    peer = f"http://{host}:{free_port(host)}"
    written = await _run(peer, tmp_path / "raft", "write")
    assert written["values"] == 300
    assert written["first_index"] == 1  # the journal was never cut: the stop came first
    reopened = await _run(peer, tmp_path / "raft", "read")
    assert reopened["values"] == 300
    assert reopened["first_index"] > 1  # the entries the dump covers are gone from the journal
    assert reopened["log_entries"] < written["log_entries"]


async def test_log_is_compacted_by_bytes_and_survives_a_restart(tmp_path: Path) -> None:
    host = "127.0.0.1"
    peer = f"http://{host}:{free_port(host)}"
    written = await _run(peer, tmp_path / "raft", "write", _BYTES_SCRIPT)
    assert written["values"] == 300
    assert written["log_entries"] < 300
    assert written["forks"] == 0  # the dumps were written by a thread (cluster/raft/journal.py)
    reopened = await _run(peer, tmp_path / "raft", "read", _BYTES_SCRIPT)
    assert reopened["values"] == 300
