"""pysyncobj's TCP transport with what the store adds to every peer link.

* a cluster-token handshake (``--etcd-initial-cluster-token``): a node started
  with another token is refused, so two clusters that share addresses can
  never merge their logs;
* TLS with the ``etcd-peer-*`` flags (cluster/raft/peer_tls.py);
* nothing leaves a node before the journal entries it depends on are synced
  (:meth:`TokenTCPTransport.send`);
* whole-entry reassembly of chunked entries (:meth:`TokenTCPTransport._reassemble`);
* a leader's ``nextIndex`` that never moves backwards on a late reply, and a
  follower that never truncates committed entries or installs a stale
  snapshot over them (docs/store.md lists why);
* peer messages in stored (level 0) zlib frames (:class:`StoredFrames`,
  installed by cluster/raft/node.py).

Everything here runs on pysyncobj's tick thread.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import pickle
import socket
import ssl
import zlib
from typing import TYPE_CHECKING, Any

from pysyncobj.transport import TCPTransport

from .peer_tls import TLSPeerSocket

if TYPE_CHECKING:  # for annotations only
    from pysyncobj.node import Node, TCPNode
    from pysyncobj.syncobj import SyncObj
    from pysyncobj.tcp_connection import TcpConnection

__all__ = ["StoredFrames", "TokenTCPTransport"]

#: The name this logger had before the move into cluster/raft/: log lines keep their component ("membership").
logger = logging.getLogger("cluster.membership")


def _token_digest(token: str) -> str:
    return hmac.new(b"sensu-raft-cluster", token.encode(), hashlib.sha256).hexdigest()


class StoredFrames:
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


class TokenTCPTransport(TCPTransport):
    """pysyncobj's TCP transport with a cluster-token handshake.

    The dialling side sends ``{"sensu_cluster": digest, "node": address}``
    instead of its bare address; the accepting side checks the digest and
    refuses (logs and drops) anything else, including pysyncobj's
    unauthenticated utility commands (``syncobj_admin``).
    """

    def __init__(self, syncObj: SyncObj, selfNode: Node | None, otherNodes: set[Node], *, token: str,
                 tls: tuple[ssl.SSLContext, ssl.SSLContext] | None = None) -> None:
        self._digest = _token_digest(token)
        self._tls = tls  # (server, client) contexts
        self._tls_failures_logged: set[str] = set()
        self._refused_logged: set[str] = set()
        self._transmissions: dict[Node, bytearray] = {}  # node -> chunks of one large entry so far
        # node -> our committed end when we refused its snapshot; while present, that transmission is dropped
        self._snapshot_offered: dict[Node, int] = {}
        super().__init__(syncObj, selfNode, otherNodes)

    def _onMessageReceived(self, node: Node, message: Any) -> None:
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

    def _accept_snapshot_chunk(self, node: Node, message: dict[str, Any]) -> bool:
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

    def _reassemble(self, node: Node, message: dict[str, Any]) -> dict[str, Any]:
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

    def send(self, node: Node, message: Any) -> bool:
        """Sync the journal before any message leaves: nothing we send may depend on unsynced entries.

        A follower's ``next_node_idx`` acknowledges entries it just wrote, and
        the leader's ``append_entries`` carries entries that count toward a
        commit once followers hold them, the leader's own copy included. So
        whatever was written to the journal since the last sync is flushed
        first (one ``msync`` per burst; a no-op when nothing is new, or with
        ``etcd-unsafe-no-fsync``). Term and vote are synced where they are
        stored (cluster/raft/journal.py).
        """
        sync = getattr(self._syncObj._SyncObj__raftLog, "sync", None)
        if sync is not None:
            sync()
        return bool(super().send(node, message))

    # -- peer TLS (cluster/raft/peer_tls.py) ----------------------------------------------

    def _connectIfNecessarySingle(self, node: TCPNode) -> bool:
        """Dial as pysyncobj does; with peer TLS, the new socket speaks TLS to ``node``."""
        started = bool(super()._connectIfNecessarySingle(node))
        conn = self._connections.get(node)
        if started and self._tls is not None and conn is not None:
            raw = conn._TcpConnection__socket
            if isinstance(raw, socket.socket):  # not yet wrapped (None, or our TLSPeerSocket, otherwise)
                conn._TcpConnection__socket = TLSPeerSocket(
                    raw, self._tls[1], server_side=False, server_hostname=node.host, peer=node.address,
                    on_failure=self._tls_failed)
        return started

    def _onNewIncomingConnection(self, conn: TcpConnection) -> None:
        raw = conn._TcpConnection__socket  # a socket.socket: pysyncobj's server has just accepted it
        if self._tls is not None and isinstance(raw, socket.socket):
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

    def _sendSelfAddress(self, conn: TcpConnection) -> None:
        conn.send({"sensu_cluster": self._digest, "node": self._selfNode.address})

    def _onIncomingMessageReceived(self, conn: TcpConnection, message: Any) -> None:
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
