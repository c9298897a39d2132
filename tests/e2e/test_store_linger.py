"""Lingering writes share Raft entries; other writes never wait for them.

Runs the real store (one node, real pysyncobj and journal) in a child
process, as the node does, and prints what its commit task did.
"""

from __future__ import annotations

from pathlib import Path

from cluster.store import LINGER_OPS
from tests.harness.backend import free_port, run_store_script

_SCRIPT = r"""
import json, sys, trio
from cluster.membership import Member, RaftSettings
from cluster.store import LINGER_OPS, open_store

async def main(peer, state_dir):
    settings = RaftSettings(name="linger", advertise_url=peer, listen_url=peer, members=(Member("linger", peer),),
                            token="linger-test", state_dir=state_dir)
    out = {}
    async with open_store(settings) as store:
        await store.wait_leader(30)

        # 1. lingering writes wait for company; a plain write ends the wait and joins the entry
        store.linger_s = 3600.0  # only the plain write below can end this wait
        before = dict(store.stats)

        async def lingering_put(i):
            with store.lingering():
                await store.put(f"/linger/{i:02}", b"v")

        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(lingering_put, i)
            while store._recv.statistics().current_buffer_used < 9:  # one is held by the lingering commit task
                await trio.sleep(0.01)
            await store.put("/plain", b"p")
        out["one_entry"] = {"batches": store.stats["batches"] - before["batches"],
                            "ops": store.stats["ops"] - before["ops"]}
        out["stored"] = len((await store.range("/linger/")).items) + len((await store.range("/plain")).items)

        # 2. a lone lingering write goes out when its linger ends
        store.linger_s = 0.05
        with store.lingering():
            await store.put("/alone", b"a")
        out["alone"] = (await store.get("/alone")) is not None

        # 3. enough lingering writes end the wait by themselves
        store.linger_s = 3600.0
        async with trio.open_nursery() as nursery:
            for i in range(LINGER_OPS):
                nursery.start_soon(lingering_put, 100 + i)
        out["by_count"] = len((await store.range("/linger/1")).items)

        # 4. writes outside lingering() never linger, whatever linger_s is
        store.linger_s = 3600.0
        for i in range(5):
            await store.put(f"/seq/{i}", b"s")
        out["sequential"] = len((await store.range("/seq/")).items)
    print(json.dumps(out))

trio.run(main, sys.argv[1], sys.argv[2])
"""


async def test_lingering_writes_share_an_entry_and_plain_writes_end_the_wait(tmp_path: Path) -> None:
    host = "127.0.0.1"
    peer = f"http://{host}:{free_port(host)}"
    # hang guard (the helper's timeout): a linger that is never ended would wait an hour
    out = await run_store_script(_SCRIPT, peer, str(tmp_path / "raft"), timeout=120)
    assert out["one_entry"] == {"batches": 1, "ops": 11}
    assert out["stored"] == 11
    assert out["alone"] is True
    assert out["by_count"] == LINGER_OPS
    assert out["sequential"] == 5
