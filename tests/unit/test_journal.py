"""The durable Raft journal: cutting it after a compaction is one rename, and it reopens whole."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from pysyncobj.config import SERIALIZER_STATE
from pysyncobj.journal import FileJournal
from pysyncobj.serializer import Serializer

from cluster.raft.journal import (
    REWRITE_SUFFIX,
    THREAD_DUMP_MAX_BYTES,
    DurableFileJournal,
    LowPriorityDumpWriter,
    keep_journal_past_dump,
    write_dumps_in_a_thread,
)
from cluster.membership import Member, RaftSettings, first_compaction_at


def _fill(path: Path, count: int) -> DurableFileJournal:
    journal = DurableFileJournal(str(path))
    for index in range(1, count + 1):
        journal.add(f"command {index}".encode() * (index % 7 + 1), index, 1 + index // 50)
    return journal


def _entries(journal: FileJournal) -> list[tuple[bytes, int, int]]:
    return [(bytes(command), index, term) for command, index, term in (journal[i] for i in range(len(journal)))]


def test_a_cut_journal_reopens_with_the_kept_entries_and_takes_more(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = _fill(path, 120)
    expected = _entries(journal)[70:]
    journal.deleteEntriesTo(70)
    assert _entries(journal) == expected
    journal.add(b"after the cut", 121, 3)
    journal.flush()
    journal._destroy()

    reopened = FileJournal(str(path))  # pysyncobj's own reader sees a well-formed journal
    assert _entries(reopened) == [*expected, (b"after the cut", 121, 3)]
    reopened._destroy()
    assert not (tmp_path / ("raft.journal" + REWRITE_SUFFIX)).exists()


def test_an_unfinished_rewrite_is_discarded_and_the_journal_kept(tmp_path: Path) -> None:
    path = tmp_path / "raft.journal"
    journal = _fill(path, 30)
    expected = _entries(journal)
    journal._destroy()
    leftover = tmp_path / ("raft.journal" + REWRITE_SUFFIX)
    leftover.write_bytes(b"half a journal")  # a kill before the rename

    reopened = DurableFileJournal(str(path))
    assert _entries(reopened) == expected
    assert not leftover.exists()
    reopened._destroy()


def test_entries_a_dump_covers_are_dropped_and_the_rest_kept(tmp_path: Path) -> None:
    journal = _fill(tmp_path / "raft.journal", 40)
    entries = _entries(journal)
    dump = (None, entries[25], entries[24], set())  # applied through index 26
    assert keep_journal_past_dump(journal, dump) == 24
    assert _entries(journal) == entries[24:]
    assert keep_journal_past_dump(journal, dump) == 0  # already starts at the dump
    journal._destroy()


def test_a_dump_the_journal_does_not_hold_changes_nothing(tmp_path: Path) -> None:
    journal = _fill(tmp_path / "raft.journal", 10)
    entries = _entries(journal)
    assert keep_journal_past_dump(journal, (None, (b"x", 50, 9), (b"y", 49, 9), set())) == 0
    assert keep_journal_past_dump(journal, (None, (b"other", 6, 1), entries[4], set())) == 0  # a different entry 6
    assert _entries(journal) == entries
    journal._destroy()


def test_members_first_compact_at_points_spread_over_one_interval() -> None:
    members = tuple(Member(f"n{i}", f"http://127.0.0.{i}:2380") for i in (1, 2, 3))
    points = [first_compaction_at(RaftSettings(name=m.name, advertise_url=m.peer_url, listen_url=m.peer_url,
                                               members=members, token="t", state_dir="/nonexistent",
                                               compaction_max_bytes=3_000))
              for m in members]
    assert points == [3_000, 4_000, 5_000]


def test_the_dump_writer_child_runs_at_nice_19_and_the_parent_does_not() -> None:
    before = os.nice(0)
    read, write = os.pipe()
    pid = LowPriorityDumpWriter().fork()
    if pid == 0:  # the child: report its niceness, leave at once (as the dump writer does)
        os.write(write, str(os.nice(0)).encode())
        os._exit(0)
    os.close(write)
    try:
        child = int(os.read(read, 16))
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert child == 19
    assert os.nice(0) == before


def _serializer(path: Path) -> Serializer:
    """pysyncobj's own dump writer, as a node has it (file dumps, fork allowed), writing in a thread."""
    serializer = Serializer(str(path), 2 ** 16, True, None, None, None)
    write_dumps_in_a_thread(serializer)
    return serializer


