"""The ``--etcd-*`` flags mapped onto pysyncobj members, and the Raft node itself.

etcd names members and talks to them through peer URLs; pysyncobj knows
members by ``host:port``. A :class:`Member` carries both. The cluster token
(``--etcd-initial-cluster-token``) is checked on every peer connection: a node
started with another token is refused, so two clusters that share addresses
can never merge their logs.

Raft timing (see docs/store.md): heartbeats every ``heartbeat_s``; elections
after a random timeout in ``[election_s, 2 * election_s]``; idle peer links are
kept open (pysyncobj's default 3.5 s idle timeout drops follower-to-follower
links, which loses the first vote after a leader dies); the log is compacted
every ``compaction_max_bytes`` of applied batches, with pysyncobj's compaction
made safe and cheap in cluster/journal.py. Peer links get large socket buffers
and whole-entry reassembly (see :class:`RaftSettings` and
:meth:`TokenTCPTransport._reassemble`), TLS with the ``etcd-peer-*`` flags
(cluster/peer_tls.py), and nothing leaves a node before the journal entries
it depends on are synced (:meth:`TokenTCPTransport.send`).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
import os
import pickle
import socket
import ssl
import threading
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import urlsplit

import msgpack
import pysyncobj.serializer
import pysyncobj.syncobj
import pysyncobj.tcp_connection
from pysyncobj import SyncObj, SyncObjConf
from pysyncobj.transport import TCPTransport

from .journal import (
    DurableFileJournal,
    FastDumpGzip,
    LowPriorityDumpWriter,
    create_journal,
    journals_created_durable,
    keep_journal_past_dump,
    write_dumps_in_a_thread,
)
from .peer_tls import PeerTLS, TLSPeerSocket, peer_tls_contexts
from .pysyncobj_compat import check_pysyncobj
from .statemachine import KVState

__all__ = [
    "MEMBERS_PREFIX",
    "member_key",
    "encode_member",
    "decode_member",
    "Member",
    "RaftSettings",
    "RaftNode",
    "member_id",
    "peer_address",
    "PeerAddressInUseError",
    "PeerTLSError",
    "first_compaction_at",
]

logger = logging.getLogger(__name__)


class PeerAddressInUseError(OSError):
    """The Raft peer port cannot be bound."""


class PeerTLSError(Exception):
    """The peer TLS files cannot be read or do not belong together."""


def peer_address(url: str) -> str:
    """``http://host:port`` → ``host:port`` as pysyncobj wants it."""
    parts = urlsplit(url)
    if not parts.hostname or not parts.port:
        raise ValueError(f"peer URL {url!r} needs a host and a port")
    return f"{parts.hostname}:{parts.port}"


