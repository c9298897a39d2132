"""What cluster/raft needs from pysyncobj's internals, checked once at import.

The store corrects and extends pysyncobj in a few places (docs/store.md
lists why: journal compaction, follower log truncation, stale snapshots,
election start-up, syncing before sending, peer TLS, a full disk), and those
places read or override pysyncobj's private names: name-mangled attributes
(``_SyncObj__raftLog``), protected methods, module globals it swaps or
imports, and the ``SyncObjConf`` options it sets (pysyncobj ignores an
option it does not know). An upgrade that renames one would not fail loudly:
an override would simply never be called, an option would silently keep its
default, or an attribute read would fail deep in the tick thread.

So :func:`check_pysyncobj` runs first when :mod:`cluster.raft` is imported,
before any module of it imports a pysyncobj name: the installed version must
be the pinned one, and every name below must exist, either on the class
(methods, class attributes) or in its code (an instance attribute the class
assigns), or in the module, or among ``SyncObjConf``'s options. A mismatch
stops the start with one message naming the version and every missing name.
Only cluster/raft/ imports pysyncobj (tests/unit/test_raft_seam.py checks
that), so this list is the whole of what the backend relies on.
"""

from __future__ import annotations

import importlib
import types
from typing import Any, Iterable, Mapping

import pysyncobj.version

__all__ = [
    "PINNED_VERSION",
    "REQUIRED",
    "REQUIRED_GLOBALS",
    "REQUIRED_CONF_OPTIONS",
    "PysyncobjMismatch",
    "check_pysyncobj",
    "missing_names",
]

#: The version every correction was written and tested against (constraints.txt pins it too).
PINNED_VERSION = "0.3.17"

#: Class -> the names of it that cluster/raft reads, writes, calls or overrides (private and protected
#: ones above all; the public ones it relies on too).
REQUIRED: Mapping[type | str, tuple[str, ...]] = {
    "pysyncobj.syncobj.SyncObj": (
        "_SyncObj__raftLog", "_SyncObj__serializer", "_SyncObj__loadDumpFile", "_SyncObj__transport",
        "_SyncObj__sendNextNodeIdx", "_SyncObj__raftNextIndex", "_SyncObj__raftElectionDeadline",
        "_SyncObj__pipeNotifier", "_SyncObj__mainThread", "_SyncObj__getCurrentLogIndex",
        "_SyncObj__connectedNodes", "_isLeader", "_getLeader", "_getRaftLogSize", "addOnTickCallback",
        "forceLogCompaction", "raftCommitIndex", "raftCurrentTerm", "raftLastApplied",
        "otherNodes", "isNodeConnected", "hasQuorum", "addNodeToCluster", "removeNodeFromCluster", "destroy",
    ),
    "pysyncobj.syncobj.SyncObjConsumer": ("_serialize", "_deserialize"),
    "pysyncobj.syncobj._RAFT_STATE": ("FOLLOWER", "CANDIDATE", "LEADER"),
    "pysyncobj.config.FAIL_REASON": (
        "SUCCESS", "QUEUE_FULL", "MISSING_LEADER", "DISCARDED", "NOT_LEADER", "LEADER_CHANGED",
        "REQUEST_DENIED", "UNKNOWN_OUTCOME",
    ),
    "pysyncobj.journal.FileJournal": (
        "_FileJournal__journalFile", "_FileJournal__currentOffset", "_FileJournal__journal",
        "_FileJournal__metaStorer", "_FileJournal__getDefaultHeader", "add", "clear", "deleteEntriesFrom",
        "deleteEntriesTo", "flush", "setCurrentTerm", "onOneSecondTimer",
    ),
    "pysyncobj.journal.ResizableFile": ("_ResizableFile__mm", "_ResizableFile__f"),
    "pysyncobj.journal.MetaStorer": ("storeMeta", "getMeta"),
    "pysyncobj.serializer.Serializer": (
        "_Serializer__fileName", "_Serializer__pid", "_Serializer__currentID", "serialize", "deserialize",
    ),
    "pysyncobj.tcp_connection.TcpConnection": ("_TcpConnection__socket", "send", "disconnect"),
    "pysyncobj.transport.TCPTransport": (
        "_connections", "_unknownConnections", "_syncObj", "_selfNode", "_onMessageReceived",
        "_onIncomingMessageReceived", "_connectIfNecessarySingle", "_onNewIncomingConnection",
        "_sendSelfAddress", "send", "ready",
    ),
}

