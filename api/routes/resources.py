"""Generic core/v2 CRUD (api.md §1.2, §1.8-§1.10) and the routes of the plain resource types.

Every core/v2 collection answers the same six operations with the same status codes,
so one class, :class:`Crud`, implements them once: list (pagination and selectors), get
(with a strong ``ETag``), POST, PUT, DELETE and merge-patch PATCH. The families with
side effects (namespaces, entities, events, silenced) subclass it or reuse its helpers in
their own modules; this module registers only the types without specifics: assets,
checks, filters, handlers, hooks, mutators, pipelines, roles, rolebindings, clusterroles
and clusterrolebindings, plus tessen.

Why every write is one transaction: a namespaced write carries a compare that its
namespace exists, so a write racing a namespace delete cannot land in a deleted
namespace, and a create carries ``version == 0`` (what ``store.create`` does), so of two
concurrent creates exactly one wins. Read-modify-write routes (PATCH, the check-hook
sub-routes, entity PUT, event writes) go through :func:`cas_write`, which retries a
compare-and-swap on ``mod_revision`` so concurrent updates serialize without lost
updates, on one node or across nodes.

All-namespaces lists (``/api/core/v2/checks``): a ClusterRoleBinding granting ``list`` on
the collection shows every namespace; otherwise the result is filtered to the namespaces
where the caller may ``list`` it (through a RoleBinding), and a caller who may list it
nowhere gets 403. Go would answer 403 unless a ClusterRoleBinding allows it; filtering is
kinder to namespace admins and leaks nothing they could not list one namespace at a time.
"""

from __future__ import annotations

import copy
import hashlib
import json
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio
from quart import Response

from core.identity import is_allowed
from core.resources import TessenConfig, keys
from core.resources.registry import ResourceType, resource_type
from core.resources.storage import decode_dict, derive_cached, encode
from core.seed import TESSEN_KEY
from cluster import codec
from cluster.errors import CompareFailedError, LeaseNotFoundError
from cluster.store import KeyValue, Store

from ..call import ApiCall
from ..errors import CODE_DENIED, CODE_PRECONDITION, ApiError, already_exists, invalid, json_body, json_text, not_found
from ..pagination import CONTINUE_HEADER, UNLIMITED, decode_continue, parse_limit, start_key, token_for
from ..rbac import VERB_FOR_METHOD
from ..router import Handler, Router
from ..selectors import Matcher, compile_selector, join_selectors

__all__ = [
    "API",
    "CAS_ATTEMPTS",
    "Crud",
    "ListQuery",
    "Planned",
    "add_routes",
    "allowed_namespaces",
    "cas_write",
    "check_preconditions",
    "check_uri_meta",
    "create_object",
    "created",
    "etag_for",
    "list_page",
    "list_query",
    "list_response",
    "merge_patch",
    "missing_namespace",
    "namespace_exists",
    "namespace_key",
    "no_content",
    "now_s",
    "put_object",
    "register",
    "revoke_quietly",
    "unwrap",
    "verb_for",
]

API = "/api/core/v2"
CAS_ATTEMPTS = 10
"""Compare-and-swap attempts before a read-modify-write gives up with 409."""

GENERIC_NAMESPACED = ("assets", "checks", "filters", "handlers", "hooks", "mutators", "pipelines", "roles",
                      "rolebindings")
GENERIC_CLUSTER = ("clusterroles", "clusterrolebindings")
_LIST_CHUNK = 256


# ---------------------------------------------------------------------------------- small helpers

def now_s() -> int:
    """Unix seconds; the API, not the state machine, owns the clock for defaults."""
    return int(time.time())


def _empty(status: int) -> Response:
    resp = Response("", status=status)
    del resp.headers["Content-Type"]  # no body, so no (default text/html) type either
    return resp


def created() -> Response:
    """201 with an empty body: what Sensu answers to POST and PUT (§1.2)."""
    return _empty(201)


def no_content() -> Response:
    return _empty(204)


def etag_for(value: bytes) -> str:
    """A strong, quoted ETag: a hash of the stored bytes (stable while the object is unchanged)."""
    return '"' + hashlib.sha256(value).hexdigest()[:40] + '"'


