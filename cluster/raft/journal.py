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

Compaction must also be cheap, because it now runs every
``compaction_max_bytes`` of applied batches: :func:`write_dumps_in_a_thread`
pickles the state on the tick thread and writes it from a thread instead of
a forked child (whose copy-on-write faults stalled the node), dumps are
compressed at gzip level 1 (:class:`FastDumpGzip` for pysyncobj's own
writer), and the replaced journal is closed without first writing its whole
mapping out.
"""

from __future__ import annotations

import gzip
import itertools
import logging
import os
import pickle
import struct
import threading
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from pysyncobj.journal import (
    FIRST_RECORD_OFFSET,
    LAST_RECORD_OFFSET_OFFSET,
    FileJournal,
    MemoryJournal,
    MetaStorer,
    ResizableFile,
)
from pysyncobj.pickle import dumps as pickle_dumps

if TYPE_CHECKING:  # for annotations only (Entry and Dump are names of the stubs in cluster/raft/stubs)
    from pysyncobj.journal import Entry, Journal
    from pysyncobj.serializer import Dump, Serializer

__all__ = [
    "DurableFileJournal",
    "FastDumpGzip",
    "LowPriorityDumpWriter",
    "REWRITE_SUFFIX",
    "THREAD_DUMP_MAX_BYTES",
    "DurableMetaStorer",
    "create_journal",
    "journals_created_durable",
    "keep_journal_past_dump",
    "write_dumps_in_a_thread",
]

#: The name this logger had before the move into cluster/raft/: log lines keep their component ("journal").
logger = logging.getLogger("cluster.journal")

#: The new journal is written here, then renamed over the journal.
REWRITE_SUFFIX = ".rewrite"


def _record(command: bytes, index: int, term: int) -> bytes:
    """One journal record, in FileJournal's layout: size, index, term, command, size."""
    body = struct.pack("<QQ", index, term) + command
    size = struct.pack("<I", len(body))
    return size + body + size


class DurableMetaStorer(MetaStorer):
    """pysyncobj's ``MetaStorer`` that makes term and vote durable before they are used.

    Raft's election safety needs ``currentTerm`` and ``votedFor`` on disk before
    a vote is granted or a message carrying a new term is sent: a member that
    forgets its vote after a power cut can vote twice in one term. pysyncobj
    stores them synchronously (``FileJournal.setCurrentTerm``) but writes the
    file with ``flush()`` and a rename only; here the new file is fsynced
    before the rename and the directory after it. The once-a-second store of
    the commit index goes through here too, which keeps a rename from ever
    replacing a synced meta file with an unsynced one.
    """

    def __init__(self, path: str, *, durable: bool) -> None:
        super().__init__(path)
        self.durable = durable
        self._path = path

    def storeMeta(self, meta: dict[str, Any]) -> None:  # noqa: N802  (pysyncobj's name)
        tmp = self._path + ".tmp"
        _write_new_file(tmp, (pickle_dumps(meta),), fsync=self.durable)
        _replace_file(tmp, self._path, fsync=self.durable)


