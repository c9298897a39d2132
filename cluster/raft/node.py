"""The Raft member: pysyncobj's ``SyncObj`` built from :class:`~cluster.membership.RaftSettings`.

:class:`RaftNode` is what the rest of the store holds instead of the
``SyncObj``: it proposes batches (:meth:`RaftNode.propose_batch`), answers
:meth:`~RaftNode.is_leader`, :meth:`~RaftNode.leader` and
:meth:`~RaftNode.members`, reports :meth:`~RaftNode.status`, changes
membership, and says when the journal's disk is full.

Raft timing (see docs/store.md): heartbeats every ``heartbeat_s``; elections
after a random timeout in ``[election_s, 2 * election_s]``; idle peer links are
kept open (pysyncobj's default 3.5 s idle timeout drops follower-to-follower
links, which loses the first vote after a leader dies); the log is compacted
every ``compaction_max_bytes`` of applied batches, with pysyncobj's compaction
made safe and cheap in cluster/raft/journal.py. Peer links get large socket
buffers and whole-entry reassembly (see :class:`~cluster.membership.RaftSettings`
and cluster/raft/transport.py), TLS with the ``etcd-peer-*`` flags
(cluster/raft/peer_tls.py), and nothing leaves a node before the journal
entries it depends on are synced.

Importing this module installs the module-level replacements in pysyncobj
(stored zlib frames, the durable journal, the dump writer); cluster/raft's
``__init__`` has checked the installed pysyncobj before.
"""

from __future__ import annotations

import functools
import logging
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pysyncobj.serializer
import pysyncobj.syncobj
import pysyncobj.tcp_connection
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.syncobj import _RAFT_STATE

from ..membership import PeerAddressInUseError, PeerTLSError, RaftSettings, first_compaction_at, peer_address
from ..statemachine import KVState
from .consumer import ReplicatedKV
from .journal import (
    DurableFileJournal,
    FastDumpGzip,
    LowPriorityDumpWriter,
    create_journal,
    journals_created_durable,
    keep_journal_past_dump,
    write_dumps_in_a_thread,
)
from .peer_tls import peer_tls_contexts
from .transport import StoredFrames, TokenTCPTransport

__all__ = ["RaftNode", "RaftStatus", "ProposalCallback", "conf_options"]

#: The name this logger had before the move into cluster/raft/: log lines keep their component ("membership").
logger = logging.getLogger("cluster.membership")

#: ``callback(result, reason)``, called on the tick thread once a proposal is applied or has failed.
ProposalCallback = Callable[[Any, int], None]

pysyncobj.tcp_connection.zlib = StoredFrames
pysyncobj.syncobj.createJournal = create_journal  # see cluster/raft/journal.py
pysyncobj.serializer.gzip = FastDumpGzip
pysyncobj.serializer.os = LowPriorityDumpWriter()


class _SyncObj(SyncObj):
    """``SyncObj`` whose dump load keeps the journal entries written after the dump.

    pysyncobj clears a journal that does not start exactly at the dump; one
    that starts earlier is what a stop between a compaction's dump and its
    journal cut leaves (see cluster/raft/journal.py).
    """

    def _SyncObj__loadDumpFile(self, clearJournal: bool) -> None:  # noqa: N802,N803  (pysyncobj's names)
        serializer = self._SyncObj__serializer
        if not clearJournal:
            try:
                dump = serializer.deserialize()
            except Exception:  # pysyncobj's load logs the failure itself
                dump = None
            if dump is not None:
                keep_journal_past_dump(self._SyncObj__raftLog, dump)
                serializer.deserialize = lambda: dump  # read the file once, not twice
        try:
            SyncObj._SyncObj__loadDumpFile(self, clearJournal)
        finally:
            serializer.__dict__.pop("deserialize", None)


@dataclass
class RaftStatus:
    """A point-in-time view of this node's Raft state (copied, never shared)."""

    leader: str | None
    is_leader: bool
    has_quorum: bool
    term: int
    commit_index: int
    last_applied: int
    connected: dict[str, bool] = field(default_factory=dict)
    members: list[str] = field(default_factory=list)
    log_len: int = 0


#: pysyncobj's Raft roles, named for the log.
_ROLE_NAMES: dict[int, str] = {
    _RAFT_STATE.FOLLOWER: "follower",
    _RAFT_STATE.CANDIDATE: "candidate",
    _RAFT_STATE.LEADER: "leader",
}
_LEADER: int = _RAFT_STATE.LEADER


