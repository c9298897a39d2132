"""Entries larger than one append message reach every follower, whatever their size.

pysyncobj sends an entry bigger than ``appendEntriesBatchSizeBytes`` in
chunks, and labels a chunk "finish" by comparing against the command's
length instead of the pickled entry's: when a chunk boundary falls in the
few dozen bytes between the two, the follower gets "finish" one chunk early,
cannot unpickle it, and fails on every retry (the write stalls, seconds at a
time under load). Three real stores in one child process, with 64 KiB
append messages, write values whose sizes sweep across a chunk boundary
byte by byte; every write must be acknowledged and be on every node, and no
follower may fail on the way.
"""

from __future__ import annotations

from pathlib import Path


from tests.harness.backend import free_port, run_store_script

_SCRIPT = r"""
import json, logging, sys, trio
from tests.harness.stores import leader_of, open_members

class Failures(logging.Handler):
    count = 0
    def emit(self, record):
        Failures.count += 1

logging.getLogger("pysyncobj").addHandler(Failures(logging.ERROR))

async def main(state_dir, *peers):
    async with open_members(state_dir, peers, token="large", append_entries_batch_bytes=65536) as stores:
        leader = await leader_of(stores)
        sizes = range(2 * 65536 - 300, 2 * 65536 - 60)  # pickled entries end just past the 2nd chunk
        with trio.fail_after(120):
            for n in sizes:
                await leader.put(f"/big/{n}", b"x" * n)
            for s in stores:  # every follower applies every value
                while len((await s.range("/big/")).items) < len(sizes):
                    await trio.sleep(0.05)
        print(json.dumps({"written": len(sizes), "on_each": [len((await s.range("/big/")).items) for s in stores],
                          "raft_errors": Failures.count}))

trio.run(main, *sys.argv[1:])
"""


async def test_entries_bigger_than_an_append_message_reach_every_follower(tmp_path: Path) -> None:
    host = "127.0.0.1"
    peers = [f"http://{host}:{free_port(host)}" for _ in range(3)]
    out = await run_store_script(_SCRIPT, str(tmp_path), *peers, timeout=200)
    assert out["on_each"] == [out["written"]] * 3
    assert out["raft_errors"] == 0  # no follower failed to read a chunked entry
