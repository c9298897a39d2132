"""The event log's ring buffer and writer, on a real file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio

from backend.eventd.eventlog import EventLog, EventLogError


def read(path: Path) -> list[dict[str, int]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("parallel", [False, True])
async def test_a_full_buffer_drops_the_oldest_and_counts_without_waiting(tmp_path: Path, parallel: bool) -> None:
    path = tmp_path / "events.log"
    log = EventLog(str(path), buffer_size=3, buffer_wait=0, parallel_encoders=parallel)
    for i in range(5):  # nothing writes yet: the writer is not running
        log.log_nowait({"n": i})
    assert log.statistics()["dropped"] == 2 and log.statistics()["buffered"] == 3
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(log.run)
            while log.statistics()["written"] < 3:
                await trio.sleep(0.01)
            log.log_nowait({"n": 5})
            while log.statistics()["written"] < 4:
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
    assert read(path) == [{"n": 2}, {"n": 3}, {"n": 4}, {"n": 5}]
    assert log.statistics()["logged"] == 6


async def test_reopen_writes_to_a_fresh_file_and_cancel_flushes(tmp_path: Path) -> None:
    path = tmp_path / "events.log"
    log = EventLog(str(path), buffer_size=10, buffer_wait=0.001)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(log.run)
            log.log_nowait({"n": 1})
            while log.statistics()["written"] < 1:
                await trio.sleep(0.01)
            path.rename(tmp_path / "old.log")
            log.reopen_nowait()
            log.log_nowait({"n": 2})
            nursery.cancel_scope.cancel()  # what is buffered is still written on the way out
    assert read(tmp_path / "old.log") == [{"n": 1}]
    assert read(path) == [{"n": 2}]


async def test_an_unopenable_file_is_a_start_error_naming_the_key(tmp_path: Path) -> None:
    log = EventLog(str(tmp_path / "missing-dir" / "events.log"))
    with trio.fail_after(10), pytest.raises(EventLogError, match="event-log-file: cannot open"):
        await log.run()
