"""Authorization: Sensu's RBAC decision over the roles and bindings in the store (api.md §2.13).

A request is allowed when a ClusterRoleBinding (anywhere) or a RoleBinding (in
the request's namespace) names the caller or one of its groups, and a rule of
the bound role matches verb, resource and name. The bindings are re-read from
the local store on each check, so a change made through any node applies at
once on every node (reads are local and cheap). Decoding them is not cheap,
so decoded objects are kept per ``(key, mod_revision)``: a changed binding
has a new revision and is decoded again.

Why in ``core``: the REST API (``api.rbac.require``) and agentd's handshake
ask the same question; the HTTP answer to a "no" (403) stays in ``api``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.resources import ClusterRole, ClusterRoleBinding, Role, RoleBinding, keys
from core.resources.rbac import Rule, Subject
from core.resources.storage import decode_cached

from .users import Principal

if TYPE_CHECKING:  # annotations only: importing core never starts a store
    from cluster.store import Store

__all__ = ["is_allowed"]


def _subject_matches(subjects: list[Subject] | None, principal: Principal) -> bool:
    for s in subjects or ():
        if s.type == "User" and s.name == principal.username:
            return True
        if s.type == "Group" and s.name in principal.groups:
            return True
    return False


def _rules_allow(rules: list[Rule] | None, verb: str, resource: str, name: str) -> bool:
    return any(rule.matches(verb, resource, name) for rule in rules or ())


async def _cluster_role(store: Store, name: str) -> ClusterRole | None:
    kv = await store.get(keys.key_for("clusterroles", None, name))
    return decode_cached(store, ClusterRole, kv) if kv else None


async def is_allowed(store: Store, principal: Principal, verb: str, resource: str, namespace: str = "",
                     name: str = "") -> bool:
    """Whether a binding of ``principal`` grants ``verb`` on ``resource`` (named ``name``) in ``namespace``.

    Cluster-wide bindings first; namespaced ones only when ``namespace`` is given.
    """
    for kv in (await store.range(keys.prefix_for("clusterrolebindings"))).items:
        binding = decode_cached(store, ClusterRoleBinding, kv)
        if not _subject_matches(binding.subjects, principal):
            continue
        role = await _cluster_role(store, binding.role_ref.name)
        if role is not None and _rules_allow(role.rules, verb, resource, name):
            return True
    if not namespace:
        return False
    for kv in (await store.range(keys.prefix_for("rolebindings", namespace))).items:
        rb = decode_cached(store, RoleBinding, kv)
        if not _subject_matches(rb.subjects, principal):
            continue
        if rb.role_ref.type == "ClusterRole":
            rules = (await _cluster_role(store, rb.role_ref.name) or ClusterRole()).rules
        else:
            rkv = await store.get(keys.key_for("roles", namespace, rb.role_ref.name))
            rules = decode_cached(store, Role, rkv).rules if rkv else None
        if _rules_allow(rules, verb, resource, name):
            return True
    return False
