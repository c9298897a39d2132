"""The bounded, key-sharded worker pools between agent sessions and event processing."""

from __future__ import annotations

import trio

from backend.agentd.workers import ShardedWorkers


async def test_submit_nowait_queues_until_the_shard_is_full_and_jobs_of_a_key_run_in_order() -> None:
    pool = ShardedWorkers("test", workers=1, buffer=3)
    ran: list[int] = []
    release = trio.Event()

    def job(n: int):  # type: ignore[no-untyped-def]
        async def run() -> None:
            await release.wait()
            ran.append(n)
        return run

    assert [pool.submit_nowait("k", job(n)) for n in range(4)] == [True, True, True, False]  # 3 slots
    assert pool.queued() == 3
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        release.set()
        await pool.submit("k", job(3))  # room again once the worker takes jobs
        while len(ran) < 4:
            await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert ran == [0, 1, 2, 3]
    assert pool.stats["submitted"] == 4 and pool.stats["done"] == 4