class RaftNode:
    """This process's Raft member; owns the ``SyncObj``. Built off the event loop (it reads the journal).

    The ``SyncObj`` stays private to this package: the store proposes
    through :meth:`propose_batch` and everything else asks
    :meth:`is_leader`, :meth:`leader`, :meth:`members` or :meth:`status`.
    """

    def __init__(self, settings: RaftSettings, state: KVState,
                 on_state_changed: Callable[[int, int], None] | None = None) -> None:
        self.settings = settings
        self.state = state
        os.makedirs(settings.state_dir, exist_ok=True)
        _check_bindable(settings.listen_url)
        conf = SyncObjConf(**conf_options(settings, functools.partial(self._state_changed, on_state_changed)))
        self_address = peer_address(settings.advertise_url)
        others = [m.address for m in settings.peers]
        contexts = None
        if settings.tls is not None:
            try:
                contexts = peer_tls_contexts(settings.tls)
            except (OSError, ssl.SSLError) as exc:
                raise PeerTLSError(f"cannot use {settings.tls.cert_file} / {settings.tls.key_file} / "
                                   f"{settings.tls.trusted_ca_file or 'system CAs'}: {exc}") from exc
        transport = functools.partial(TokenTCPTransport, token=settings.token, tls=contexts)
        self._consumer = ReplicatedKV(state)
        with journals_created_durable(settings.fsync):
            self._syncobj = _SyncObj(self_address, others, conf=conf, consumers=[self._consumer],
                                     transportClass=transport)
        # pysyncobj stops ticking when the constructing thread exits; we are
        # built on a worker thread, so tie the tick thread to the main thread.
        self._syncobj._SyncObj__mainThread = threading.main_thread()
        if not self._syncobj._SyncObj__transport.ready:
            self._syncobj.destroy()
            raise PeerAddressInUseError(f"cannot listen on {settings.listen_url} for Raft peers")
        write_dumps_in_a_thread(self._syncobj._SyncObj__serializer, fsync=settings.fsync)
        journal = self._syncobj._SyncObj__raftLog
        if settings.fsync and isinstance(journal, DurableFileJournal):
            # a lone node sends nothing: its writers hear success only after this sync
            state.set_flush(journal.sync)
        self._journal = journal if isinstance(journal, DurableFileJournal) else None
        self._reserve_retry_at = 0.0
        self._syncobj.addOnTickCallback(self._retry_journal_reserve)
        self._syncobj.addOnTickCallback(self._kick_single_node)
        self._elect_a_lone_member_now()
        self._compact_at = first_compaction_at(settings)
        self._syncobj.addOnTickCallback(self._compact_by_bytes)

    def _state_changed(self, then: Callable[[int, int], None] | None, old: int, new: int) -> None:
        """Tick thread: log Raft role changes (a leader change pauses writes), then pass them on."""
        syncobj = getattr(self, "_syncobj", None)  # the tick thread may call before __init__ returns
        term = syncobj.raftCurrentTerm if syncobj is not None else None
        log = logger.warning if _LEADER in (old, new) else logger.info
        log("raft: %s -> %s", _ROLE_NAMES.get(old, old), _ROLE_NAMES.get(new, new),
            extra={"node": self.settings.name, "term": term})
        if then is not None:
            then(old, new)

    @property
    def disk_full(self) -> bool:
        """The journal's disk is full: refuse writes (read from the trio thread; a plain attribute)."""
        return self._journal is not None and self._journal.disk_full

    def _retry_journal_reserve(self) -> None:
        """Tick thread: while the disk is full, try once a second whether space was freed."""
        if self._journal is None or not self._journal.disk_full:
            return
        now = time.monotonic()
        if now >= self._reserve_retry_at:
            self._reserve_retry_at = now + 1.0
            self._journal.renew_reserve()

    def _compact_by_bytes(self) -> None:
        """Tick thread: start a log compaction once ``compaction_max_bytes`` were applied since the last.

        The in-memory log and the mmap'd journal hold every entry until a
        compaction; with many events per entry, 50,000 entries was over a
        gigabyte per node at 1,200 events/s.
        """
        applied = self.state.applied_bytes
        if self.settings.compaction_max_bytes > 0 and applied >= self._compact_at:
            self._compact_at = applied + self.settings.compaction_max_bytes
            self._syncobj.forceLogCompaction()

    def _elect_a_lone_member_now(self) -> None:
        """A member with no peers is its own quorum: let it stand for election on its first tick.

        pysyncobj waits a random election timeout (0.4-0.8 s) first even
        then, which was over half of a single node's start-up. Only the wait is
        skipped, never a vote: a member whose configuration names peers
        (``otherNodes``) keeps the timeout and needs their votes as before.
        """
        if not self._syncobj.otherNodes:
            self._syncobj._SyncObj__raftElectionDeadline = 0

    def _kick_single_node(self) -> None:
        """Tick thread: a lone leader commits its own entries on the *next* tick,
        after a poll that nothing would wake for ``autoTickPeriod``; wake it."""
        so = self._syncobj
        if so.otherNodes:
            return
        if so.raftCommitIndex < so._SyncObj__getCurrentLogIndex():
            notifier = getattr(so, "_SyncObj__pipeNotifier", None)
            if notifier is not None:
                try:
                    notifier.notify()
                except BlockingIOError:
                    pass

    @property
    def self_address(self) -> str:
        """This member's ``host:port``, as :meth:`leader` and :meth:`members` name members."""
        return peer_address(self.settings.advertise_url)

    # -- what the rest of the backend asks (trio thread; plain reads of the tick thread's state) --

    def is_leader(self) -> bool:
        """Whether this member leads now (by the time the caller acts, it may not any more)."""
        return bool(self._syncobj._isLeader())

    def leader(self) -> str | None:
        """The leader's ``host:port`` as this member knows it, or None during an election."""
        leader = self._syncobj._getLeader()
        return None if leader is None else str(leader.id)

    def members(self) -> list[str]:
        """Every member's ``host:port`` in the current configuration, this one included, sorted."""
        return sorted([self.self_address, *(n.id for n in self._syncobj.otherNodes)])

    def status(self) -> RaftStatus:
        """Read a few plain attributes of the tick thread's state (atomic under the GIL)."""
        so = self._syncobj
        leader = so._getLeader()
        others = so.otherNodes
        connected = {n.id: so.isNodeConnected(n) for n in others}
        return RaftStatus(
            leader=leader.id if leader is not None else None,
            is_leader=so._isLeader(),
            has_quorum=so.hasQuorum and leader is not None,
            term=so.raftCurrentTerm,
            commit_index=so.raftCommitIndex,
            last_applied=so.raftLastApplied,
            connected=connected,
            members=sorted([self.self_address, *connected]),
            log_len=so._getRaftLogSize(),
        )

    # -- proposals (trio thread; each only enqueues, and ``callback`` runs on the tick thread) --

    def propose_batch(self, batch_id: str, payload: bytes, now: float, callback: ProposalCallback) -> None:
        """Append one group-commit batch to the log; ``callback(results, reason)`` once it is applied or failed.

        Raises ``BlockingIOError`` when pysyncobj queued it but could not
        wake its tick thread (the bridge ignores that: the next poll drains
        the queue anyway).
        """
        self._consumer.apply_batch(batch_id, payload, now, callback=callback)

    def add_member(self, address: str, callback: ProposalCallback) -> None:
        self._syncobj.addNodeToCluster(address, callback=callback)

    def remove_member(self, address: str, callback: ProposalCallback) -> None:
        self._syncobj.removeNodeFromCluster(address, callback=callback)

    def destroy(self) -> None:
        """Stop the tick thread and close the peer sockets and the journal."""
        self._syncobj.destroy()


