"""``…/namespaces/{ns}/silenced[…]`` and ``/api/core/v2/silenced[…]`` (api.md §2.9).

What differs from generic CRUD, and why:

* **Name.** An entry is stored as ``<subscription or *>:<check or *>`` whatever
  ``metadata.name`` said (:meth:`Silenced.with_defaults`); a PUT must still carry a
  ``metadata.name`` equal to the URL id (§1.2).
* **Expiry is the store's job.** Each entry with an ``expire_at`` is written under its own
  lease whose TTL ends at ``expire_at``, so the leader's lease expiry deletes it
  cluster-wide, exactly once, with no per-node timer (STYLE §4). Reads also hide an
  entry whose ``expire_at`` passed but whose lease has not been reaped yet (the reaper
  runs every 100 ms). Replacing or deleting an entry revokes its old lease so leases do
  not pile up.
* **Reads** give ``expire`` as stored, or ``-1`` without expiry (the Ansible ``silence``
  module compares it), and lists ignore ``limit``.

:func:`store_silenced` is public so the classic 0.28 ``/silenced`` surface can store
entries the same way.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from quart import Response

from core.resources import Silenced, ValidationError, keys
from core.resources.storage import encode
from cluster.store import Store

from ..call import ApiCall
from ..errors import already_exists, json_body, not_found
from ..router import Router
from .resources import (
    API,
    add_routes,
    Crud,
    allowed_namespaces,
    create_object,
    created,
    etag_for,
    list_page,
    list_query,
    list_response,
    missing_namespace,
    namespace_key,
    no_content,
    now_s,
    put_object,
    revoke_quietly,
    verb_for,
)

__all__ = ["SilencedCrud", "register", "store_silenced"]

NOT_FOUND = "silenced entry not found"
INT64_MAX = 2**63 - 1


async def store_silenced(store: Store, entry: Silenced, *, create: bool) -> None:
    """Store a validated entry (defaults applied) under its name, leased until ``expire_at``.

    ``create`` makes an existing live entry a 409. An entry whose ``expire_at`` already
    passed is not stored (it could never be read back); a PUT of one removes the old
    entry, since a PUT is a full replacement. Raises ApiError 400 for a missing namespace.
    """
    ns = entry.metadata.namespace
    key = keys.key_for("silenced", ns, entry.metadata.name)
    previous = await store.get(key)
    lease = 0
    if entry.has_expiry:
        ttl = entry.expire_at - time.time()
        if ttl <= 0:
            if await store.get(namespace_key(ns)) is None:
                raise missing_namespace(ns)
            if previous is not None:
                if create:
                    raise already_exists()
                await store.delete(key)
                await revoke_quietly(store, previous.lease)
            return
        lease = await store.grant_lease(ttl)
    value = encode(entry)
    try:
        if create:
            await create_object(store, key, value, namespace=ns, lease=lease)
        else:
            await put_object(store, key, value, namespace=ns, lease=lease)
    except Exception:
        await revoke_quietly(store, lease)
        raise
    if previous is not None and previous.lease and previous.lease != lease:
        await revoke_quietly(store, previous.lease)


def _live(now: int) -> Callable[[Any], bool]:
    return lambda entry: not entry.is_expired(now)


class SilencedCrud(Crud):
    def __init__(self) -> None:
        super().__init__("silenced")

    def prepare(self, call: ApiCall, obj: Any) -> Any:
        """Validate, then the §2.9 defaults: computed name, ``begin``, ``expire_at``, ``creator``."""
        obj.validate()
        now = now_s()
        entry: Silenced = obj.with_defaults(now, call.username)
        settings = call.ctx.settings
        entry = entry.with_expiry_policy(now, default_s=settings.default_silenced_expiry_time,
                                         max_s=settings.max_silenced_expiry_time_allowed)
        if entry.expire_at > INT64_MAX:
            raise ValidationError("expire", "is too large: begin + expire must fit in an int64")
        entry.metadata.created_by = call.username
        return entry

    async def create(self, call: ApiCall, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=False), self.collection, ns or "")
        obj = await self.read_body(call)
        self.check_uri(obj, ns, None)
        await store_silenced(call.store, self.prepare(call, obj), create=True)
        return created()

    async def replace(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=True), self.collection, ns or "", name)
        obj = await self.read_body(call)
        self.check_uri(obj, ns, name)
        await store_silenced(call.store, self.prepare(call, obj), create=False)
        return created()

    async def get(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=True), self.collection, ns or "", name)
        kv = await call.store.get(self.key(ns, name))
        entry = self.rtype.decode(kv.value) if kv is not None else None
        if kv is None or entry is None or entry.is_expired(now_s()):
            raise not_found(NOT_FOUND)
        return json_body(entry.to_wire(), headers={"ETag": etag_for(kv.value)})

    async def delete(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=True), self.collection, ns or "", name)
        key = self.key(ns, name)
        kv = await call.store.get(key)
        if kv is None or not await call.store.delete(key):
            raise not_found(NOT_FOUND)
        await revoke_quietly(call.store, kv.lease)
        return no_content()

    async def _list(self, call: ApiCall, ns: str | None, include: Callable[[Any], bool]) -> Response:
        query = list_query(call, paginate=False)
        prefix = keys.prefix_for(self.collection, ns)
        objs, _ = await list_page(call.store, self.rtype, prefix, query, namespace=ns,
                                  all_namespaces=ns is None, include=include)
        return list_response(objs, None)

    async def _visible(self, call: ApiCall, ns: str | None) -> Callable[[Any], bool]:
        """Live entries the caller may list: in ``ns``, or in every namespace it may list."""
        live = _live(now_s())
        if ns is not None:
            await call.authorize("list", self.collection, ns)
            return live
        allowed = await allowed_namespaces(call, self.collection)
        if allowed is None:
            return live
        return lambda entry: live(entry) and entry.metadata.namespace in allowed

    async def list_items(self, call: ApiCall, ns: str | None = None) -> Response:
        return await self._list(call, ns, await self._visible(call, ns))

    async def list_all(self, call: ApiCall) -> Response:
        return await self._list(call, None, await self._visible(call, None))

    async def by_subscription(self, call: ApiCall, ns: str, subscription: str) -> Response:
        visible = await self._visible(call, ns)
        return await self._list(call, ns, lambda e: visible(e) and e.subscription == subscription)

    async def by_check(self, call: ApiCall, check: str, ns: str | None = None) -> Response:
        visible = await self._visible(call, ns)
        return await self._list(call, ns, lambda e: visible(e) and e.check == check)

    def register(self, router: Router, *, all_namespaces: bool = True) -> None:
        add_routes(router, f"{API}/namespaces/{{ns}}/silenced/subscriptions/{{subscription}}",
                   {"GET": self.by_subscription})
        add_routes(router, f"{API}/namespaces/{{ns}}/silenced/checks/{{check}}", {"GET": self.by_check})
        add_routes(router, f"{API}/silenced/checks/{{check}}", {"GET": self.by_check})
        super().register(router, all_namespaces=all_namespaces)


def register(router: Router, ctx: object) -> None:
    SilencedCrud().register(router)