def namespace_key(namespace: str) -> str:
    return keys.key_for("namespaces", None, namespace)


def namespace_exists(namespace: str) -> codec.Compare:
    """Transaction guard: the namespace exists when the write applies."""
    return codec.compare(namespace_key(namespace), "version", ">", 0)


def missing_namespace(namespace: str) -> ApiError:
    """Go answers 500 here; the no-500 rule makes it a 400 with Go's message (§1.2)."""
    return invalid(f"the namespace {namespace} does not exist")


def unwrap(data: Any) -> Any:
    """The bare object of a wrapped body (``{"type","api_version","metadata","spec"}``, §1.7).

    Only when ``api_version`` is present *and* ``spec`` is an object, because handlers and
    mutators have a real ``type`` field.
    """
    if isinstance(data, dict) and "api_version" in data and isinstance(data.get("spec"), dict):
        inner = dict(data["spec"])
        meta = data.get("metadata")
        if meta is not None and "metadata" not in inner:
            inner["metadata"] = meta
            if isinstance(meta, dict) and "name" not in inner and data.get("type") == "Namespace":
                inner["name"] = meta.get("name")
        return inner
    return data


def check_uri_meta(obj_namespace: str | None, obj_name: str | None, url_namespace: str | None,
                   url_name: str | None, *, what: str = "resource") -> None:
    """§1.2: the body's namespace (and name, when the URL has one) must equal the URL's.

    An empty namespace is a mismatch too: Go does not fill it in.
    """
    if url_namespace is not None and obj_namespace != url_namespace:
        raise invalid(f"the namespace of the {what} ({obj_namespace}) does not match the namespace of the URI "
                      f"({url_namespace})")
    if url_name is not None and obj_name != url_name:
        raise invalid(f"the name of the {what} ({obj_name}) does not match the name of the URI ({url_name})")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON merge patch; never mutates its arguments."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _etag_listed(header: str, etag: str) -> bool:
    for part in header.split(","):
        candidate = part.strip()
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == "*" or candidate == etag:
            return True
    return False


def check_preconditions(call: ApiCall, etag: str | None) -> None:
    """``If-Match`` / ``If-None-Match`` against the current ETag (None: absent); 412 on failure."""
    failed = ApiError(412, "precondition failed", CODE_PRECONDITION)
    if_match = call.request.headers.get("If-Match")
    if if_match is not None and (etag is None or not _etag_listed(if_match, etag)):
        raise failed
    if_none_match = call.request.headers.get("If-None-Match")
    if if_none_match is not None and etag is not None and _etag_listed(if_none_match, etag):
        raise failed


async def revoke_quietly(store: Store, lease: int) -> None:
    """Revoke a lease we no longer need; one that already expired is fine."""
    if lease:
        try:
            await store.revoke_lease(lease)
        except LeaseNotFoundError:
            pass


# ---------------------------------------------------------------------------------- writes

async def create_object(store: Store, key: str, value: bytes, *, namespace: str | None,
                        extra: Sequence[codec.Op] = (), lease: int = 0) -> int:
    """Create ``key`` (409 if it exists), atomically with ``extra`` and the namespace guard.

    The ``version == 0`` compare is ``store.create``'s: of concurrent creates exactly one
    wins. Returns the revision.
    """
    compares = [codec.compare(key, "version", "==", 0)]
    if namespace:
        compares.append(namespace_exists(namespace))
    res = await store.txn(compares, [codec.put_op(key, value, lease), *extra])
    if not res.succeeded:
        if namespace and await store.get(namespace_key(namespace)) is None:
            raise missing_namespace(namespace)
        raise already_exists()
    return res.revision


async def put_object(store: Store, key: str, value: bytes, *, namespace: str | None,
                     extra: Sequence[codec.Op] = (), lease: int = 0) -> int:
    """Create or replace ``key`` (with ``extra``), guarded by the namespace's existence."""
    compares = [namespace_exists(namespace)] if namespace else []
    res = await store.txn(compares, [codec.put_op(key, value, lease), *extra])
    if not res.succeeded:
        raise missing_namespace(namespace or "")
    return res.revision