def conf_options(settings: RaftSettings, on_state_changed: Callable[[int, int], None]) -> dict[str, Any]:
    """The ``SyncObjConf`` options of a member (each one is in compat's ``REQUIRED_CONF_OPTIONS``)."""
    return dict(
        autoTick=True,
        appendEntriesUseBatch=False,
        appendEntriesBatchSizeBytes=settings.append_entries_batch_bytes,
        sendBufferSize=settings.peer_socket_buffer_bytes,
        recvBufferSize=settings.peer_socket_buffer_bytes,
        appendEntriesPeriod=settings.heartbeat_s,
        raftMinTimeout=settings.election_s,
        raftMaxTimeout=settings.election_s * 2,
        # idle follower-to-follower links must stay up (dead peers are
        # found by TCP keepalive and by Raft timeouts, not by silence)
        connectionTimeout=10_000_000.0,
        connectionRetryTime=0.5,
        leaderFallbackTimeout=max(settings.election_s * 4, settings.heartbeat_s * 10),
        commandsWaitLeader=False,
        commandsQueueSize=100_000,
        journalFile=os.path.join(settings.state_dir, "raft.journal"),
        fullDumpFile=os.path.join(settings.state_dir, "raft.dump"),
        logCompactionMinEntries=settings.compaction_min_entries,
        logCompactionMinTime=settings.compaction_min_time_s,
        dynamicMembershipChange=True,
        bindAddress=peer_address(settings.listen_url),
        maxBindRetries=1,
        onStateChanged=on_state_changed,
    )


def _check_bindable(listen_url: str) -> None:
    """Fail fast, with the address, when the peer port is taken."""
    address = peer_address(listen_url)
    host, port = address.rsplit(":", 1)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    probe = socket.socket(family, socket.SOCK_STREAM)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((host, int(port)))
    except OSError as exc:
        raise PeerAddressInUseError(f"cannot listen on {listen_url} for Raft peers: {exc.strerror}") from exc
    finally:
        probe.close()