#: Module globals that cluster/raft replaces or imports.
REQUIRED_GLOBALS: Mapping[types.ModuleType | str, tuple[str, ...]] = {
    "pysyncobj.tcp_connection": ("zlib",),
    "pysyncobj.syncobj": ("createJournal", "SyncObj", "SyncObjConf", "SyncObjConsumer", "replicated", "_RAFT_STATE"),
    "pysyncobj.serializer": ("gzip", "os", "Serializer"),
    "pysyncobj.journal": (
        "FIRST_RECORD_OFFSET", "LAST_RECORD_OFFSET_OFFSET", "FileJournal", "MemoryJournal", "MetaStorer",
        "ResizableFile",
    ),
    "pysyncobj.pickle": ("dumps",),
    "pysyncobj.transport": ("TCPTransport",),
    "pysyncobj.config": ("FAIL_REASON", "SyncObjConf"),
}

#: The ``SyncObjConf`` options cluster/raft/node.py sets (``SyncObjConf`` takes any keyword and
#: ignores the ones it does not know, so a renamed option would silently keep its default).
REQUIRED_CONF_OPTIONS: tuple[str, ...] = (
    "autoTick", "appendEntriesUseBatch", "appendEntriesBatchSizeBytes", "sendBufferSize", "recvBufferSize",
    "appendEntriesPeriod", "raftMinTimeout", "raftMaxTimeout", "connectionTimeout", "connectionRetryTime",
    "leaderFallbackTimeout", "commandsWaitLeader", "commandsQueueSize", "journalFile", "fullDumpFile",
    "logCompactionMinEntries", "logCompactionMinTime", "dynamicMembershipChange", "bindAddress",
    "maxBindRetries", "onStateChanged",
)


class PysyncobjMismatch(ImportError):
    """The installed pysyncobj is not the one cluster/raft was written for."""


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


def _module(name: str) -> types.ModuleType | None:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


def _resolve(key: type | str) -> tuple[str, Any]:
    """(dotted name, class) for a class or a ``"module.Class"`` name; the class is None when it is gone."""
    if not isinstance(key, str):
        return f"{key.__module__}.{key.__name__}", key
    module_name, _, attribute = key.rpartition(".")
    module = _module(module_name)
    return key, getattr(module, attribute, None) if module is not None else None


def missing_names(required: Mapping[Any, Iterable[str]],
                  globals_required: Mapping[Any, Iterable[str]] = {},
                  conf_options: Iterable[str] = ()) -> list[str]:
    """Every required name that is neither on its class nor used by its code, nor a module global, nor an option.

    A class or module that is gone altogether is named once, by itself.
    """
    missing = []
    for key, names in required.items():
        dotted, cls = _resolve(key)
        if cls is None:
            missing.append(dotted)
            continue
        known = _names_in_code(cls)
        missing += [f"{dotted}.{n}" for n in names if not hasattr(cls, n) and n not in known]
    for key, names in globals_required.items():
        module = _module(key) if isinstance(key, str) else key
        if module is None:
            missing.append(str(key))
            continue
        missing += [f"{module.__name__}.{n}" for n in names if not hasattr(module, n)]
    conf_options = list(conf_options)
    if conf_options:
        _, conf_class = _resolve("pysyncobj.config.SyncObjConf")
        defaults = vars(conf_class()) if conf_class is not None else {}
        missing += [f"pysyncobj.config.SyncObjConf option {n}" for n in conf_options if n not in defaults]
    return missing


def check_pysyncobj() -> None:
    """Raise :class:`PysyncobjMismatch` unless the pinned pysyncobj, with every name we use, is installed."""
    version = getattr(pysyncobj.version, "VERSION", "unknown")
    missing = missing_names(REQUIRED, REQUIRED_GLOBALS, REQUIRED_CONF_OPTIONS)
    if version != PINNED_VERSION or missing:
        raise PysyncobjMismatch(
            f"pysyncobj {version} is installed, but this backend's store is written for pysyncobj "
            f"{PINNED_VERSION} (install it with: pip install -c constraints.txt .)"
            + (f"; missing: {', '.join(missing)}" if missing else ""))
