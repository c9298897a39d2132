"""The Raft log is compacted by bytes applied, not only by entry count, and nothing is lost.

A real single-node store in a child process (real pysyncobj, journal and
dump): with a small ``compaction_max_bytes``, writing more than that starts
a compaction (a dump appears and the in-memory log shrinks) well before the
entry bound; reopened from the same directory, every value is there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import trio

from tests.harness.backend import REPO, free_port

_SCRIPT = r"""
import json, os, sys, trio
from cluster.membership import Member, RaftSettings
from cluster.store import open_store

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
            log = store.node.syncobj._SyncObj__raftLog
            while not os.path.exists(os.path.join(state_dir, "raft.dump")) or len(log) >= 300:
                await trio.sleep(0.05)
            out["log_entries"] = len(log)
        out["values"] = len((await store.range("/big/")).items)
    print(json.dumps(out))

trio.run(main, sys.argv[1], sys.argv[2], sys.argv[3])
"""


async def _run(peer: str, state_dir: Path, phase: str) -> dict[str, int]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with trio.fail_after(120):  # hang guard: without the byte bound no dump would ever appear
        proc = await trio.run_process([sys.executable, "-c", _SCRIPT, peer, str(state_dir), phase],
                                      capture_stdout=True, capture_stderr=True, check=False, cwd=str(REPO), env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-5000:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])  # type: ignore[no-any-return]


async def test_log_is_compacted_by_bytes_and_survives_a_restart(tmp_path: Path) -> None:
    host = "127.0.0.1"
    peer = f"http://{host}:{free_port(host)}"
    written = await _run(peer, tmp_path / "raft", "write")
    assert written["values"] == 300
    assert written["log_entries"] < 300
    reopened = await _run(peer, tmp_path / "raft", "read")
    assert reopened["values"] == 300