class DurableFileJournal(FileJournal):
    """pysyncobj's file journal, synced before anything that depends on it leaves the node.

    * With ``durable`` (the default; ``etcd-unsafe-no-fsync`` turns it off), the
      entries written since the last sync are flushed (``msync``) by
      :meth:`sync`, which the peer transport calls before every message it
      sends and the state machine after every applied batch. So a follower's
      entries are on disk before it acknowledges them, the leader's before it
      sends them (and so before they can count toward a commit), and a lone
      node's before its writers hear success. One ``msync`` covers a whole
      group-commit batch, or every entry of one append message.
    * Term and vote are fsynced before they are used (:class:`DurableMetaStorer`).
    * Truncation after a compaction is one atomic rename (:meth:`deleteEntriesTo`).
    """

    #: Disk blocks reserved past the journal's end, so that a full disk is noticed while there is still
    #: room: the entries being written fit, new writes are refused (:attr:`disk_full`), nothing crashes.
    reserve_bytes = 8 << 20

    def __init__(self, journal_file: str, *, durable: bool = False) -> None:
        self._path = journal_file
        self.durable = durable
        self._unsynced = False
        self.syncs = 0  # msyncs done by sync(), for statistics
        #: the reserve could not be renewed: the disk is (nearly) full; read by the store on the trio thread
        self.disk_full = False
        self._meta_failure_logged = False
        leftover = journal_file + REWRITE_SUFFIX
        if os.path.exists(leftover):
            # a rewrite that did not reach its rename: the journal itself is whole
            logger.warning("removing an unfinished journal rewrite %s", leftover)
            os.unlink(leftover)
        created = not os.path.exists(journal_file)
        super().__init__(journal_file)
        self._FileJournal__metaStorer = DurableMetaStorer(journal_file + ".meta", durable=durable)
        if created and durable:
            self._FileJournal__journalFile.flush()
            _fsync_directory(os.path.dirname(os.path.abspath(journal_file)))
        self._allocated = self._FileJournal__currentOffset  # what was written is on disk; the rest may be a hole
        self.renew_reserve()

    # -- disk space ---------------------------------------------------------------------

    def _allocate(self, end: int) -> None:
        """Give the journal file real blocks up to ``end``, and map that much.

        The journal is a memory map: a store into a page the file system has
        no block for, on a full disk, kills the process with SIGBUS. Blocks
        allocated first (``posix_fallocate``) cannot fail later; ``OSError``
        (ENOSPC) is raised here instead, before anything is written.
        """
        if end <= self._allocated:
            return
        jf = self._FileJournal__journalFile
        os.posix_fallocate(jf._ResizableFile__f.fileno(), self._allocated, end - self._allocated)
        mapping = jf._ResizableFile__mm
        if len(mapping) < end:  # (mmap.size() is the file's size, already grown; len() is the mapping's)
            mapping.resize(end)  # the file has that size now: pysyncobj sees room and never shrinks it
        self._allocated = end

    def renew_reserve(self) -> bool:
        """Tick thread: keep :attr:`reserve_bytes` allocated past the end; False (and ``disk_full``) if the disk is full."""
        try:
            self._allocate(self._FileJournal__currentOffset + self.reserve_bytes)
        except OSError as exc:
            if not self.disk_full:
                logger.error("the disk of the Raft journal %s is full (%s): writes are refused until space is "
                             "freed", self._path, exc.strerror or exc)
            self.disk_full = True
            return False
        if self.disk_full:
            logger.warning("the disk of the Raft journal %s has room again: writes are accepted", self._path)
        self.disk_full = False
        return True

    def onOneSecondTimer(self) -> None:  # noqa: N802  (pysyncobj's name)
        """The commit index is stored once a second; on a full disk that fails, and is retried, quietly."""
        try:
            super().onOneSecondTimer()
        except OSError as exc:
            if not self._meta_failure_logged:
                logger.error("cannot store the Raft commit index next to %s: %s", self._path, exc)
                self._meta_failure_logged = True
            return
        self._meta_failure_logged = False

    def add(self, command: bytes, idx: int, term: int) -> None:
        # the record: size, index and term, the command, size again (FileJournal's layout)
        end = self._FileJournal__currentOffset + len(command) + 24
        if end + self.reserve_bytes // 2 > self._allocated:
            # renewed while half of it is left: on a full disk the store refuses writes from then
            # on, and what is already in flight, and the reads' no-op barriers, still have room
            self.renew_reserve()
            self._allocate(end)  # the reserve is gone too: ENOSPC here, before anything is stored
        super().add(command, idx, term)
        self._unsynced = True

    def clear(self) -> None:
        super().clear()
        self._unsynced = True

    def deleteEntriesFrom(self, entryFrom: int) -> None:  # noqa: N802,N803  (pysyncobj's names)
        super().deleteEntriesFrom(entryFrom)
        self._unsynced = True

    def sync(self) -> bool:
        """Tick thread: flush what was written since the last sync; True when something was flushed.

        A no-op without ``durable`` or when nothing changed, so callers may
        call it before every message.
        """
        if not (self.durable and self._unsynced):
            return False
        self._unsynced = False
        self._FileJournal__journalFile.flush()
        self.syncs += 1
        return True

    def deleteEntriesTo(self, entryTo: int) -> None:  # noqa: N802  (pysyncobj's name)
        self.sync()  # the rewrite below must not overtake entries still in the old mapping only
        entries: list[Entry] = self._FileJournal__journal
        kept = entries[entryTo:]
        records = b"".join(_record(bytes(command), index, term) for command, index, term in kept)
        end = FIRST_RECORD_OFFSET + len(records)
        header = self._FileJournal__getDefaultHeader()[:LAST_RECORD_OFFSET_OFFSET] + struct.pack("<I", end)
        rewrite = self._path + REWRITE_SUFFIX
        _write_new_file(rewrite, (header, records), fsync=self.durable)
        _close_unflushed(self._FileJournal__journalFile)
        try:
            _replace_file(rewrite, self._path, fsync=self.durable)
        finally:
            # reopened whatever happened: the journal file is always whole, old or new
            self._FileJournal__journalFile = ResizableFile(self._path)
        self._FileJournal__journal = kept
        self._FileJournal__currentOffset = end
        self._allocated = end
        self.renew_reserve()