@dataclass
class Planned:
    """What one attempt of :func:`cas_write` writes: the value, extra ops, and a result."""

    value: bytes
    extra: list[codec.Op] = field(default_factory=list)
    result: Any = None


async def cas_write(store: Store, key: str, plan: Callable[[KeyValue | None], Awaitable[Planned]], *,
                    namespace: str | None = None) -> Planned:
    """Read ``key``, let ``plan`` compute the new value, write it if nobody wrote in between.

    ``plan`` sees the current entry (None when absent) and may raise ApiError (404, 409,
    412, 400) to stop. On a lost race the whole read-plan-write is redone, with a short
    random backoff so two nodes do not collide forever. After :data:`CAS_ATTEMPTS` the
    CompareFailedError reaches the client as a 409. Reads are local, and a failed compare
    returns only after this node applied the winning write, so the re-read sees it.
    """
    last: CompareFailedError | None = None
    for attempt in range(CAS_ATTEMPTS):
        current = await store.get(key)
        planned = await plan(current)
        revision = current.mod_revision if current is not None else 0
        compares = [codec.compare(key, "mod", "==", revision)]
        if namespace:
            compares.append(namespace_exists(namespace))
        res = await store.txn(compares, [codec.put_op(key, planned.value), *planned.extra])
        if res.succeeded:
            return planned
        if namespace and await store.get(namespace_key(namespace)) is None:
            raise missing_namespace(namespace)
        now = await store.get(key)
        last = CompareFailedError(key, revision, now.mod_revision if now else 0)
        await trio.sleep(random.uniform(0, 0.005 * (attempt + 1)))
    assert last is not None
    raise last


# ---------------------------------------------------------------------------------- reads

@dataclass(frozen=True)
class ListQuery:
    """``limit``, ``continue`` and the compiled selectors of one list request."""

    limit: int
    token: str | None
    match: Matcher


def list_query(call: ApiCall, *, paginate: bool = True) -> ListQuery:
    """Parse the list parameters; a bad selector raises SelectorError (400) before any read."""
    args = call.args
    match = compile_selector(join_selectors(args.getlist("labelSelector")),
                             join_selectors(args.getlist("fieldSelector")))
    if not paginate:
        return ListQuery(UNLIMITED, None, match)
    return ListQuery(parse_limit(args.get("limit")), args.get("continue"), match)


async def list_page(store: Store, rtype: ResourceType[Any], prefix: str, query: ListQuery, *,
                    namespace: str | None, all_namespaces: bool,
                    include: Callable[[Any], bool] | None = None) -> tuple[list[Any], str | None]:
    """One page of ``prefix`` in key order, filtered, plus the next ``Sensu-Continue`` token.

    The token is issued only when another matching item exists, so a client never gets
    a last, empty page.
    """
    token = decode_continue(query.token, all_namespaces=all_namespaces)
    start = start_key(rtype.collection, namespace, token)
    out: list[Any] = []
    while True:
        res = await store.range(prefix, start_after=start, limit=_LIST_CHUNK)
        for kv in res.items:
            obj = rtype.decode(kv.value)
            if include is not None and not include(obj):
                continue
            if not query.match(rtype.labels(obj), rtype.fields(obj)):
                continue
            if query.limit and len(out) == query.limit:
                return out, token_for(rtype, out[-1], all_namespaces=all_namespaces)
            out.append(obj)
        if not res.more or not res.items:
            return out, None
        start = res.items[-1].key


def list_response(objs: list[Any], token: str | None) -> Response:
    return json_body([obj.to_wire() for obj in objs], headers={CONTINUE_HEADER: token} if token else None)


async def allowed_namespaces(call: ApiCall, collection: str, verb: str = "list") -> set[str] | None:
    """Namespaces whose ``collection`` the caller may ``verb``; None means all of them.

    Raises 403 when there is none (see the module docstring for the choice).
    """
    assert call.principal is not None
    if await is_allowed(call.store, call.principal, verb, collection):
        return None
    allowed: set[str] = set()
    for kv in (await call.store.range(keys.prefix_for("namespaces"))).items:
        ns = keys.name_from_key(kv.key)
        if await is_allowed(call.store, call.principal, verb, collection, ns):
            allowed.add(ns)
    if not allowed:
        raise ApiError(403, "unauthorized to perform action", CODE_DENIED)
    return allowed


