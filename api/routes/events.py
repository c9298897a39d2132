"""``…/namespaces/{ns}/events[/{entity}[/{check}]]`` and ``/api/core/v2/events`` (api.md §2.5).

Reads are ordinary (lists by namespace, by entity and across namespaces, in key order
``(namespace, entity, check)``; get and delete by ``(entity, check)``). Writes
(``POST …/events``, ``POST``/``PUT …/events/{entity}/{check}``, all 201) are processed
synchronously before answering, which the spec allows and makes a write readable at
once. This module does what only the API knows (steps 1-4 of §2.5):

1-3. fill the entity's and check's namespace and name from the URL and compare them
     (400 on a mismatch), default ``entity_class`` to ``proxy``, validate, and refuse a
     namespace that does not exist (400);
4.   stamp ``created_by`` with the caller on the event, its check and its entity.

Everything else (id, proxy entity, silencing, merge with the stored event under a
compare-and-swap, expire_on_resolve, the persisted copy; metrics-only events are not
stored; then the pipeline) is eventd's, reached through ``ctx.events``
(:class:`core.event_processing.EventProcessor`), the one door every event source
shares, so an API result and an agent result leave the same stored state.
"""

from __future__ import annotations

from quart import Response

from core.resources import Event, keys
from core.resources.registry import resource_type

from ..call import ApiCall
from ..errors import json_body, not_found
from ..router import Router
from .resources import (
    API,
    add_routes,
    allowed_namespaces,
    check_uri_meta,
    created,
    etag_for,
    list_page,
    list_query,
    list_response,
    missing_namespace,
    namespace_key,
    no_content,
    now_s,
    unwrap,
    verb_for,
)

__all__ = ["apply_url", "register"]

EVENTS = resource_type("events")
PROXY_CLASS = "proxy"


def apply_url(event: Event, ns: str, entity: str | None = None, check: str | None = None) -> None:
    """Steps 1-2: fill missing namespaces and names from the URL, then require they match it."""
    if not event.metadata.namespace:
        event.metadata.namespace = ns
    check_uri_meta(event.metadata.namespace, None, ns, None, what="event")
    if event.entity is not None:
        meta = event.entity.metadata
        meta.namespace = meta.namespace or ns
        meta.name = meta.name or (entity or "")
        check_uri_meta(meta.namespace, meta.name, ns, entity, what="entity")
        if not event.entity.entity_class:
            event.entity.entity_class = PROXY_CLASS
    if event.check is not None:
        meta = event.check.metadata
        meta.namespace = meta.namespace or ns
        meta.name = meta.name or (check or "")
        check_uri_meta(meta.namespace, meta.name, ns, check, what="check")


# ---------------------------------------------------------------------------------- handlers

async def _write(call: ApiCall, ns: str, entity: str | None, check: str | None) -> Response:
    event = Event.from_wire(unwrap(await call.json()))
    apply_url(event, ns, entity, check)
    event.validate()
    if await call.store.get(namespace_key(ns)) is None:
        raise missing_namespace(ns)
    for meta in (event.metadata, event.entity.metadata if event.entity else None,
                 event.check.metadata if event.check else None):
        if meta is not None:
            meta.created_by = call.username
    # once stored, a failure to hand the event on is logged, not answered: a retry would count it twice
    await call.ctx.events.submit(event, now=now_s(), log_handoff_errors=True)
    return created()


async def create_event(call: ApiCall, ns: str) -> Response:
    await call.authorize(verb_for(call, named=False), "events", ns)
    return await _write(call, ns, None, None)


async def put_event(call: ApiCall, ns: str, entity: str, check: str) -> Response:
    """PUT and POST on ``…/events/{entity}/{check}``; RBAC names the entity."""
    await call.authorize(verb_for(call, named=True), "events", ns, entity)
    return await _write(call, ns, entity, check)


async def list_events(call: ApiCall, ns: str, entity: str | None = None) -> Response:
    await call.authorize(verb_for(call, named=False), "events", ns)
    query = list_query(call)
    prefix = keys.event_prefix(ns, entity)
    objs, token = await list_page(call.store, EVENTS, prefix, query, namespace=ns, all_namespaces=False)
    return list_response(objs, token)


async def list_all_events(call: ApiCall) -> Response:
    allowed = await allowed_namespaces(call, "events")
    include = None if allowed is None else (lambda e: e.metadata.namespace in allowed)
    objs, token = await list_page(call.store, EVENTS, keys.prefix_for("events"), list_query(call), namespace=None,
                                  all_namespaces=True, include=include)
    return list_response(objs, token)


async def get_event(call: ApiCall, ns: str, entity: str, check: str) -> Response:
    await call.authorize(verb_for(call, named=True), "events", ns, entity)
    kv = await call.store.get(keys.event_key(ns, entity, check))
    if kv is None:
        raise not_found()
    return json_body(EVENTS.decode(kv.value).to_wire(), headers={"ETag": etag_for(kv.value)})


async def delete_event(call: ApiCall, ns: str, entity: str, check: str) -> Response:
    await call.authorize(verb_for(call, named=True), "events", ns, entity)
    if not await call.store.delete(keys.event_key(ns, entity, check)):
        raise not_found()
    return no_content()


def register(router: Router, ctx: object) -> None:
    base = f"{API}/namespaces/{{ns}}/events"
    add_routes(router, base, {"GET": list_events, "POST": create_event})
    add_routes(router, f"{base}/{{entity}}", {"GET": list_events})
    add_routes(router, f"{base}/{{entity}}/{{check}}",
               {"GET": get_event, "PUT": put_event, "POST": put_event, "DELETE": delete_event})
    add_routes(router, f"{API}/events", {"GET": list_all_events})