def _close_unflushed(file: ResizableFile) -> None:
    """Close a journal file that is about to be replaced, without ``msync``.

    ``ResizableFile._destroy`` flushes the whole mapping first: over a
    hundred megabytes written out, for a file the rename then drops.
    """
    file._ResizableFile__mm.close()
    file._ResizableFile__f.close()


def _write_new_file(path: str, chunks: tuple[bytes, ...], *, fsync: bool) -> None:
    """Write a file that is about to replace another (see :func:`_replace_file`); fsynced with ``fsync``."""
    with open(path, "wb") as f:
        for chunk in chunks:
            f.write(chunk)
        f.flush()
        if fsync:
            os.fsync(f.fileno())


def _replace_file(new: str, path: str, *, fsync: bool) -> None:
    """Rename ``new`` over ``path`` in one step; with ``fsync``, the rename itself is made durable too."""
    os.replace(new, path)
    if fsync:
        _fsync_directory(os.path.dirname(os.path.abspath(path)))


def _fsync_directory(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class FastDumpGzip:
    """The ``gzip`` pysyncobj writes full dumps with, compressing at level 1 instead of 9.

    Why: at level 9 a 3 MB state took ~0.33 s of CPU, and on a loaded
    machine three nodes' dumps stalled events for seconds. Level 1 takes a
    tenth of that for a dump ~20 % larger. Reading is unchanged (any level
    reads the same way).
    """

    @staticmethod
    def GzipFile(filename: Any = None, mode: str | None = None, compresslevel: int = 1,  # noqa: N802
                 fileobj: Any = None, mtime: float | None = None) -> gzip.GzipFile:
        return gzip.GzipFile(filename, mode, compresslevel, fileobj, mtime)


class LowPriorityDumpWriter:
    """The ``os`` pysyncobj's dump writer uses.

    Dumps are written by :func:`write_dumps_in_a_thread`; pysyncobj asks this
    ``waitpid`` about them with the stand-in process ids that function gives
    them. pysyncobj's own forked writer is left only for a compaction that
    starts before that is installed; its child runs at nice 19, so its burst
    of CPU does not compete with the node.
    """

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def fork() -> int:
        pid = os.fork()
        if pid == 0:
            try:
                os.nice(19)
            except OSError:
                pass
        return pid

    @staticmethod
    def waitpid(pid: int, options: int) -> tuple[int, int]:
        job = _dump_jobs.get(pid)
        if job is None:
            return os.waitpid(pid, options)
        if not job.done:
            return 0, 0
        del _dump_jobs[pid]
        return pid, 0 if job.ok else 1 << 8  # an exit status of 1, as a failed child's


class _DumpJob:
    """One dump: compressed and written by a thread from bytes pickled on the tick thread."""

    def __init__(self, file_name: str, payload: bytes, fsync: bool) -> None:
        self.file_name = file_name
        self.payload: bytes | None = payload
        self.fsync = fsync
        self.done = False
        self.ok = False

    def run(self) -> None:
        # zlib, crc32 and the file calls release the GIL: the node keeps running meanwhile
        tmp = self.file_name + ".tmp"  # the name pysyncobj's writer uses too
        try:
            assert self.payload is not None
            _write_new_file(tmp, (gzip.compress(self.payload, compresslevel=1),), fsync=self.fsync)
            _replace_file(tmp, self.file_name, fsync=self.fsync)
            self.ok = True
        except Exception:
            logger.exception("writing the Raft dump %s failed", self.file_name)
        finally:
            self.payload = None
            self.done = True  # last: the tick thread reads it without a lock


#: Above this size of the last dump (compressed; the state is ~3x that), dumps go back to pysyncobj's
#: forked writer: pickling on the tick thread pauses Raft ~1 ms per MB of state, and a pause near the
#: election timeout (0.4 s by default) would start an election.
THREAD_DUMP_MAX_BYTES = 16 << 20

#: Dumps being written, by the stand-in process id pysyncobj holds for each (negative: never a real one).
_dump_jobs: dict[int, _DumpJob] = {}
_dump_ids = itertools.count(-1000, -1)


def write_dumps_in_a_thread(serializer: Serializer, *, fsync: bool = False) -> None:
    """Make this pysyncobj ``Serializer`` write full dumps without forking.

    Why: pysyncobj pickles the state in a forked child. Every page the node
    writes while that child lives is then copied, and CPython writes
    reference counts on nearly every page it touches: at 2,000 events/s each
    compaction cost the node 0.5-1 s of page faults, with the GIL held,
    which showed as 300-700 ms latency spikes (docs/performance.md). Here the
    tick thread pickles the state itself (it is the only thread that changes
    it, so the snapshot is consistent) with the newest pickle protocol:
    ~1 ms per MB, where pysyncobj's protocol 2 turns every ``bytes`` value
    into a latin-1 string. A thread compresses and writes it; pysyncobj
    polls it like the child (``checkSerializing`` → our ``waitpid``) and cuts
    the journal only once the new dump is in place. Readers load it as
    before (gzip, then any pickle protocol). With ``fsync`` the dump and its
    directory are synced before the journal may be cut. A state whose last
    dump was over :data:`THREAD_DUMP_MAX_BYTES` still goes to the forked
    writer (at nice 19), so that pickling never pauses Raft for long.
    """
    file_name = serializer._Serializer__fileName
    if file_name is None:  # in-memory dumps: nothing to fork for
        return
    forked = serializer.serialize  # pysyncobj's own, for states too big to pickle on the tick thread

    def serialize(data: Dump, last_id: int) -> None:
        if serializer._Serializer__pid != 0:  # a dump is still being written
            return
        try:
            last_size = os.path.getsize(file_name)
        except OSError:
            last_size = 0
        if last_size > THREAD_DUMP_MAX_BYTES:
            forked(data, last_id)
            return
        serializer._Serializer__currentID = last_id
        try:
            payload = pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            logger.exception("pickling the Raft state for a dump failed")
            job = _DumpJob(file_name, b"", fsync)
            job.done = True  # reported as failed; the next compaction tries again
        else:
            job = _DumpJob(file_name, payload, fsync)
            threading.Thread(target=job.run, name="raft-dump-writer", daemon=True).start()
        pid = next(_dump_ids)
        _dump_jobs[pid] = job
        serializer._Serializer__pid = pid

    serializer.serialize = serialize


#: Whether journals created on this thread now are durable: pysyncobj calls ``createJournal`` with
#: the file name only, from inside ``SyncObj.__init__``, which the node runs on its own thread.
_journal_options = threading.local()


@contextmanager
def journals_created_durable(durable: bool) -> Iterator[None]:
    """Journals that :func:`create_journal` makes on this thread inside the block sync with ``durable``."""
    _journal_options.durable = durable
    try:
        yield
    finally:
        del _journal_options.durable


def create_journal(journal_file: str | None = None) -> Journal:
    """pysyncobj's ``createJournal``, with the durable file journal."""
    if journal_file is None:
        return MemoryJournal()
    return DurableFileJournal(journal_file, durable=getattr(_journal_options, "durable", False))


def keep_journal_past_dump(journal: Journal, dump: Dump) -> int:
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