# ---------------------------------------------------------------------------------- the CRUD class

class Crud:
    """The six §1.2 operations of one collection; subclasses override the type specifics.

    Handlers take the route placeholders as keyword arguments: ``ns`` (namespaced types)
    and ``name``.
    """

    def __init__(self, collection: str) -> None:
        self.collection = collection
        self.rtype: ResourceType[Any] = resource_type(collection)

    # -- keys and decoding ------------------------------------------------------------------

    def key(self, ns: str | None, name: str) -> str:
        return keys.key_for(self.collection, ns if self.rtype.namespaced else None, name)

    def prefix(self, ns: str | None) -> str:
        return keys.prefix_for(self.collection, ns if self.rtype.namespaced else None)

    async def read_body(self, call: ApiCall) -> Any:
        """The request body decoded as this type (400 naming the field on any type error)."""
        return self.rtype.from_wire(unwrap(await call.json()))

    def check_uri(self, obj: Any, ns: str | None, name: str | None) -> None:
        check_uri_meta(self.rtype.namespace_of(obj) if self.rtype.namespaced else None,
                       self.rtype.name_of(obj), ns if self.rtype.namespaced else None, name)

    def prepare(self, call: ApiCall, obj: Any) -> Any:
        """Validate and stamp ``created_by`` (§1.2: every stored write, whatever the client said)."""
        obj.validate()
        meta = getattr(obj, "metadata", None)
        if meta is not None:
            meta.created_by = call.username
        return obj

    def wire(self, obj: Any) -> Any:
        return obj.to_wire()

    # -- reads -----------------------------------------------------------------------------

    async def list_items(self, call: ApiCall, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=False), self.collection, ns or "")
        query = list_query(call)
        objs, token = await list_page(call.store, self.rtype, self.prefix(ns), query, namespace=ns,
                                      all_namespaces=False)
        return list_response(objs, token)

    async def list_all(self, call: ApiCall) -> Response:
        """``/api/core/v2/{collection}``: every namespace the caller may list."""
        allowed = await allowed_namespaces(call, self.collection)
        query = list_query(call)
        include = None if allowed is None else (lambda obj: self.rtype.namespace_of(obj) in allowed)
        objs, token = await list_page(call.store, self.rtype, keys.prefix_for(self.collection), query,
                                      namespace=None, all_namespaces=True, include=include)
        return list_response(objs, token)

    async def get(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=True), self.collection, ns or "", name)
        kv = await call.store.get(self.key(ns, name))
        if kv is None:
            raise not_found()
        # the body depends only on the stored bytes: encoded once per revision
        body, etag = derive_cached(call.store, kv, self, self._get_body)
        return json_text(body, headers={"ETag": etag})

    def _get_body(self, value: bytes) -> tuple[str, str]:
        return json.dumps(self.wire(self.rtype.decode(value)), separators=(",", ":")), etag_for(value)

    # -- writes ----------------------------------------------------------------------------

    async def create(self, call: ApiCall, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=False), self.collection, ns or "")
        obj = await self.read_body(call)
        self.check_uri(obj, ns, None)
        obj = self.prepare(call, obj)
        await create_object(call.store, self.rtype.key_of(obj), self.rtype.encode(obj), namespace=ns)
        return created()

    async def replace(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=True), self.collection, ns or "", name)
        obj = await self.read_body(call)
        self.check_uri(obj, ns, name)
        obj = self.prepare(call, obj)
        await put_object(call.store, self.rtype.key_of(obj), self.rtype.encode(obj), namespace=ns)
        return created()

    async def delete(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        await call.authorize(verb_for(call, named=True), self.collection, ns or "", name)
        if not await call.store.delete(self.key(ns, name)):
            raise not_found()
        return no_content()

    async def patch(self, call: ApiCall, name: str, ns: str | None = None) -> Response:
        """RFC 7396 merge patch of the stored form, re-validated, under If-Match (§1.10)."""
        await call.authorize(verb_for(call, named=True), self.collection, ns or "", name)
        content_type = call.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
        if content_type == "application/json-patch+json":
            raise invalid("JSON Patch is not supported yet")
        if content_type not in ("", "application/merge-patch+json"):
            raise invalid(f"unsupported content type {content_type!r}: use application/merge-patch+json")
        patch = await call.json()
        if not isinstance(patch, dict):
            raise invalid("a merge patch must be a JSON object")

        async def plan(current: KeyValue | None) -> Planned:
            if current is None:
                raise not_found()
            check_preconditions(call, etag_for(current.value))
            obj = self.rtype.cls.from_store(merge_patch(decode_dict(current.value), patch))
            self.check_uri(obj, ns, name)
            obj = self.prepare(call, obj)
            return Planned(self.rtype.encode(obj), result=obj)

        done = await cas_write(call.store, self.key(ns, name), plan)
        return json_body(self.wire(done.result), headers={"ETag": etag_for(done.value)})

    # -- routing ---------------------------------------------------------------------------

    def register(self, router: Router, *, all_namespaces: bool = True) -> None:
        """The collection's routes; namespaced types also get the all-namespaces list."""
        item: dict[str, Any] = {"GET": self.get, "PUT": self.replace, "DELETE": self.delete}
        if self.rtype.patchable:
            item["PATCH"] = self.patch
        if self.rtype.namespaced:
            add_routes(router, f"{API}/namespaces/{{ns}}/{self.collection}",
                       {"GET": self.list_items, "POST": self.create})
            add_routes(router, f"{API}/namespaces/{{ns}}/{self.collection}/{{name}}", item)
            if all_namespaces:
                add_routes(router, f"{API}/{self.collection}", {"GET": self.list_all})
        else:
            add_routes(router, f"{API}/{self.collection}", {"GET": self.list_items, "POST": self.create})
            add_routes(router, f"{API}/{self.collection}/{{name}}", item)


def add_routes(router: Router, path: str, methods: dict[str, Handler], *, public: bool = False) -> None:
    """``router.add`` for one resource path (the dispatcher reads every body before routing)."""
    router.add(path, dict(methods), public=public)


def verb_for(call: ApiCall, *, named: bool) -> str:
    """The RBAC verb of a request: the method's, and ``list`` for a GET without a name."""
    verb = VERB_FOR_METHOD.get(call.request.method, "get")
    return "list" if verb == "get" and not named else verb


# ---------------------------------------------------------------------------------- tessen

async def tessen_get(call: ApiCall) -> Response:
    """Never a 404: the Ansible ``tessen`` module needs a 200 even before the seed (§2.15)."""
    await call.authorize("get", "tessen")
    kv = await call.store.get(TESSEN_KEY)
    config = TessenConfig.from_store(decode_dict(kv.value)) if kv is not None else TessenConfig()
    return json_body(config.to_wire())


async def tessen_put(call: ApiCall) -> Response:
    await call.authorize("update", "tessen")
    config = TessenConfig.from_wire(unwrap(await call.json()))
    config.validate()
    await call.store.put(TESSEN_KEY, encode(config))
    return json_body(config.to_wire())


async def tessen_metrics(call: ApiCall) -> Response:
    """Public and accept-and-drop: we report nothing anywhere (§2.15)."""
    await call.body()
    return no_content()


# ---------------------------------------------------------------------------------- registration

def register(router: Router, ctx: object) -> None:
    """Generic CRUD for the types without specifics, and tessen.

    Patterns are literal per collection, so these never shadow the specific families
    (namespaces, entities, events, silenced, checks sub-routes) registered elsewhere.
    """
    for collection in GENERIC_NAMESPACED + GENERIC_CLUSTER:
        Crud(collection).register(router)
    add_routes(router, f"{API}/tessen", {"GET": tessen_get, "PUT": tessen_put})
    add_routes(router, f"{API}/tessen/metrics", {"POST": tessen_metrics}, public=True)
