"""Check sub-routes (api.md §2.2): hook lists and ad hoc execution.

Plain check CRUD is generic (:mod:`.resources`); this module adds

* ``PUT …/checks/{name}/hooks/{type}`` with ``{"<type>": [hooks]}``: merge those hooks
  into the check's list for that type (201);
* ``DELETE …/checks/{name}/hooks/{type}/hook/{hook}``: remove one hook (204; 404 when
  the check, the type or the hook is absent; a list left empty is dropped);
* ``POST …/checks/{name}/execute``: queue an ad hoc run (202 ``{"issued": <unix>}``).

Both hook routes are read-modify-write of the stored check, so they use
:func:`~.resources.cas_write`: two concurrent hook edits both land.

**Ad hoc requests** are stored under ``keys.internal_key("adhoc", ns, check, <uuid4>)``
with a lease of :data:`ADHOC_TTL_S`, as msgpack of ``{"check", "namespace",
"subscriptions", "creator", "reason", "issued"}``. ``subscriptions`` is already resolved
(the check's own when the body gave none). The scheduler watches the prefix and
publishes each request once; the lease removes requests nobody picked up.
"""

from __future__ import annotations

import uuid
from typing import Any

from quart import Response

from core.resources import CheckConfig, HookList, ValidationError, keys
from core.resources.meta import WireReader
from core.resources.storage import decode, encode, encode_dict
from cluster.store import KeyValue

from ..call import ApiCall
from ..errors import invalid, json_body, not_found
from ..router import Router
from .resources import API, Planned, add_routes, cas_write, created, no_content, now_s, verb_for

__all__ = ["ADHOC_TTL_S", "adhoc_key", "register"]

ADHOC_TTL_S = 60


def adhoc_key(namespace: str, check: str, request_id: str) -> str:
    return keys.internal_key("adhoc", namespace, check, request_id)


def _check_key(ns: str, name: str) -> str:
    return keys.key_for("checks", ns, name)


async def _update_check(call: ApiCall, ns: str, name: str, change: Any) -> None:
    """Apply ``change(check)`` (which may raise 404/400) to the stored check, CAS-retried."""

    async def plan(current: KeyValue | None) -> Planned:
        if current is None:
            raise not_found()
        check = decode(CheckConfig, current.value)
        change(check)
        check.validate()
        check.metadata.created_by = call.username
        return Planned(encode(check))

    await cas_write(call.store, _check_key(ns, name), plan)


async def add_hooks(call: ApiCall, ns: str, name: str, type: str) -> Response:
    await call.authorize(verb_for(call, named=True), "checks", ns, name)
    body = await call.json()
    hooks = HookList.from_wire(body, "hooks")
    if hooks.type != type:
        raise invalid(f"the hook type of the request body ({hooks.type}) does not match the type of the URI ({type})")
    hooks.validate("check_hooks")

    def change(check: CheckConfig) -> None:
        lists = list(check.check_hooks or [])
        for existing in lists:
            if existing.type == type:
                merged = list(existing.hooks or [])
                merged += [h for h in hooks.hooks or () if h not in merged]
                existing.hooks = merged
                break
        else:
            lists.append(HookList(type=type, hooks=list(hooks.hooks or [])))
        check.check_hooks = lists

    await _update_check(call, ns, name, change)
    return created()


async def remove_hook(call: ApiCall, ns: str, name: str, type: str, hook: str) -> Response:
    await call.authorize(verb_for(call, named=True), "checks", ns, name)

    def change(check: CheckConfig) -> None:
        check_hooks = check.check_hooks or []
        for i, existing in enumerate(check_hooks):
            if existing.type == type and hook in (existing.hooks or ()):
                existing.hooks = [h for h in existing.hooks or () if h != hook]
                if not existing.hooks:
                    del check_hooks[i]  # the check's own list: it is not empty, we are in it
                return
        raise not_found()

    await _update_check(call, ns, name, change)
    return no_content()


async def execute(call: ApiCall, ns: str, name: str) -> Response:
    """Queue an ad hoc run of a stored check (publish is ignored, §4.2 of runtime.md)."""
    await call.authorize(verb_for(call, named=True), "checks", ns, name)
    body = await call.json(allow_empty=True)
    try:
        r = WireReader(body)
        requested = r.get_str("check")
        subscriptions = r.get_str_list("subscriptions") or []
        reason = r.get_str("reason")
    except ValidationError as exc:
        raise invalid(f"invalid ad hoc request: {exc.reason}") from None
    if requested and requested != name:
        raise invalid(f"the name of the check in the request body ({requested}) does not match the name of the "
                      f"URI ({name})")
    for i, sub in enumerate(subscriptions):
        if not sub:
            raise invalid(f"invalid ad hoc request: subscriptions[{i}]: must not be empty")
    kv = await call.store.get(_check_key(ns, name))
    if kv is None:
        raise not_found()
    check = decode(CheckConfig, kv.value)
    issued = now_s()
    request = {
        "check": name,
        "namespace": ns,
        "subscriptions": subscriptions or list(check.subscriptions or []),
        "creator": call.username,
        "reason": reason,
        "issued": issued,
    }
    lease = await call.store.grant_lease(ADHOC_TTL_S)
    await call.store.put(adhoc_key(ns, name, str(uuid.uuid4())), encode_dict(request), lease=lease)
    return json_body({"issued": issued}, 202)


def register(router: Router, ctx: object) -> None:
    base = f"{API}/namespaces/{{ns}}/checks/{{name}}"
    add_routes(router, f"{base}/hooks/{{type}}", {"PUT": add_hooks})
    add_routes(router, f"{base}/hooks/{{type}}/hook/{{hook}}", {"DELETE": remove_hook})
    add_routes(router, f"{base}/execute", {"POST": execute})
