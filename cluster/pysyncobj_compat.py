"""What this package needs from pysyncobj's internals, checked once at import.

The store corrects and extends pysyncobj in a few places (docs/store.md
lists why: journal compaction, follower log truncation, stale snapshots,
election start-up, syncing before sending, peer TLS, a full disk), and those
places read or override pysyncobj's private names: name-mangled attributes
(``_SyncObj__raftLog``), protected methods, and module globals it swaps.
An upgrade that renames one would not fail loudly: an override would simply
never be called, or an attribute read would fail deep in the tick thread.

So :func:`check_pysyncobj` runs when :mod:`cluster.membership` is imported:
the installed version must be the pinned one, and every name below must
exist, either on the class (methods, class attributes) or in its code (an
instance attribute the class assigns). A mismatch stops the start with one
message naming the version and every missing name.
"""

from __future__ import annotations

import types
from typing import Any, Iterable, Mapping

import pysyncobj.journal
import pysyncobj.serializer
import pysyncobj.syncobj
import pysyncobj.tcp_connection
import pysyncobj.transport
import pysyncobj.version

__all__ = ["PINNED_VERSION", "REQUIRED", "PysyncobjMismatch", "check_pysyncobj", "missing_names"]

#: The version every correction was written and tested against (constraints.txt pins it too).
PINNED_VERSION = "0.3.17"

#: Class -> the private or protected names of it that cluster/ reads, writes or overrides.
REQUIRED: Mapping[type, tuple[str, ...]] = {
    pysyncobj.syncobj.SyncObj: (
        "_SyncObj__raftLog", "_SyncObj__serializer", "_SyncObj__loadDumpFile", "_SyncObj__transport",
        "_SyncObj__sendNextNodeIdx", "_SyncObj__raftNextIndex", "_SyncObj__raftElectionDeadline",
        "_SyncObj__pipeNotifier", "_SyncObj__mainThread", "_SyncObj__getCurrentLogIndex",
        "_SyncObj__connectedNodes", "_isLeader", "_getLeader", "_getRaftLogSize", "addOnTickCallback",
        "forceLogCompaction", "raftCommitIndex", "raftCurrentTerm", "raftLastApplied",
    ),
    pysyncobj.journal.FileJournal: (
        "_FileJournal__journalFile", "_FileJournal__currentOffset", "_FileJournal__journal",
        "_FileJournal__metaStorer", "_FileJournal__getDefaultHeader", "add", "clear", "deleteEntriesFrom",
        "deleteEntriesTo", "flush", "setCurrentTerm", "onOneSecondTimer",
    ),
    pysyncobj.journal.ResizableFile: ("_ResizableFile__mm", "_ResizableFile__f"),
    pysyncobj.journal.MetaStorer: ("storeMeta", "getMeta"),
    pysyncobj.serializer.Serializer: (
        "_Serializer__fileName", "_Serializer__pid", "_Serializer__currentID", "serialize", "deserialize",
    ),
    pysyncobj.tcp_connection.TcpConnection: ("_TcpConnection__socket",),
    pysyncobj.transport.TCPTransport: (
        "_connections", "_unknownConnections", "_syncObj", "_selfNode", "_onMessageReceived",
        "_onIncomingMessageReceived", "_connectIfNecessarySingle", "_onNewIncomingConnection",
        "_sendSelfAddress", "send",
    ),
}

#: Module globals that cluster/ replaces.
REQUIRED_GLOBALS: Mapping[types.ModuleType, tuple[str, ...]] = {
    pysyncobj.tcp_connection: ("zlib",),
    pysyncobj.syncobj: ("createJournal",),
    pysyncobj.serializer: ("gzip", "os"),
}


class PysyncobjMismatch(ImportError):
    """The installed pysyncobj is not the one cluster/ was written for."""


def _names_in_code(cls: type) -> set[str]:
    """Attribute names the class's own functions use (instance attributes it assigns are among them)."""
    names: set[str] = set()
    for klass in cls.__mro__:
        for value in vars(klass).values():
            func = getattr(value, "__func__", value)
            code = getattr(func, "__code__", None)
            if code is not None:
                names.update(code.co_names)
    return names


def missing_names(required: Mapping[Any, Iterable[str]],
                  globals_required: Mapping[types.ModuleType, Iterable[str]] = {}) -> list[str]:
    """Every required name that is neither on its class nor used by its code, nor a module global."""
    missing = []
    for cls, names in required.items():
        known = _names_in_code(cls)
        missing += [f"{cls.__module__}.{cls.__name__}.{n}" for n in names if not hasattr(cls, n) and n not in known]
    for module, names in globals_required.items():
        missing += [f"{module.__name__}.{n}" for n in names if not hasattr(module, n)]
    return missing


def check_pysyncobj() -> None:
    """Raise :class:`PysyncobjMismatch` unless the pinned pysyncobj, with every name we use, is installed."""
    version = getattr(pysyncobj.version, "VERSION", "unknown")
    missing = missing_names(REQUIRED, REQUIRED_GLOBALS)
    if version != PINNED_VERSION or missing:
        raise PysyncobjMismatch(
            f"pysyncobj {version} is installed, but this backend's store is written for pysyncobj "
            f"{PINNED_VERSION} (install it with: pip install -c constraints.txt .)"
            + (f"; missing: {', '.join(missing)}" if missing else ""))
