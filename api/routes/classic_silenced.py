"""The classic Sensu 0.28 silencing API at the root of the API listener (api.md §6).

``POST /silenced``, ``GET /silenced``, ``POST /silenced/clear`` and the 1.x
lookups ``GET /silenced/{subscriptions/{s},checks/{c},ids/{id}}``, with the
statuses and bodies of the seed document (``004_dab240b98193bd20.txt``).

Entries are ordinary core/v2 ``silenced`` objects (namespace ``default``, or
``?namespace=``), so both APIs and the event pipeline see the same silences.
What differs is only the wire shape:

* the classic entry is ``{"expire","expire_on_resolve","creator","reason",
  "check","subscription","id"}`` with absent fields as ``null``;
* ``expire`` **counts down** here (whole seconds left, or -1), while core/v2
  returns it as stored (§2.9 explains why Ansible needs that);
* re-posting an id replaces the entry (201 again), and ``creator`` is kept
  from the body rather than set to the caller.

Expiry is enforced by the store, cluster-wide: an entry with an expiry is put
under its own lease whose TTL ends at ``expire_at``, so it disappears on every
node at once without a per-node timer (STYLE §4). Reads also skip an entry
whose ``expire_at`` has passed, in case the lease expiry is a moment behind.

Authentication: these routes are registered ``public`` because the
dispatcher refuses HTTP Basic, which is what Sensu 1.x clients send. Each
handler authenticates itself: Basic (a Sensu user's password, bcrypt-checked
in a worker thread), ``Bearer`` or ``Key``. Without valid credentials the
answer is Sensu 1.x's: 401, empty body, ``WWW-Authenticate: Basic
realm="Restricted Area"``. RBAC then applies as for core/v2 ``silenced``.

Error bodies are empty (400, 404), as Sensu 1.x answered.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Awaitable, Callable, Final

from quart import Response

from core.identity import Principal, check_password, user_groups
from core.resources import DEFAULT_NAMESPACE, ObjectMeta, Silenced, keys, silenced_name
from core.resources.registry import ResourceType, resource_type
from cluster.store import Store

from ..auth import authenticate
from ..call import ApiCall
from ..errors import ApiError, json_body
from ..router import Router
from .auth import basic_credentials

__all__ = ["register", "classic_entry", "REALM_HEADER"]

REALM_HEADER: Final = {"WWW-Authenticate": 'Basic realm="Restricted Area"'}

#: Sensu 1.x's rules for a silencing entry (api.md §6).
CLASSIC_SUBSCRIPTION_RE: Final = re.compile(r"\A[\w.\-:]+\Z", re.ASCII)
CLASSIC_CHECK_RE: Final = re.compile(r"\A[\w.\-]+\Z", re.ASCII)

_SILENCED: ResourceType[Any] = resource_type("silenced")
_INTEGER_PARAM: Final = re.compile(r"\A[0-9]+\Z")


class _Halt(Exception):
    """Answer with ``status`` and an empty body (Sensu 1.x's ``halt``)."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers or {}


def _empty(status: int, headers: dict[str, str] | None = None) -> Response:
    resp = Response("", status=status)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


# ---------------------------------------------------------------------- authentication


async def _authenticate(call: ApiCall) -> Principal:
    """Basic, Bearer or Key; anything else (or nothing) is Sensu 1.x's 401."""
    header = call.request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        creds = basic_credentials(header)
        user = await check_password(call.store, *creds) if creds else None
        if user is None:
            raise _Halt(401, REALM_HEADER)
        return Principal(user.username, tuple(user_groups(user)))
    if header.startswith(("Bearer ", "Key ")):
        try:
            return await authenticate(call.store, header, jwt_keys=call.ctx.jwt_keys)
        except ApiError as exc:
            if exc.status == 401:
                raise _Halt(401, REALM_HEADER) from None
            raise
    raise _Halt(401, REALM_HEADER)


def _classic(handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """Authenticate, run, and turn :class:`_Halt` into an empty-bodied answer."""

    async def wrapped(call: ApiCall, **params: str) -> Response:
        try:
            call.principal = await _authenticate(call)
            return await handler(call, **params)
        except _Halt as halt:
            return _empty(halt.status, halt.headers)

    wrapped.__name__ = handler.__name__
    wrapped.__qualname__ = handler.__qualname__
    wrapped.__doc__ = handler.__doc__
    wrapped.__module__ = handler.__module__
    return wrapped


# ---------------------------------------------------------------------- shape and storage


def classic_entry(entry: Silenced, now: int) -> dict[str, Any]:
    """The 0.28 shape: seed keys in seed order, nulls for absent fields, ``expire`` counting down."""
    return {
        "expire": entry.expire_countdown(now),
        "expire_on_resolve": entry.expire_on_resolve,
        "creator": entry.creator or None,
        "reason": entry.reason or None,
        "check": entry.check or None,
        "subscription": entry.subscription or None,
        "id": entry.metadata.name,
    }


def _namespace(call: ApiCall) -> str:
    return call.args.get("namespace") or DEFAULT_NAMESPACE


async def _entries(store: Store, namespace: str, now: int) -> list[Silenced]:
    """Live entries of ``namespace``, in key (id) order."""
    try:
        prefix = keys.prefix_for("silenced", namespace)
    except ValueError:
        return []
    out: list[Silenced] = []
    for kv in (await store.range(prefix)).items:
        entry: Silenced = _SILENCED.decode(kv.value)
        if not entry.is_expired(now):
            out.append(entry)
    return out


def _paginate(call: ApiCall, items: list[dict[str, Any]]) -> Response:
    """Sensu 1.x ``pagination``: only with a numeric ``limit``; adds ``X-Pagination``."""
    raw_limit = call.args.get("limit", "")
    if not _INTEGER_PARAM.match(raw_limit):
        return json_body(items)
    limit = int(raw_limit)
    raw_offset = call.args.get("offset", "")
    offset = int(raw_offset) if _INTEGER_PARAM.match(raw_offset) else 0
    header = json.dumps({"limit": limit, "offset": offset, "total": len(items)}, separators=(",", ":"))
    return json_body(items[offset:offset + limit], headers={"X-Pagination": header})


async def _release_lease(store: Store, lease: int) -> None:
    """Revoke a lease that no key uses any more (entries get one lease each)."""
    if not lease:
        return
    info = store.lease_info(lease)
    if info is not None and not info[2]:
        await store.revoke_lease(lease)


# ---------------------------------------------------------------------- body rules


def _optional(body: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    """``body[key]`` when it is ``null``/absent or of ``kind`` (bool is not an int); else 400."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) and kind is int:
        raise _Halt(400)
    if not isinstance(value, kind):
        raise _Halt(400)
    return value


async def _body(call: ApiCall) -> dict[str, Any]:
    raw = await call.body()
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: nested past the stack
        raise _Halt(400) from None
    if not isinstance(body, dict):
        raise _Halt(400)
    return body


def _entry_from_body(body: dict[str, Any], namespace: str, now: int) -> Silenced:
    """Sensu 1.x's validation, then the core/v2 object it stands for."""
    subscription = _optional(body, "subscription", str)
    check = _optional(body, "check", str)
    expire = _optional(body, "expire", int)
    reason = _optional(body, "reason", str)
    creator = _optional(body, "creator", str)
    expire_on_resolve = _optional(body, "expire_on_resolve", bool)
    begin = _optional(body, "begin", int)
    if subscription is None and check is None:
        raise _Halt(400)
    if subscription is not None and not CLASSIC_SUBSCRIPTION_RE.match(subscription):
        raise _Halt(400)
    if check is not None and not CLASSIC_CHECK_RE.match(check):
        raise _Halt(400)
    if begin is not None and begin < 0:
        raise _Halt(400)
    entry = Silenced(
        metadata=ObjectMeta(namespace=namespace),
        subscription=subscription or "",
        check=check or "",
        expire=expire if expire is not None and expire > 0 else 0,
        expire_on_resolve=bool(expire_on_resolve),
        reason=reason or "",
        begin=begin or 0,
    )
    # creator comes from the body here (Sensu 1.x), not from the caller as on core/v2
    return entry.with_defaults(now, creator or "")


# ---------------------------------------------------------------------- handlers


@_classic
async def create_entry(call: ApiCall) -> Response:
    """201, empty body; re-posting an id replaces the entry."""
    namespace = _namespace(call)
    now = int(time.time())
    entry = _entry_from_body(await _body(call), namespace, now)
    name = entry.metadata.name
    store: Store = call.store
    if await store.get(keys.key_for("namespaces", None, namespace)) is None:
        raise _Halt(400)
    key = keys.key_for("silenced", namespace, name)
    existing = await store.get(key)
    await call.authorize("update" if existing is not None else "create", "silenced", namespace, name)
    entry.metadata.created_by = call.username
    if entry.has_expiry:
        ttl = entry.expire_at - now
        if ttl <= 0:  # already over: the entry would never be visible
            await store.delete(key)
        else:
            lease = await store.grant_lease(ttl)
            await store.put(key, _SILENCED.encode(entry), lease=lease)
    else:
        await store.put(key, _SILENCED.encode(entry))
    if existing is not None:
        await _release_lease(store, existing.lease)
    return _empty(201)


@_classic
async def list_entries(call: ApiCall) -> Response:
    namespace = _namespace(call)
    await call.authorize("list", "silenced", namespace)
    now = int(time.time())
    return _paginate(call, [classic_entry(e, now) for e in await _entries(call.store, namespace, now)])


@_classic
async def entries_by_subscription(call: ApiCall, subscription: str) -> Response:
    namespace = _namespace(call)
    await call.authorize("list", "silenced", namespace)
    now = int(time.time())
    entries = [e for e in await _entries(call.store, namespace, now) if e.subscription == subscription]
    return _paginate(call, [classic_entry(e, now) for e in entries])


@_classic
async def entries_by_check(call: ApiCall, check: str) -> Response:
    namespace = _namespace(call)
    await call.authorize("list", "silenced", namespace)
    now = int(time.time())
    entries = [e for e in await _entries(call.store, namespace, now) if e.check == check]
    return _paginate(call, [classic_entry(e, now) for e in entries])


@_classic
async def entry_by_id(call: ApiCall, id: str) -> Response:
    namespace = _namespace(call)
    await call.authorize("get", "silenced", namespace, id)
    now = int(time.time())
    try:
        kv = await call.store.get(keys.key_for("silenced", namespace, id))
    except ValueError:
        kv = None
    if kv is None:
        raise _Halt(404)
    entry: Silenced = _SILENCED.decode(kv.value)
    if entry.is_expired(now):
        raise _Halt(404)
    return json_body(classic_entry(entry, now))


@_classic
async def clear_entry(call: ApiCall) -> Response:
    """``{"id"}`` or ``{"subscription","check"}`` → 204, 404 when absent, 400 when neither."""
    body = await _body(call)
    entry_id = _optional(body, "id", str)
    subscription = _optional(body, "subscription", str)
    check = _optional(body, "check", str)
    if entry_id is None and subscription is None and check is None:
        raise _Halt(400)
    name = entry_id if entry_id is not None else silenced_name(subscription or "", check or "")
    namespace = _namespace(call)
    await call.authorize("delete", "silenced", namespace, name)
    try:
        key = keys.key_for("silenced", namespace, name)
    except ValueError:
        raise _Halt(404) from None
    store: Store = call.store
    existing = await store.get(key)
    if existing is None or not await store.delete(key):
        raise _Halt(404)
    await _release_lease(store, existing.lease)
    return _empty(204)


def register(router: Router, ctx: object) -> None:
    router.add("/silenced", {"GET": list_entries, "POST": create_entry}, public=True)
    router.add("/silenced/clear", {"POST": clear_entry}, public=True)
    router.add("/silenced/subscriptions/{subscription}", {"GET": entries_by_subscription}, public=True)
    router.add("/silenced/checks/{check}", {"GET": entries_by_check}, public=True)
    router.add("/silenced/ids/{id}", {"GET": entry_by_id}, public=True)
