"""The Raft journal on disk, made safe across log compaction.

pysyncobj 0.3 has two windows in which a stop or a ``kill -9`` loses writes
that were already acknowledged:

1. Compaction writes the full dump in a forked child, but the parent drops
   the journal entries the dump covers only when it reaps that child, on a
   later tick. A node stopped in between starts with a journal that begins
   *before* the dump. pysyncobj only accepts a journal that begins exactly at
   the dump, so it clears it, and every entry after the dump is gone.
2. ``FileJournal.deleteEntriesTo`` empties the journal in place and writes
   the kept entries back one at a time; a kill inside that loop leaves only
   some of them.

:class:`DurableFileJournal` fixes the second: the kept entries are written
to a new file, which then replaces the journal in one rename.
:func:`keep_journal_past_dump` fixes the first: at load, the entries the
dump already covers are dropped, and the ones after it are kept.
"""

from __future__ import annotations

import logging
import os
import struct
from typing import Any

from pysyncobj.journal import (
    FIRST_RECORD_OFFSET,
    LAST_RECORD_OFFSET_OFFSET,
    FileJournal,
    MemoryJournal,
    ResizableFile,
)

__all__ = ["DurableFileJournal", "create_journal", "keep_journal_past_dump", "REWRITE_SUFFIX"]

logger = logging.getLogger(__name__)

#: The new journal is written here, then renamed over the journal.
REWRITE_SUFFIX = ".rewrite"

Entry = tuple[bytes, int, int]  # (command, index, term), as pysyncobj keeps them


def _record(command: bytes, index: int, term: int) -> bytes:
    """One journal record, in FileJournal's layout: size, index, term, command, size."""
    body = struct.pack("<QQ", index, term) + command
    size = struct.pack("<I", len(body))
    return size + body + size


class DurableFileJournal(FileJournal):  # type: ignore[misc]
    """pysyncobj's file journal whose truncation after a compaction is one atomic rename."""

    def __init__(self, journal_file: str) -> None:
        self._path = journal_file
        leftover = journal_file + REWRITE_SUFFIX
        if os.path.exists(leftover):
            # a rewrite that did not reach its rename: the journal itself is whole
            logger.warning("removing an unfinished journal rewrite %s", leftover)
            os.unlink(leftover)
        super().__init__(journal_file)

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802  (pysyncobj's name)
        entries: list[Entry] = self._FileJournal__journal
        kept = entries[entryTo:]
        records = b"".join(_record(bytes(command), index, term) for command, index, term in kept)
        end = FIRST_RECORD_OFFSET + len(records)
        header = self._FileJournal__getDefaultHeader()[:LAST_RECORD_OFFSET_OFFSET] + struct.pack("<I", end)
        rewrite = self._path + REWRITE_SUFFIX
        with open(rewrite, "wb") as f:
            f.write(header)
            f.write(records)
            f.flush()
            os.fsync(f.fileno())
        self._FileJournal__journalFile._destroy()
        try:
            os.replace(rewrite, self._path)
            _fsync_directory(os.path.dirname(os.path.abspath(self._path)))
        finally:
            # reopened whatever happened: the journal file is always whole, old or new
            self._FileJournal__journalFile = ResizableFile(self._path)
        self._FileJournal__journal = kept
        self._FileJournal__currentOffset = end


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def create_journal(journal_file: str | None = None) -> Any:
    """pysyncobj's ``createJournal``, with the durable file journal."""
    if journal_file is None:
        return MemoryJournal()
    return DurableFileJournal(journal_file)


def keep_journal_past_dump(journal: Any, dump: Any) -> int:
    """Drop the journal entries a loaded dump covers, so pysyncobj keeps the rest.

    ``dump[2]`` and ``dump[1]`` are the last two entries the dump applied.
    pysyncobj keeps the journal only when it starts with exactly those two;
    a journal that starts earlier and holds them is cut to start there.
    Returns how many entries were dropped.
    """
    if len(journal) < 2:
        return 0
    first, last = dump[2], dump[1]
    offset = first[1] - journal[0][1]
    if offset <= 0 or offset + 1 >= len(journal):
        return 0
    if tuple(journal[offset]) != tuple(first) or tuple(journal[offset + 1]) != tuple(last):
        return 0
    journal.deleteEntriesTo(offset)
    logger.warning(
        "the journal still held %d entries the Raft dump covers (a stop before the journal was cut); "
        "keeping the %d entries after the dump", offset, len(journal) - 2,
    )
    return offset
