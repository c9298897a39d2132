"""What ``sensu-backend init`` writes, once per cluster (api.md §3.4).

All of it goes into the store in one transaction guarded by the
"initialized" marker, so two concurrent ``init`` runs (or a retry after a
timeout) can never seed twice: exactly one wins, the other learns the cluster
is already initialized.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from cluster import codec

from core.resources import ClusterRole, ClusterRoleBinding, Namespace, RoleBinding, Role, TessenConfig, User, keys
from core.resources.storage import encode, encode_dict

__all__ = [
    "INITIALIZED_KEY",
    "JWT_SECRET_KEY",
    "CLUSTER_ID_KEY",
    "COMMON_RESOURCES",
    "seed_operations",
    "namespace_side_effects",
]

INITIALIZED_KEY = keys.internal_key("init", "initialized")
JWT_SECRET_KEY = keys.internal_key("auth", "jwt-secret")
CLUSTER_ID_KEY = keys.singleton_key("cluster_id")
TESSEN_KEY = keys.singleton_key("tessen")
AGENT_USER = "agent"
AGENT_PASSWORD = "P@ssw0rd!"

#: The common core resource set of the default roles.
COMMON_RESOURCES = ["assets", "checks", "entities", "events", "filters", "handlers", "hooks", "mutators", "silenced"]


def _cluster_role(name: str, rules: list[dict[str, Any]]) -> ClusterRole:
    return ClusterRole.from_wire({"metadata": {"name": name}, "rules": rules})


def _crb(name: str, group: str) -> ClusterRoleBinding:
    return ClusterRoleBinding.from_wire({
        "metadata": {"name": name},
        "subjects": [{"type": "Group", "name": group}],
        "role_ref": {"type": "ClusterRole", "name": name},
    })


def default_cluster_roles() -> list[ClusterRole]:
    return [
        _cluster_role("cluster-admin", [{"verbs": ["*"], "resources": ["*"], "resource_names": None}]),
        _cluster_role("admin", [
            {"verbs": ["*"], "resources": COMMON_RESOURCES + ["roles", "rolebindings"], "resource_names": None},
            {"verbs": ["get", "list"], "resources": ["namespaces"], "resource_names": None},
        ]),
        _cluster_role("edit", [
            {"verbs": ["*"], "resources": COMMON_RESOURCES, "resource_names": None},
            {"verbs": ["get", "list"], "resources": ["namespaces"], "resource_names": None},
        ]),
        _cluster_role("view", [
            {"verbs": ["get", "list"], "resources": COMMON_RESOURCES + ["namespaces"], "resource_names": None},
        ]),
        _cluster_role("system:agent", [{"verbs": ["*"], "resources": ["events"], "resource_names": None}]),
        _cluster_role("system:user", [
            {"verbs": ["get", "update"], "resources": ["localselfuser"], "resource_names": None},
        ]),
    ]


def namespace_side_effects(namespace: str, created_by: str) -> list[tuple[str, bytes]]:
    """The ``system:pipeline`` Role and RoleBinding every namespace gets (api.md §2.1)."""
    meta = {"name": "system:pipeline", "namespace": namespace, "created_by": created_by}
    role = Role.from_wire({"metadata": meta, "rules": [
        {"verbs": ["get", "list"], "resources": ["events"], "resource_names": None}]})
    binding = RoleBinding.from_wire({
        "metadata": meta,
        "subjects": [{"type": "Group", "name": "system:pipeline"}],
        "role_ref": {"type": "Role", "name": "system:pipeline"},
    })
    return [
        (keys.key_for("roles", namespace, "system:pipeline"), encode(role)),
        (keys.key_for("rolebindings", namespace, "system:pipeline"), encode(binding)),
    ]


def seed_operations(*, admin_username: str, admin_password_hash: str, agent_password_hash: str,
                    api_key: str = "", now: int) -> list[codec.Op]:
    """Every put of the first initialization, for one transaction."""
    puts: list[tuple[str, bytes]] = []
    puts.append((keys.key_for("namespaces", None, "default"), encode(Namespace(name="default"))))
    puts += namespace_side_effects("default", admin_username)
    admin = User(username=admin_username, groups=["cluster-admins"], password_hash=admin_password_hash)
    agent = User(username=AGENT_USER, groups=["system:agents"], password_hash=agent_password_hash)
    for user in (admin, agent):
        puts.append((keys.key_for("users", None, user.username), encode(user)))
    for role in default_cluster_roles():
        puts.append((keys.key_for("clusterroles", None, role.metadata.name), encode(role)))
    for name, group in (("cluster-admin", "cluster-admins"), ("system:agent", "system:agents"),
                        ("system:user", "system:users")):
        puts.append((keys.key_for("clusterrolebindings", None, name), encode(_crb(name, group))))
    if api_key:
        puts.append((keys.key_for("apikeys", None, api_key), encode_dict({
            "metadata": {"name": api_key, "created_by": admin_username},
            "username": admin_username,
            "created_at": now,
        })))
    puts.append((CLUSTER_ID_KEY, str(uuid.uuid4()).encode()))
    puts.append((TESSEN_KEY, encode(TessenConfig(opt_out=False))))
    puts.append((JWT_SECRET_KEY, secrets.token_bytes(32)))
    puts.append((INITIALIZED_KEY, encode_dict({"initialized_at": now, "by": admin_username})))
    return [codec.put_op(k, v) for k, v in puts]