def _outcome(serializer: Serializer) -> tuple[int, object]:
    """Poll like pysyncobj's tick does until the dump is done (bounded: the writer is a local file write)."""
    for _ in range(1000):
        state, dump_id = serializer.checkSerializing()
        if state != SERIALIZER_STATE.SERIALIZING:
            return state, dump_id
        time.sleep(0.01)
    raise AssertionError("the dump writer never finished")


def test_a_dump_is_written_by_a_thread_without_forking_and_pysyncobj_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_fork() -> int:
        raise AssertionError("forked")

    monkeypatch.setattr(os, "fork", no_fork)
    serializer = _serializer(tmp_path / "raft.dump")
    state = {"kv": {f"/k/{i}": (os.urandom(64), i, i, 1, 0) for i in range(500)}, "revision": 500}
    data = ([{}, state], (b"last", 42, 3), (b"before", 41, 3), set())
    serializer.serialize(data, 42)
    assert _outcome(serializer) == (SERIALIZER_STATE.SUCCESS, 42)
    assert serializer.checkSerializing() == (SERIALIZER_STATE.NOT_SERIALIZING, None)  # ready for the next
    assert serializer.deserialize() == data  # pysyncobj's own reader: gzip, then the pickle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raft.dump"]  # no temporary file left


def test_a_dump_that_cannot_be_written_fails_and_the_next_one_runs(tmp_path: Path) -> None:
    serializer = _serializer(tmp_path / "missing" / "raft.dump")
    serializer.serialize(([{}, {"revision": 1}], (b"a", 2, 1), (b"b", 1, 1), set()), 2)
    assert _outcome(serializer) == (SERIALIZER_STATE.FAILED, 2)
    serializer.serialize(([{}, {"revision": 1}], (b"a", 2, 1), (b"b", 1, 1), set(), lambda: None), 3)  # unpicklable
    assert _outcome(serializer) == (SERIALIZER_STATE.FAILED, 3)
    (tmp_path / "missing").mkdir()
    serializer.serialize(([{}, {"revision": 1}], (b"a", 4, 1), (b"b", 3, 1), set()), 4)
    assert _outcome(serializer) == (SERIALIZER_STATE.SUCCESS, 4)


def test_a_second_dump_waits_for_the_first(tmp_path: Path) -> None:
    serializer = _serializer(tmp_path / "raft.dump")
    first = ([{}, {"revision": 1, "kv": {"k": os.urandom(1 << 20)}}], (b"a", 2, 1), (b"b", 1, 1), set())
    serializer.serialize(first, 2)
    serializer.serialize(([{}, {"revision": 9}], (b"c", 9, 1), (b"d", 8, 1), set()), 9)  # ignored: one at a time
    assert _outcome(serializer) == (SERIALIZER_STATE.SUCCESS, 2)
    assert serializer.deserialize() == first


def test_a_state_whose_last_dump_was_big_goes_to_the_forked_writer(tmp_path: Path) -> None:
    path = tmp_path / "raft.dump"
    with open(path, "wb") as f:  # a previous dump over the bound (sparse: no real bytes written)
        f.truncate(THREAD_DUMP_MAX_BYTES + 1)
    serializer = _serializer(path)
    data = ([{}, {"revision": 7}], (b"a", 8, 1), (b"b", 7, 1), set())
    serializer.serialize(data, 8)
    assert serializer._Serializer__pid > 0  # a real child process, as pysyncobj forks it
    assert _outcome(serializer) == (SERIALIZER_STATE.SUCCESS, 8)
    assert serializer.deserialize() == data
    serializer.serialize(([{}, {"revision": 9}], (b"c", 10, 1), (b"d", 9, 1), set()), 10)  # the dump is small now
    assert serializer._Serializer__pid < 0  # a thread's stand-in id
    assert _outcome(serializer) == (SERIALIZER_STATE.SUCCESS, 10)


def test_with_fsync_a_cut_journal_and_a_dump_are_written_the_same_way(tmp_path: Path) -> None:
    journal = _fill(tmp_path / "raft.journal", 40)
    journal.durable = True
    expected = _entries(journal)[25:]
    journal.deleteEntriesTo(25)
    journal._destroy()
    reopened = DurableFileJournal(str(tmp_path / "raft.journal"))
    assert _entries(reopened) == expected
    reopened._destroy()

    serializer = Serializer(str(tmp_path / "raft.dump"), 2 ** 16, True, None, None, None)
    write_dumps_in_a_thread(serializer, fsync=True)
    data = ([{}, {"revision": 3}], (b"a", 4, 1), (b"b", 3, 1), set())
    serializer.serialize(data, 4)
    assert _outcome(serializer) == (SERIALIZER_STATE.SUCCESS, 4)
    assert serializer.deserialize() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raft.dump", "raft.journal"]
