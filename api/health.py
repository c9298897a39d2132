"""``/health`` and ``/version``: etcd-shaped cluster health mapped onto Raft members.

``sensuctl cluster health`` parses the 6.x body (``ClusterHealth[]`` with
``MemberID``, ``MemberIDHex``, ``Name``, ``Err``, ``Healthy`` and ``Header``),
so those keys stay. We add what an operator of a Raft cluster needs:
``PeerURLs`` and ``IsLeader`` per member and a top-level ``Leader``. Unlike
6.x (always 200) a node without quorum answers 503, so load balancers and the
Ansible role can wait on it.
"""

from __future__ import annotations

from typing import Any

from core.version import SENSU_COMPAT_VERSION
from cluster.membership import MEMBERS_PREFIX, Member, decode_member
from cluster.store import Store

__all__ = ["cluster_members", "health_payload", "version_payload"]


async def cluster_members(store: Store, initial: list[Member]) -> list[Member]:
    """Every member, by name: the registry in the store, else the initial cluster."""
    by_address: dict[str, Member] = {m.address: m for m in initial}
    for kv in (await store.range(MEMBERS_PREFIX)).items:
        member = decode_member(kv.value)
        by_address[member.address] = member
    current = set(store.members())
    # members removed at run time drop out; unknown addresses keep their address as name
    result = [by_address.get(a, Member(a, f"http://{a}")) for a in current]
    return sorted(result, key=lambda m: m.name)


async def health_payload(store: Store, initial: list[Member], self_name: str, cluster_id: int) -> tuple[dict[str, Any], int]:
    status = store.raft_status()
    members = await cluster_members(store, initial)
    self_address = store.self_address
    leader_name = None
    entries = []
    for m in members:
        if m.address == self_address:
            healthy = status.has_quorum
            err = "" if healthy else "this member has no quorum (no leader reachable)"
        else:
            healthy = status.connected.get(m.address, False)
            err = "" if healthy else f"member {m.name} is not reachable from {self_name}"
        is_leader = status.leader == m.address
        if is_leader:
            leader_name = m.name
        entries.append({
            "MemberID": m.id,
            "MemberIDHex": f"{m.id:x}",
            "Name": m.name,
            "Err": err,
            "Healthy": healthy,
            "PeerURLs": [m.peer_url],
            "IsLeader": is_leader,
        })
    self_id = next((m.id for m in members if m.address == self_address), 0)
    body = {
        "Alarms": None,
        "ClusterHealth": entries,
        "Header": {"cluster_id": cluster_id, "member_id": self_id, "raft_term": status.term},
        "Leader": leader_name,
    }
    return body, (200 if status.has_quorum else 503)


def version_payload() -> dict[str, Any]:
    return {
        "etcd": {"etcdserver": "3.5.0", "etcdcluster": "3.5.0"},
        "sensu_backend": SENSU_COMPAT_VERSION,
        "api_groups": {"core/v2": "v2.19.0", "core/v3": "v3.8.1"},
    }
