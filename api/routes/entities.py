"""``…/namespaces/{ns}/entities[/{name}]`` (api.md §2.4): Go's entity write rules.

Entities differ from the generic §1.2 behaviour in four ways, all relied on by clients:

* PUT and POST answer **200 with the stored entity** (redacted), not 201;
* PUT does not compare the URL name with the body (an empty body name takes the URL's);
  the namespace must still match, because RBAC was checked against the URL's;
* replacing an entity its agent manages (label ``sensu.io/managed_by: sensu-agent``) is
  a 409, and replacing a non-proxy entity adds ``entity:<name>`` to its subscriptions,
  both decided on the stored entity inside a compare-and-swap, so a concurrent agent
  registration cannot slip between the check and the write;
* DELETE also deletes the entity's events, in the same transaction.
"""

from __future__ import annotations

from dataclasses import replace

from quart import Response

from core.resources import MANAGED_BY_LABEL, Entity, entity_subscription, keys
from core.resources.storage import decode
from cluster import codec
from cluster.store import KeyValue

from ..call import ApiCall
from ..errors import CODE_EXISTS, ApiError, json_body, not_found
from ..router import Router
from .resources import Crud, Planned, cas_write, check_uri_meta, create_object, no_content, verb_for

__all__ = ["EntityCrud", "register"]

MANAGED_BY_AGENT = "sensu-agent"
PROXY_CLASS = "proxy"


class EntityCrud(Crud):
    def __init__(self) -> None:
        super().__init__("entities")

    def _fill(self, entity: Entity, ns: str, name: str | None) -> None:
        if not entity.metadata.namespace:
            entity.metadata.namespace = ns
        if name is not None and not entity.metadata.name:
            entity.metadata.name = name
        check_uri_meta(entity.metadata.namespace, None, ns, None)

    async def create(self, call: ApiCall, ns: str | None = None) -> Response:
        assert ns is not None
        await call.authorize(verb_for(call, named=False), self.collection, ns)
        entity: Entity = await self.read_body(call)
        self._fill(entity, ns, None)
        entity = self.prepare(call, entity)
        await create_object(call.store, self.rtype.key_of(entity), self.rtype.encode(entity), namespace=ns)
        return json_body(entity.to_wire())

    async def replace(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        assert ns is not None
        await call.authorize(verb_for(call, named=True), self.collection, ns, name)
        entity: Entity = await self.read_body(call)
        self._fill(entity, ns, name)
        if entity.metadata.name != name:  # Go stores under the body's name: authorize that one too
            await call.authorize(verb_for(call, named=True), self.collection, ns, entity.metadata.name)
        entity = self.prepare(call, entity)

        async def plan(current: KeyValue | None) -> Planned:
            result = entity
            if current is not None:
                stored = decode(Entity, current.value)
                if stored.metadata.labels.get(MANAGED_BY_LABEL) == MANAGED_BY_AGENT:
                    raise ApiError(409, "entity is managed by its agent", CODE_EXISTS)
                sub = entity_subscription(entity.metadata.name)
                if entity.entity_class != PROXY_CLASS and sub not in (entity.subscriptions or ()):
                    result = replace(entity, subscriptions=[*(entity.subscriptions or ()), sub])
            return Planned(self.rtype.encode(result), result=result)

        done = await cas_write(call.store, self.rtype.key_of(entity), plan, namespace=ns)
        return json_body(done.result.to_wire())

    async def delete(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        assert ns is not None
        await call.authorize(verb_for(call, named=True), self.collection, ns, name)
        key = self.key(ns, name)
        res = await call.store.txn([codec.compare(key, "version", ">", 0)],
                                   [codec.delete_op(key), codec.delete_prefix_op(keys.event_prefix(ns, name))])
        if not res.succeeded:
            raise not_found()
        return no_content()


def register(router: Router, ctx: object) -> None:
    EntityCrud().register(router)
