"""``/api/core/v2/namespaces[/{name}]`` (api.md §2.1): side effects and visibility.

Why a module of its own: a namespace is more than its ``{"name"}`` object.

* Creating one (POST, or a PUT that creates) also writes the ``system:pipeline`` Role and
  RoleBinding, in the same transaction, so no reader ever sees one without the other.
* Deleting one refuses (409 ``namespace is not empty``; Go answers 500) while it still
  holds checks, entities, assets, handlers, mutators, filters, hooks or silences, and
  removes the ``system:pipeline`` pair with it. The emptiness check and the delete are
  two steps: a write that lands between them survives in a namespace that no longer
  exists (Go has the same window); the delete itself is a compare-and-delete, so a
  concurrent change of the namespace object makes it fail with 409 rather than guess.
* Any authenticated user may GET one namespace, and the list shows everything only to
  callers whose ClusterRoleBindings cover ``namespaces`` or a common core resource;
  others see the namespaces where a RoleBinding names them.
"""

from __future__ import annotations

from typing import Any

from quart import Response

from core.identity import Principal
from core.resources import ClusterRole, ClusterRoleBinding, RoleBinding, keys
from core.resources.storage import decode
from core.seed import COMMON_RESOURCES, namespace_side_effects
from cluster import codec
from cluster.store import Store

from ..call import ApiCall
from ..errors import CODE_EXISTS, ApiError, json_body, not_found
from ..router import Router
from .resources import (
    Crud,
    created,
    create_object,
    etag_for,
    list_page,
    list_query,
    list_response,
    no_content,
    verb_for,
)

__all__ = ["NamespaceCrud", "NON_EMPTY_COLLECTIONS", "register"]

NON_EMPTY_COLLECTIONS = ("checks", "entities", "assets", "handlers", "mutators", "filters", "hooks", "silenced")
"""What keeps a namespace from being deleted (§2.1)."""

SYSTEM_PIPELINE = "system:pipeline"


def _names(subjects: list[Any] | None, principal: Principal) -> bool:
    for s in subjects or ():
        if (s.type == "User" and s.name == principal.username) or (s.type == "Group" and s.name in principal.groups):
            return True
    return False


async def _sees_all_namespaces(store: Store, principal: Principal) -> bool:
    """A ClusterRoleBinding of the caller has a rule on ``namespaces``, ``*`` or a core resource."""
    covered = {"*", "namespaces", *COMMON_RESOURCES}
    for kv in (await store.range(keys.prefix_for("clusterrolebindings"))).items:
        binding = decode(ClusterRoleBinding, kv.value)
        if not _names(binding.subjects, principal):
            continue
        role_kv = await store.get(keys.key_for("clusterroles", None, binding.role_ref.name))
        if role_kv is None:
            continue
        for rule in decode(ClusterRole, role_kv.value).rules or ():
            if covered.intersection(rule.resources or ()):
                return True
    return False


async def _bound_namespaces(store: Store, principal: Principal) -> set[str]:
    """Namespaces holding a RoleBinding that names the caller or one of its groups."""
    found: set[str] = set()
    for kv in (await store.range(keys.prefix_for("rolebindings"))).items:
        binding = decode(RoleBinding, kv.value)
        if _names(binding.subjects, principal):
            found.add(binding.metadata.namespace)
    return found


class NamespaceCrud(Crud):
    def __init__(self) -> None:
        super().__init__("namespaces")

    async def list_items(self, call: ApiCall, ns: str | None = None) -> Response:
        assert call.principal is not None
        query = list_query(call)
        include = None
        if not await _sees_all_namespaces(call.store, call.principal):
            visible = await _bound_namespaces(call.store, call.principal)
            include = lambda obj: obj.name in visible  # noqa: E731
        objs, token = await list_page(call.store, self.rtype, self.prefix(None), query, namespace=None,
                                      all_namespaces=False, include=include)
        return list_response(objs, token)

    async def get(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        """No RBAC check: any authenticated user may read one namespace (§2.1)."""
        kv = await call.store.get(self.key(None, name))
        if kv is None:
            raise not_found()
        return json_body(self.wire(self.rtype.decode(kv.value)), headers={"ETag": etag_for(kv.value)})

    def _side_effects(self, name: str, creator: str) -> list[codec.Op]:
        return [codec.put_op(k, v) for k, v in namespace_side_effects(name, creator)]

    async def create(self, call: ApiCall, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=False), self.collection)
        obj = self.prepare(call, await self.read_body(call))
        await create_object(call.store, self.rtype.key_of(obj), self.rtype.encode(obj), namespace=None,
                            extra=self._side_effects(obj.name, call.username))
        return created()

    async def replace(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        """Create or replace; the side effects are written only when it creates."""
        await call.authorize(verb_for(call, named=True), self.collection, "", name)
        obj = await self.read_body(call)
        self.check_uri(obj, None, name)
        obj = self.prepare(call, obj)
        key = self.rtype.key_of(obj)
        put = codec.put_op(key, self.rtype.encode(obj))
        await call.store.txn([codec.compare(key, "version", "==", 0)],
                             [put, *self._side_effects(obj.name, call.username)], [put])
        return created()

    async def delete(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=True), self.collection, "", name)
        key = self.key(None, name)
        current = await call.store.get(key)
        if current is None:
            raise not_found()
        for collection in NON_EMPTY_COLLECTIONS:
            if (await call.store.range(keys.prefix_for(collection, name), limit=1)).items:
                raise ApiError(409, "namespace is not empty", CODE_EXISTS)
        res = await call.store.txn(
            [codec.compare(key, "mod", "==", current.mod_revision)],
            [codec.delete_op(key),
             codec.delete_op(keys.key_for("roles", name, SYSTEM_PIPELINE)),
             codec.delete_op(keys.key_for("rolebindings", name, SYSTEM_PIPELINE))],
        )
        if not res.succeeded:
            if await call.store.get(key) is None:
                raise not_found()
            raise ApiError(409, "the namespace was modified concurrently; retry", CODE_EXISTS)
        return no_content()


def register(router: Router, ctx: object) -> None:
    NamespaceCrud().register(router)
