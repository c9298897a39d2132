"""agent.queue: the durable, bounded event queue in cache-dir."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from agent.queue import QueueFullError, QueueLockedError, open_event_queue


async def drain(queue) -> list[bytes]:  # type: ignore[no-untyped-def]
    out = []
    while len(queue):
        item = await queue.wait_oldest()
        payload = await queue.read(item)
        assert payload is not None
        out.append(payload)
        await queue.remove(item)
    return out


async def test_fifo_and_removal_only_after_ack(tmp_path: Path) -> None:
    async with open_event_queue(tmp_path, max_events=10, max_bytes=10_000) as q:
        await q.put(b"one", "check")
        await q.put(b"two", "api")
        item = await q.wait_oldest()
        assert (item.seq, item.origin) == (1, "check")
        assert await q.read(item) == b"one"
        assert len(q) == 2  # reading does not remove
        await q.remove(item)
        assert [await q.read(await q.wait_oldest())] == [b"two"]
        assert q.statistics()["sent"] == 1


async def test_survives_reopen_in_order(tmp_path: Path) -> None:
    async with open_event_queue(tmp_path, max_events=10, max_bytes=10_000) as q:
        for i in range(5):
            await q.put(f"e{i}".encode(), "api" if i % 2 else "check")
        item = await q.wait_oldest()
        await q.remove(item)
    # a leftover temp file from a crash mid-write is ignored and cleaned
    (tmp_path / "events" / ".tmp-0000000000000099").write_bytes(b"half")
    async with open_event_queue(tmp_path, max_events=10, max_bytes=10_000) as q:
        assert len(q) == 4
        assert q.total_bytes == 8
        new = await q.put(b"e5", "check")
        assert new.seq == 6  # numbering continues after the highest on disk
        assert await drain(q) == [b"e1", b"e2", b"e3", b"e4", b"e5"]
    assert sorted(p.name for p in (tmp_path / "events").iterdir()) == [".lock"]


async def test_bounded_by_count_refuses_new_events(tmp_path: Path) -> None:
    async with open_event_queue(tmp_path, max_events=2, max_bytes=10_000) as q:
        await q.put(b"a", "check")
        await q.put(b"b", "check")
        with pytest.raises(QueueFullError, match="2 of 2 events"):
            await q.put(b"c", "api")
        assert q.statistics()["refused"] == 1
        assert await drain(q) == [b"a", b"b"]  # nothing accepted was dropped
        await q.put(b"c", "api")


async def test_bounded_by_bytes(tmp_path: Path) -> None:
    async with open_event_queue(tmp_path, max_events=100, max_bytes=10) as q:
        await q.put(b"12345678", "check")
        with pytest.raises(QueueFullError, match="bytes"):
            await q.put(b"123", "check")
        await q.put(b"12", "check")


async def test_bound_applies_after_reopen(tmp_path: Path) -> None:
    async with open_event_queue(tmp_path, max_events=2, max_bytes=10_000) as q:
        await q.put(b"a", "check")
        await q.put(b"b", "check")
    async with open_event_queue(tmp_path, max_events=2, max_bytes=10_000) as q:
        with pytest.raises(QueueFullError):
            await q.put(b"c", "check")


async def test_consumer_waits_for_a_producer(tmp_path: Path) -> None:
    async with open_event_queue(tmp_path, max_events=10, max_bytes=10_000) as q:
        got: list[bytes] = []

        async def consume() -> None:
            item = await q.wait_oldest()
            payload = await q.read(item)
            assert payload is not None
            got.append(payload)

        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(consume)
                await trio.testing.wait_all_tasks_blocked()
                await q.put(b"late", "api")
        assert got == [b"late"]


async def test_a_vanished_file_is_dropped_not_blocking(tmp_path: Path) -> None:
    async with open_event_queue(tmp_path, max_events=10, max_bytes=10_000) as q:
        first = await q.put(b"a", "check")
        await q.put(b"b", "check")
        (tmp_path / "events" / first.filename).unlink()
        assert await q.read(await q.wait_oldest()) is None
        assert q.statistics()["lost"] == 1
        assert await drain(q) == [b"b"]


async def test_two_agents_cannot_share_a_cache_dir(tmp_path: Path) -> None:
    async with open_event_queue(tmp_path, max_events=10, max_bytes=10_000):
        with pytest.raises(QueueLockedError, match="in use by another sensu-agent"):
            async with open_event_queue(tmp_path, max_events=10, max_bytes=10_000):
                pass
    async with open_event_queue(tmp_path, max_events=10, max_bytes=10_000):
        pass  # released on exit
