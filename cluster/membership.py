"""The ``--etcd-*`` flags mapped onto Raft members: names, peer URLs, timing, peer TLS.

etcd names members and talks to them through peer URLs; pysyncobj knows
members by ``host:port``. A :class:`Member` carries both, and
:class:`RaftSettings` is everything the Raft member (:mod:`cluster.raft`)
is built from. The cluster token (``--etcd-initial-cluster-token``) is
checked on every peer connection: a node started with another token is
refused, so two clusters that share addresses can never merge their logs.

Raft timing (see docs/store.md): heartbeats every ``heartbeat_s``; elections
after a random timeout in ``[election_s, 2 * election_s]``; the log is
compacted every ``compaction_max_bytes`` of applied batches as well as by
entry count. Plain data only: how pysyncobj is driven with it lives in
:mod:`cluster.raft`, the one package that imports pysyncobj.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from urllib.parse import urlsplit

import msgpack

__all__ = [
    "MEMBERS_PREFIX",
    "member_key",
    "encode_member",
    "decode_member",
    "Member",
    "PeerTLS",
    "RaftSettings",
    "member_id",
    "peer_address",
    "PeerAddressInUseError",
    "PeerTLSError",
    "first_compaction_at",
]


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
class PeerTLS:
    """The peer TLS settings: certificate and key of this member, the CA, and client authentication."""

    cert_file: str
    key_file: str
    trusted_ca_file: str = ""
    client_cert_auth: bool = False


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


def first_compaction_at(settings: RaftSettings) -> int:
    """Applied bytes at which this node first compacts: members are spread over one interval.

    Why: every node applies the same batches, so with one threshold all
    of them would fork and write their dumps at the same moment, and the
    cluster's CPU spike would land on every node's events at once.
    """
    addresses = sorted({m.address for m in settings.members} | {peer_address(settings.advertise_url)})
    position = addresses.index(peer_address(settings.advertise_url))
    return settings.compaction_max_bytes + settings.compaction_max_bytes * position // len(addresses)


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
