"""Bounded worker pools between agent sessions and event processing.

Why not process each message in its session's task: a reconnect storm makes
thousands of sessions send their first keepalive at once. Processing them all
concurrently multiplies store round trips, compare-and-swap conflicts and
memory, and every message then misses its deadline together. Sensu hands
messages to ``keepalived-workers`` / ``eventd-workers`` workers through
buffers of ``keepalived-buffer-size`` / ``eventd-buffer-size``; we do the same.

A session first gets room from the node's intake gate (:mod:`.intake`),
then waits for room in its shard as long as it takes, reading nothing
meanwhile (backpressure reaches the agent through TCP); nothing is dropped
for lack of room.

Jobs are sharded by key (``namespace/entity/check``): jobs with the same key
run one at a time, in arrival order, so the results of one check are merged
in the order the agent sent them (runtime.md §5 recommends serialising per
``(namespace, entity, check)``; the reference does not).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Awaitable, Callable

import trio

__all__ = ["Job", "ShardedWorkers"]

logger = logging.getLogger(__name__)

Job = Callable[[], Awaitable[None]]


class ShardedWorkers:
    """``workers`` tasks, each draining its own bounded queue."""

    def __init__(self, name: str, *, workers: int, buffer: int, node: str = "") -> None:
        self.name = name
        self._node = node
        workers = max(1, workers)
        per_worker = max(1, buffer // workers)
        self._shards = [trio.open_memory_channel[Job](per_worker) for _ in range(workers)]
        self.stats = {"submitted": 0, "done": 0, "failed": 0}

    def _shard(self, key: str) -> trio.MemorySendChannel[Job]:
        return self._shards[zlib.crc32(key.encode()) % len(self._shards)][0]

    async def submit(self, key: str, job: Job) -> None:
        """Queue ``job`` behind the other jobs of ``key``; waits while the shard is full."""
        await self._shard(key).send(job)
        self.stats["submitted"] += 1

    def submit_nowait(self, key: str, job: Job) -> bool:
        """Queue ``job`` if its shard has room; False (nothing queued) if it is full."""
        try:
            self._shard(key).send_nowait(job)
        except trio.WouldBlock:
            return False
        self.stats["submitted"] += 1
        return True

    def queued(self) -> int:
        return sum(send.statistics().current_buffer_used for send, _ in self._shards)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the workers until cancelled; queued jobs are abandoned on cancellation."""
        async with trio.open_nursery() as nursery:
            for _, recv in self._shards:
                nursery.start_soon(self._worker, recv)
            task_status.started()

    async def _worker(self, recv: trio.MemoryReceiveChannel[Job]) -> None:
        async for job in recv:
            try:
                await job()
                self.stats["done"] += 1
            except Exception:  # a bug in one job must not stop the other agents' messages: log it loudly
                self.stats["failed"] += 1
                logger.exception("%s job failed", self.name, extra={"node": self._node})