def member_id(name: str, peer_url: str) -> int:
    """A stable uint64 id, like etcd's (derived from the member's identity)."""
    digest = hashlib.sha256(f"{name}\0{peer_url}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


@dataclass(frozen=True)
class Member:
    name: str
    peer_url: str

    @property
    def address(self) -> str:
        return peer_address(self.peer_url)

    @property
    def id(self) -> int:
        return member_id(self.name, self.peer_url)


@dataclass(frozen=True)
class RaftSettings:
    """Everything the Raft node needs, derived from the backend config."""

    name: str
    advertise_url: str
    listen_url: str
    members: tuple[Member, ...]
    token: str
    state_dir: str
    initial_state: str = "new"  # "new" | "existing"
    #: Sync the journal before acknowledging (etcd's default; ``etcd-unsafe-no-fsync`` turns it off).
    fsync: bool = True
    heartbeat_s: float = 0.05
    election_s: float = 0.4
    compaction_min_entries: int = 50_000
    compaction_min_time_s: float = 3600.0
    #: Also compact once this many bytes of batches were applied since the last compaction: entries
    #: carry a whole group-commit batch, so an entry count alone does not bound the log's memory.
    compaction_max_bytes: int = 64 << 20
    #: Most bytes of entries in one append message (pysyncobj: 64 KiB). An entry bigger than this
    #: goes out in chunks, each answered by the follower; group-commit batches are up to ~1 MiB.
    append_entries_batch_bytes: int = 4 << 20
    #: SO_SNDBUF / SO_RCVBUF of peer sockets (pysyncobj: 64 KiB, which also turns off the kernel's
    #: autotuning). With entries of hundreds of KB, a follower that read a few ms late had its
    #: receive queue pruned and packets dropped, and TCP's retransmission timeout (>= 200 ms,
    #: doubling) stalled replication. The kernel caps this at net.core.rmem_max / wmem_max.
    peer_socket_buffer_bytes: int = 4 << 20
    #: TLS between members (``etcd-peer-*``); None: plain TCP
    tls: PeerTLS | None = None

    @property
    def self_member(self) -> Member:
        return Member(self.name, self.advertise_url)

    @property
    def peers(self) -> list[Member]:
        own = peer_address(self.advertise_url)
        return [m for m in self.members if m.name != self.name and m.address != own]

    @property
    def cluster_id(self) -> int:
        text = self.token + "\0" + ",".join(sorted(f"{m.name}={m.peer_url}" for m in self.members))
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def _token_digest(token: str) -> str:
    return hmac.new(b"sensu-raft-cluster", token.encode(), hashlib.sha256).hexdigest()


class _StoredFrames:
    """The ``zlib`` pysyncobj's peer connections use, writing stored (level 0) frames.

    Why: pysyncobj compresses every peer message at level 3; with an event in
    every log entry that was a fifth of the Raft leader's CPU, to save
    bandwidth a LAN cluster does not lack. Level 0 frames are still zlib, so
    any pysyncobj peer reads them (decompression is unchanged).
    """

    error = zlib.error

    @staticmethod
    def compress(data: bytes, level: int = -1) -> bytes:
        return zlib.compress(data, 0)

    @staticmethod
    def decompress(data: bytes) -> bytes:
        return zlib.decompress(data)


check_pysyncobj()  # before anything below relies on pysyncobj's internals: one clear error instead
pysyncobj.tcp_connection.zlib = _StoredFrames  # type: ignore[assignment]
pysyncobj.syncobj.createJournal = create_journal  # see cluster/journal.py
pysyncobj.serializer.gzip = FastDumpGzip  # type: ignore[assignment]
pysyncobj.serializer.os = LowPriorityDumpWriter()  # type: ignore[assignment]


class _SyncObj(SyncObj):  # type: ignore[misc]
    """``SyncObj`` whose dump load keeps the journal entries written after the dump.

    pysyncobj clears a journal that does not start exactly at the dump; one
    that starts earlier is what a stop between a compaction's dump and its
    journal cut leaves (see cluster/journal.py).
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


class TokenTCPTransport(TCPTransport):
    """pysyncobj's TCP transport with a cluster-token handshake.

    The dialling side sends ``{"sensu_cluster": digest, "node": address}``
    instead of its bare address; the accepting side checks the digest and
    refuses (logs and drops) anything else, including pysyncobj's
    unauthenticated utility commands (``syncobj_admin``).
    """

    def __init__(self, syncObj: Any, selfNode: Any, otherNodes: Any, *, token: str,
                 tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None) -> None:
        self._digest = _token_digest(token)
        self._tls = tls  # (server, client) contexts
        self._tls_failures_logged: set[str] = set()
        self._refused_logged: set[str] = set()
        self._transmissions: dict[Any, bytearray] = {}  # node -> chunks of one large entry so far
        # node -> our committed end when we refused its snapshot; while present, that transmission is dropped
        self._snapshot_offered: dict[Any, int] = {}
        super().__init__(syncObj, selfNode, otherNodes)

    def _onMessageReceived(self, node: Any, message: Any) -> None:
        """Keep the leader's optimistic ``nextIndex`` from moving backwards, and a follower's committed entries.

        With ``appendEntriesUseBatch`` off, the leader advances ``nextIndex``
        as it sends, then a late success reply for an older append sets it back;
        the next send overlaps entries the follower already applied, and
        pysyncobj's follower truncates and re-adds them. Raft only needs
        ``nextIndex = max(nextIndex, reply)`` on success. An append that still
        starts below the follower's commit index (after a restart or a leader
        change) is moved up to it by :meth:`_keep_committed_entries`.
        """
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "append_entries":
            if "transmission" in message:
                message = self._reassemble(node, message)
            if "prevLogIdx" in message and "transmission" not in message:
                message = self._keep_committed_entries(message)
            if message.get("serialized") is not None and not self._accept_snapshot_chunk(node, message):
                return
        if kind == "next_node_idx" and message.get("success") and not message.get("reset"):
            next_index = self._syncObj._SyncObj__raftNextIndex
            before = next_index.get(node)
            super()._onMessageReceived(node, message)
            if before is not None and next_index.get(node, before) < before:
                next_index[node] = before
            return
        super()._onMessageReceived(node, message)

    def _keep_committed_entries(self, message: dict[str, Any]) -> dict[str, Any]:
        """Follower side: start an append no lower than the entries we hold that are committed.

        pysyncobj's follower deletes every entry after ``prevLogIdx`` before
        adding the new ones, even entries it holds with the same term and has
        applied. Killed before the leader resends them, the node has lost
        acknowledged entries from its log (on restart: "raftCommitIndex
        exceeds journal end"), and with a majority in that state a leader
        without them could be elected. Raft deletes only on a conflict, and a
        committed entry never conflicts: by Log Matching, our entries up to our
        commit index are the leader's. So an append starting below that index
        is rewritten to start at it: its entries up to there are dropped, and
        our own entry there vouches for ``prevLogTerm``. What pysyncobj does
        after that point (a conflict check, then truncation of an unverified
        tail) is unchanged.
        """
        so = self._syncObj
        log = so._SyncObj__raftLog
        if not len(log):
            return message
        first, last = log[0][1], log[-1][1]
        keep_to = min(so.raftCommitIndex, last)
        prev = message["prevLogIdx"]
        if prev >= keep_to or prev < first:
            return message  # nothing committed would be deleted, or pysyncobj asks for a reset
        held = log[keep_to - first]
        entries = [e for e in message.get("entries") or () if e[1] > keep_to]
        return {**message, "prevLogIdx": keep_to, "prevLogTerm": held[2], "entries": entries}

    def _accept_snapshot_chunk(self, node: Any, message: dict[str, Any]) -> bool:
        """Follower side: before installing a leader's snapshot, offer our committed entries once.

        pysyncobj's leader sends its whole dump when its ``nextIndex`` for us
        is at or below its dump, which after our restart is often a stale
        value: we may hold committed entries well past that dump. Installing it
        clears our journal back to the dump, so entries we had acknowledged are
        gone until resent (on restart: "raftCommitIndex exceeds journal end").
        So the first snapshot is refused and the leader is told our committed
        end (a reset ``next_node_idx``). If it holds the entries after that,
        it appends from there; if not, its dump is past our commit index, the
        next snapshot is accepted, and it loses nothing committed. Every
        chunk of a refused transmission is dropped, so no partial dump is kept.
        """
        so = self._syncObj
        if message.get("term", 0) < so.raftCurrentTerm:
            return True  # pysyncobj ignores it
        _, is_first, _ = message["serialized"]
        if not is_first:
            return node not in self._snapshot_offered
        log = so._SyncObj__raftLog
        committed_end = min(so.raftCommitIndex, log[-1][1]) if len(log) else 0
        if self._snapshot_offered.get(node) == committed_end:
            del self._snapshot_offered[node]
            return True
        self._snapshot_offered[node] = committed_end
        logger.info("raft: refusing a snapshot once; offering entries from %d", committed_end + 1,
                    extra={"peer": getattr(node, "id", str(node))})
        so._SyncObj__sendNextNodeIdx(node, reset=True, nextNodeIdx=committed_end + 1)
        return False

    def _reassemble(self, node: Any, message: dict[str, Any]) -> dict[str, Any]:
        """Follower side of a chunked entry: hand pysyncobj the entry only once it is whole.

        pysyncobj's leader labels a chunk "finish" by comparing against the
        command's length, not the pickled entry's, so when a chunk boundary
        falls in the few dozen bytes between the two, "finish" comes one
        chunk early; the follower then failed to unpickle it on every retry.
        Here the chunks are collected; a "finish" that does not unpickle is
        passed on as "process" (pysyncobj answers it the same way), and the
        whole entry goes to pysyncobj as a plain append.
        """
        part = message["transmission"]
        data = message.get("data") or b""
        if part == "start":
            self._transmissions[node] = bytearray(data)
            return message
        collected = self._transmissions.get(node)
        if collected is None:  # a chunk without its start: pysyncobj's own handling
            return message
        collected += data
        if part != "finish":
            return message
        try:
            entry = pickle.loads(collected)
        except Exception:  # truncated: the real last chunk is still to come
            return {**message, "transmission": "process"}
        del self._transmissions[node]
        whole = {k: v for k, v in message.items() if k not in ("transmission", "data")}
        whole["entries"] = [entry]
        return whole

    def send(self, node: Any, message: Any) -> bool:
        """Sync the journal before any message leaves: nothing we send may depend on unsynced entries.

        A follower's ``next_node_idx`` acknowledges entries it just wrote, and
        the leader's ``append_entries`` carries entries that count toward a
        commit once followers hold them, the leader's own copy included. So
        whatever was written to the journal since the last sync is flushed
        first (one ``msync`` per burst; a no-op when nothing is new, or with
        ``etcd-unsafe-no-fsync``). Term and vote are synced where they are
        stored (cluster/journal.py).
        """
        sync = getattr(self._syncObj._SyncObj__raftLog, "sync", None)
        if sync is not None:
            sync()
        return bool(super().send(node, message))

    # -- peer TLS (cluster/peer_tls.py) ---------------------------------------------------

    def _connectIfNecessarySingle(self, node: Any) -> bool:
        """Dial as pysyncobj does; with peer TLS, the new socket speaks TLS to ``node``."""
        started = bool(super()._connectIfNecessarySingle(node))
        conn = self._connections.get(node)
        if started and self._tls is not None and conn is not None:
            raw = conn._TcpConnection__socket
            if raw is not None and not isinstance(raw, TLSPeerSocket):
                conn._TcpConnection__socket = TLSPeerSocket(
                    raw, self._tls[1], server_side=False, server_hostname=node.host, peer=node.address,
                    on_failure=self._tls_failed)
        return started

    def _onNewIncomingConnection(self, conn: Any) -> None:
        if self._tls is not None:
            raw = conn._TcpConnection__socket
            try:
                host, port = raw.getpeername()[:2]
                peer = f"{host}:{port}"
            except OSError:
                peer = "unknown peer"
            conn._TcpConnection__socket = TLSPeerSocket(raw, self._tls[0], server_side=True, server_hostname=None,
                                                        peer=peer, on_failure=self._tls_failed)
        super()._onNewIncomingConnection(conn)

    def _tls_failed(self, peer: str, reason: str) -> None:
        """Tick thread: one error line per peer address and reason; pysyncobj then drops the connection."""
        key = f"{peer.rsplit(':', 1)[0]} {reason}"
        if key in self._tls_failures_logged:
            return
        self._tls_failures_logged.add(key)
        logger.error("refusing Raft peer %s: TLS handshake failed: %s", peer, reason, extra={"peer": peer})

    def _sendSelfAddress(self, conn: Any) -> None:
        conn.send({"sensu_cluster": self._digest, "node": self._selfNode.address})

    def _onIncomingMessageReceived(self, conn: Any, message: Any) -> None:
        if conn not in self._unknownConnections:
            return super()._onIncomingMessageReceived(conn, message)
        node = message.get("node") if isinstance(message, dict) else None
        if not isinstance(message, dict) or not hmac.compare_digest(str(message.get("sensu_cluster", "")), self._digest):
            peer = str(node or "unknown peer")
            if peer not in self._refused_logged:
                self._refused_logged.add(peer)
                logger.error(
                    "refusing Raft peer %s: its etcd-initial-cluster-token differs from ours", peer,
                    extra={"peer": peer},
                )
            conn.disconnect()
            self._unknownConnections.discard(conn)
            return None
        return super()._onIncomingMessageReceived(conn, node)


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


#: pysyncobj's ``_RAFT_STATE`` values.
_ROLE_NAMES: dict[int, str] = {0: "follower", 1: "candidate", 2: "leader"}
_LEADER = 2


class RaftNode:
    """Owns the ``SyncObj``; built off the event loop (it reads the journal)."""

    def __init__(self, settings: RaftSettings, state: KVState,
                 on_state_changed: Callable[[int, int], None] | None = None) -> None:
        self.settings = settings
        self.state = state
        os.makedirs(settings.state_dir, exist_ok=True)
        _check_bindable(settings.listen_url)
        conf = SyncObjConf(
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
            onStateChanged=functools.partial(self._state_changed, on_state_changed),
        )
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
        with journals_created_durable(settings.fsync):
            self.syncobj = _SyncObj(self_address, others, conf=conf, consumers=[state], transportClass=transport)
        # pysyncobj stops ticking when the constructing thread exits; we are
        # built on a worker thread, so tie the tick thread to the main thread.
        self.syncobj._SyncObj__mainThread = threading.main_thread()
        if not self.syncobj._SyncObj__transport.ready:
            self.syncobj.destroy()
            raise PeerAddressInUseError(f"cannot listen on {settings.listen_url} for Raft peers")
        write_dumps_in_a_thread(self.syncobj._SyncObj__serializer, fsync=settings.fsync)
        journal = self.syncobj._SyncObj__raftLog
        if settings.fsync and isinstance(journal, DurableFileJournal):
            # a lone node sends nothing: its writers hear success only after this sync
            state.set_flush(journal.sync)
        self._journal = journal if isinstance(journal, DurableFileJournal) else None
        self._reserve_retry_at = 0.0
        self.syncobj.addOnTickCallback(self._retry_journal_reserve)
        self.syncobj.addOnTickCallback(self._kick_single_node)
        self._elect_a_lone_member_now()
        self._compact_at = first_compaction_at(settings)
        self.syncobj.addOnTickCallback(self._compact_by_bytes)

    def _state_changed(self, then: Callable[[int, int], None] | None, old: int, new: int) -> None:
        """Tick thread: log Raft role changes (a leader change pauses writes), then pass them on."""
        syncobj = getattr(self, "syncobj", None)  # the tick thread may call before __init__ returns
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
            self.syncobj.forceLogCompaction()

    def _elect_a_lone_member_now(self) -> None:
        """A member with no peers is its own quorum: let it stand for election on its first tick.

        pysyncobj waits a random election timeout (0.4-0.8 s) first even
        then, which was over half of a single node's start-up. Only the wait is
        skipped, never a vote: a member whose configuration names peers
        (``otherNodes``) keeps the timeout and needs their votes as before.
        """
        if not self.syncobj.otherNodes:
            self.syncobj._SyncObj__raftElectionDeadline = 0

    def _kick_single_node(self) -> None:
        """Tick thread: a lone leader commits its own entries on the *next* tick,
        after a poll that nothing would wake for ``autoTickPeriod``; wake it."""
        so = self.syncobj
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
        return peer_address(self.settings.advertise_url)

    def status(self) -> RaftStatus:
        """Read a few plain attributes of the tick thread's state (atomic under the GIL)."""
        so = self.syncobj
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

    def add_member(self, address: str, callback: Callable[[Any, int], None]) -> None:
        self.syncobj.addNodeToCluster(address, callback=callback)

    def remove_member(self, address: str, callback: Callable[[Any, int], None]) -> None:
        self.syncobj.removeNodeFromCluster(address, callback=callback)

    def destroy(self) -> None:
        self.syncobj.destroy()


def first_compaction_at(settings: RaftSettings) -> int:
    """Applied bytes at which this node first compacts: members are spread over one interval.

    Why: every node applies the same batches, so with one threshold all
    of them would fork and write their dumps at the same moment, and the
    cluster's CPU spike would land on every node's events at once.
    """
    addresses = sorted({m.address for m in settings.members} | {peer_address(settings.advertise_url)})
    position = addresses.index(peer_address(settings.advertise_url))
    return settings.compaction_max_bytes + settings.compaction_max_bytes * position // len(addresses)


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


# ---------------------------------------------------------------------- member registry
#
# pysyncobj knows members only by address; etcd (and /health, sensuctl) know
# them by name and peer URL. The registry keeps that mapping in the replicated
# map itself, under MEMBERS_PREFIX, so every node can name every member.

MEMBERS_PREFIX = "/sensu.io/cluster/members/"


def member_key(address: str) -> str:
    return MEMBERS_PREFIX + address


def encode_member(member: Member) -> bytes:
    return msgpack.packb({"name": member.name, "peer_url": member.peer_url}, use_bin_type=True)


def decode_member(value: bytes) -> Member:
    data = msgpack.unpackb(value, raw=False)
    return Member(str(data["name"]), str(data["peer_url"]))
