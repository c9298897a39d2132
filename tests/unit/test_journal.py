"""The durable Raft journal: cutting it after a compaction is one rename, and it reopens whole."""

from __future__ import annotations

import os
from pathlib import Path

from pysyncobj.journal import FileJournal

from cluster.journal import REWRITE_SUFFIX, DurableFileJournal, LowPriorityDumpWriter, keep_journal_past_dump
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
