"""Users and API keys: ``/api/core/v2/users[/{name}[/...]]`` and ``/api/core/v2/apikeys[/{key}]``.

Users follow api.md §2.12 and Go's ``UserController``:

* the body is never echoed: ``password`` and ``password_hash`` stay in the store;
* bcrypt (hashing and the hash/cleartext pair check) runs in a worker thread,
  because it is slow on purpose and would stall every other request;
* ``DELETE`` is a soft disable, and it also ends every session of that user at
  once (stricter than Go, allowed by the spec): ``authenticate`` already rejects
  a disabled user's tokens and keys, and deleting the sessions means that a
  later ``reinstate`` does not bring old tokens back to life;
* the sub-routes read, modify and compare-and-swap the stored record, retrying
  when another writer got there first, so two concurrent group changes never
  lose one another.

RBAC (§2.13): resource ``users`` with the user's name; a user reaching its own
record (GET, ``PUT /password``) is checked as ``localselfuser`` (the default
``system:user`` role grants that to everyone), falling back to ``users``.

API keys (§2.14) are created with a random UUID4 name and authenticate as their
user through ``Authorization: Key <uuid>`` (see :func:`api.auth.authenticate`).
Their POST failures are plain text, as in Go.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any, Awaitable, Callable

from quart import Response

from core.identity import hash_password, is_allowed, load_user, password_matches
from core.resources import APIKey, ObjectMeta, User, ValidationError, keys
from core.resources.registry import ResourceType, resource_type
from core.resources.storage import decode_dict
from core.resources.user import BCRYPT_PREFIXES
from cluster import codec
from cluster.errors import CompareFailedError
from cluster.store import KeyValue, Store

from ..call import ApiCall
from ..errors import CODE_EXISTS, CODE_INVALID, CODE_NOT_FOUND, CODE_PRECONDITION, CODE_UNAUTHENTICATED, ApiError, json_body
from ..pagination import CONTINUE_HEADER, decode_continue, parse_limit, start_key, token_for
from ..router import Router
from ..selectors import compile_selector, join_selectors

__all__ = ["register", "revoke_sessions", "etag_of", "merge_patch"]

USERS_PATH = "/api/core/v2/users"
APIKEYS_PATH = "/api/core/v2/apikeys"

#: How often a read-modify-write is retried when a concurrent writer wins the CAS.
CAS_ATTEMPTS = 8

_USERS: ResourceType[Any] = resource_type("users")
_APIKEYS: ResourceType[Any] = resource_type("apikeys")


# ---------------------------------------------------------------------- helpers shared by both families


def etag_of(wire: dict[str, Any]) -> str:
    """A strong, quoted ETag: a hash of the canonical JSON of the GET shape (§1.10)."""
    canonical = json.dumps(wire, sort_keys=True, separators=(",", ":")).encode()
    return '"' + hashlib.sha256(canonical).hexdigest()[:32] + '"'


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396: objects merge recursively, ``null`` deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _etag_list(header: str) -> list[str]:
    return [t.strip() for t in header.split(",") if t.strip()]


def check_preconditions(call: ApiCall, current_etag: str) -> None:
    """``If-Match`` / ``If-None-Match`` against the current ETag; 412 when they fail."""
    failed = ApiError(412, "precondition failed", CODE_PRECONDITION)
    if_match = call.request.headers.get("If-Match")
    if if_match is not None:
        tags = _etag_list(if_match)
        if "*" not in tags and current_etag not in tags:
            raise failed
    if_none = call.request.headers.get("If-None-Match")
    if if_none is not None:
        tags = _etag_list(if_none)
        if "*" in tags or current_etag in tags:
            raise failed


def check_patch_content_type(call: ApiCall) -> None:
    """Only RFC 7396 merge patches (or no Content-Type) are accepted (§1.10)."""
    ctype = call.request.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/json-patch+json":
        raise ApiError(400, "JSON Patch is not supported yet", CODE_INVALID)
    if ctype and ctype != "application/merge-patch+json":
        raise ApiError(400, f"unsupported Content-Type for PATCH: {ctype} (use application/merge-patch+json)",
                       CODE_INVALID)


async def _list(call: ApiCall, rtype: ResourceType[Any]) -> Response:
    """A cluster-wide list with selectors (§1.9) and ``limit``/``continue`` (§1.8).

    Selectors are applied before the limit, so a page holds ``limit`` matching
    objects and the continue token names the last one returned.
    """
    matcher = compile_selector(join_selectors(call.args.getlist("labelSelector")),
                               join_selectors(call.args.getlist("fieldSelector")))
    limit = parse_limit(call.args.get("limit"))
    start = start_key(rtype.collection, None, decode_continue(call.args.get("continue")))
    items = (await call.store.range(keys.prefix_for(rtype.collection), start_after=start)).items
    page: list[Any] = []
    more = False
    for kv in items:
        obj = rtype.decode(kv.value)
        if not matcher(rtype.labels(obj), rtype.fields(obj)):
            continue
        if limit and len(page) == limit:
            more = True
            break
        page.append(obj)
    headers = {CONTINUE_HEADER: token_for(rtype, page[-1], all_namespaces=False)} if more and page else {}
    return json_body([obj.to_wire() for obj in page], headers=headers)


async def _json(call: ApiCall) -> Any:
    """The JSON body; JSON nested past Python's recursion limit is a 400, not a 500.

    (``json.loads`` raises ``RecursionError`` there, which ``ApiCall.json`` does not map.)
    """
    try:
        return await call.json()
    except RecursionError:
        raise ApiError(400, "malformed JSON body: nested too deeply", CODE_INVALID) from None


def _created(location: str | None = None) -> Response:
    resp = Response("", status=201)
    if location:
        resp.headers["Location"] = location
    return resp


def _no_content() -> Response:
    return Response("", status=204)


# ---------------------------------------------------------------------- users: storage


def _user_key(name: str) -> str:
    return keys.key_for("users", None, name)


async def _get_user(store: Store, name: str, *, linearizable: bool = False) -> tuple[User, KeyValue]:
    """The stored user and its key/value (for CAS), or a 404."""
    kv = await store.get(_user_key(name), linearizable=linearizable)
    if kv is None:
        raise ApiError(404, "not found", CODE_NOT_FOUND)
    user: User = _USERS.decode(kv.value)
    return user, kv


async def revoke_sessions(store: Store, username: str) -> int:
    """End every login session of ``username``; returns how many were ended.

    A session's access tokens are refused as soon as its key is gone
    (:func:`api.auth.authenticate`), on every node, so this revokes tokens that
    would otherwise live up to 5 minutes more. All deletes go in one Raft entry.
    """
    prefix = keys.internal_prefix("sessions")
    doomed: list[str] = []
    for kv in (await store.range(prefix, linearizable=True)).items:
        try:
            owner = decode_dict(kv.value).get("user")
        except ValueError:
            continue
        if owner == username:
            doomed.append(kv.key)
    if doomed:
        await store.txn([], [codec.delete_op(k) for k in doomed])
    return len(doomed)


async def _modify_user(call: ApiCall, name: str, change: Callable[[User], Awaitable[User | None]]) -> User:
    """Read, change and compare-and-swap one user, retrying on concurrent writes.

    ``change`` returns the new user, or ``None`` when nothing needs writing.
    Raises 404 when the user does not exist.
    """
    for attempt in range(CAS_ATTEMPTS):
        user, kv = await _get_user(call.store, name, linearizable=attempt > 0)
        new = await change(user)
        if new is None:
            return user
        try:
            await call.store.update(kv.key, _USERS.encode(new), mod_revision=kv.mod_revision)
        except CompareFailedError:
            continue
        return new
    raise ApiError(409, f"user {name} is being modified concurrently; retry", CODE_EXISTS)


async def _authorize_user(call: ApiCall, verb: str, name: str, *, self_ok: bool = False) -> None:
    """RBAC for ``users``; ``self_ok`` lets a caller reach its own record as ``localselfuser``."""
    principal = call.principal
    if self_ok and principal is not None and principal.username == name:
        if await is_allowed(call.store, principal, verb, "localselfuser", "", name):
            return
    await call.authorize(verb, "users", "", name)


def _user_error(exc: ValidationError) -> ApiError:
    """Go answers user validation failures with the bare reason (``UserController``)."""
    return ApiError(400, exc.reason, CODE_INVALID)


async def _user_from_body(call: ApiCall) -> User:
    """Decode and validate (cheap checks only); raises 400 with Go's texts.

    ``a password or its hash is required`` comes from here; bcrypt work is left to
    :func:`_hashed`, which runs after authorization so that an unauthorized
    caller cannot make the server hash.
    """
    body = await _json(call)
    try:
        user = User.from_wire(body)
        user.validate()
    except ValidationError as exc:
        raise _user_error(exc) from None
    return user


async def _hashed(user: User) -> User:
    """The user to store: a bcrypt hash and no cleartext (bcrypt runs in a worker thread).

    Raises the 400 hash/cleartext mismatch error when both were sent and differ.
    """
    if user.needs_pair_check:
        if not await password_matches(user.password, user.password_hash):
            raise _user_error(User.hash_mismatch_error())
        return user.with_password_hash(user.password_hash)
    if user.needs_hashing:
        return user.with_password_hash(await hash_password(user.password))
    return user.with_password_hash(user.password_hash)


# ---------------------------------------------------------------------- users: handlers


async def list_users(call: ApiCall) -> Response:
    await call.authorize("list", "users")
    return await _list(call, _USERS)


async def get_user(call: ApiCall, name: str) -> Response:
    await _authorize_user(call, "get", name, self_ok=True)
    user, _ = await _get_user(call.store, name)
    wire = user.to_wire()
    return json_body(wire, headers={"ETag": etag_of(wire)})


async def create_user(call: ApiCall) -> Response:
    user = await _user_from_body(call)
    await call.authorize("create", "users", "", user.username)
    user = await _hashed(user)
    try:
        await call.store.create(_user_key(user.username), _USERS.encode(user))
    except CompareFailedError:
        raise ApiError(409, "resource already exists", CODE_EXISTS) from None
    return _created()


async def put_user(call: ApiCall, name: str) -> Response:
    await call.authorize("update", "users", "", name)
    user = await _user_from_body(call)
    if user.username != name:
        raise ApiError(400, f"the username of the resource ({user.username}) does not match the username of "
                            f"the URI ({name})", CODE_INVALID)
    user = await _hashed(user)
    await call.store.put(_user_key(name), _USERS.encode(user))
    if user.disabled:
        await revoke_sessions(call.store, name)
    return _created()


async def disable_user(call: ApiCall, name: str) -> Response:
    await call.authorize("delete", "users", "", name)

    async def change(user: User) -> User | None:
        if user.disabled:
            return None
        return User(username=user.username, groups=user.groups, disabled=True, password_hash=user.password_hash)

    await _modify_user(call, name, change)
    # always sweep, even if it was already disabled: a login racing the disable may have
    # opened a session between the two
    await revoke_sessions(call.store, name)
    return _no_content()


async def reinstate_user(call: ApiCall, name: str) -> Response:
    await call.authorize("update", "users", "", name)

    async def change(user: User) -> User | None:
        if not user.disabled:
            return None
        return User(username=user.username, groups=user.groups, disabled=False, password_hash=user.password_hash)

    await _modify_user(call, name, change)
    return _created()


async def add_group(call: ApiCall, name: str, group: str) -> Response:
    await call.authorize("update", "users", "", name)

    async def change(user: User) -> User | None:
        groups = list(user.groups or [])
        if group in groups:
            return None
        return User(username=user.username, groups=[*groups, group], disabled=user.disabled,
                    password_hash=user.password_hash)

    await _modify_user(call, name, change)
    return _created()


async def remove_group(call: ApiCall, name: str, group: str) -> Response:
    await call.authorize("delete", "users", "", name)

    async def change(user: User) -> User | None:
        groups = list(user.groups or [])
        if group not in groups:
            return None
        return User(username=user.username, groups=[g for g in groups if g != group], disabled=user.disabled,
                    password_hash=user.password_hash)

    await _modify_user(call, name, change)
    return _no_content()


async def remove_all_groups(call: ApiCall, name: str) -> Response:
    await call.authorize("delete", "users", "", name)

    async def change(user: User) -> User | None:
        if not user.groups:
            return None
        return User(username=user.username, groups=[], disabled=user.disabled, password_hash=user.password_hash)

    await _modify_user(call, name, change)
    return _no_content()


def _new_hash(body: Any) -> str:
    """The ``password_hash`` of a password body: required, and a bcrypt hash."""
    if not isinstance(body, dict):
        raise ApiError(400, "expected a JSON object", CODE_INVALID)
    new_hash = body.get("password_hash")
    if not isinstance(new_hash, str) or not new_hash:
        raise ApiError(400, "password_hash must not be empty", CODE_INVALID)
    if not new_hash.startswith(BCRYPT_PREFIXES):
        raise ApiError(400, "password_hash: must be a bcrypt hash ($2a$, $2b$ or $2y$)", CODE_INVALID)
    return new_hash


async def change_password(call: ApiCall, name: str) -> Response:
    """``{"password": <current>, "password_hash": <new>}``; a wrong current password is 401 (Go: 500)."""
    await _authorize_user(call, "update", name, self_ok=True)
    body = await _json(call)
    new_hash = _new_hash(body)
    current = body.get("password")
    if not isinstance(current, str):
        raise ApiError(400, "password must be a string", CODE_INVALID)

    async def change(user: User) -> User | None:
        if not user.password_hash or not await password_matches(current, user.password_hash):
            raise ApiError(401, "wrong current password", CODE_UNAUTHENTICATED)
        return User(username=user.username, groups=user.groups, disabled=user.disabled, password_hash=new_hash)

    await _modify_user(call, name, change)
    return _created()


async def reset_password(call: ApiCall, name: str) -> Response:
    """``{"username","password_hash"}``, unchecked (an administrator's reset); empty hash → 400."""
    await call.authorize("update", "users", "", name)
    body = await _json(call)
    new_hash = _new_hash(body)

    async def change(user: User) -> User | None:
        return User(username=user.username, groups=user.groups, disabled=user.disabled, password_hash=new_hash)

    await _modify_user(call, name, change)
    return _created()


# ---------------------------------------------------------------------- API keys


def _plain_400(message: str) -> ApiError:
    return ApiError(400, message, CODE_INVALID, plain=True)


async def _get_key(store: Store, key: str) -> tuple[APIKey, KeyValue]:
    kv = await store.get(keys.key_for("apikeys", None, key))
    if kv is None:
        raise ApiError(404, "not found", CODE_NOT_FOUND)
    apikey: APIKey = _APIKEYS.decode(kv.value)
    return apikey, kv


async def list_apikeys(call: ApiCall) -> Response:
    await call.authorize("list", "apikeys")
    return await _list(call, _APIKEYS)


async def get_apikey(call: ApiCall, key: str) -> Response:
    await call.authorize("get", "apikeys", "", key)
    apikey, _ = await _get_key(call.store, key)
    wire = apikey.to_wire()
    return json_body(wire, headers={"ETag": etag_of(wire)})


async def create_apikey(call: ApiCall) -> Response:
    """``{"username"}`` → 201 + ``Location``; failures are plain text as in Go."""
    await call.authorize("create", "apikeys")
    try:
        body = await _json(call)
    except ApiError as exc:
        raise _plain_400(exc.message) from None
    if not isinstance(body, dict):
        raise _plain_400("expected a JSON object")
    username = body.get("username")
    if not isinstance(username, str) or await load_user(call.store, username) is None:
        raise _plain_400("user does not exist")
    name = str(uuid.uuid4())
    apikey = APIKey(metadata=ObjectMeta(name=name, created_by=call.username), username=username,
                    created_at=int(time.time()))
    await call.store.create(keys.key_for("apikeys", None, name), _APIKEYS.encode(apikey))
    return _created(f"{APIKEYS_PATH}/{name}")


async def delete_apikey(call: ApiCall, key: str) -> Response:
    await call.authorize("delete", "apikeys", "", key)
    if not await call.store.delete(keys.key_for("apikeys", None, key)):
        raise ApiError(404, "not found", CODE_NOT_FOUND)
    return _no_content()


async def patch_apikey(call: ApiCall, key: str) -> Response:
    """RFC 7396 merge patch of labels and annotations (§1.10).

    The name, the owner (``username``), ``created_at`` and ``created_by`` are
    fixed: changing the owner would hand a live credential to another user.
    """
    await call.authorize("update", "apikeys", "", key)
    check_patch_content_type(call)
    patch = await _json(call)
    if not isinstance(patch, dict):
        raise ApiError(400, "a merge patch must be a JSON object", CODE_INVALID)
    for attempt in range(CAS_ATTEMPTS):
        current, kv = await _get_key(call.store, key)
        if attempt == 0:
            check_preconditions(call, etag_of(current.to_wire()))
        try:
            patched = APIKey.from_wire(merge_patch(current.to_wire(), patch))
        except ValidationError as exc:
            raise ApiError(400, f"resource is invalid: {exc.reason}", CODE_INVALID) from None
        if patched.metadata.name != current.metadata.name or patched.metadata.namespace:
            raise ApiError(400, "the name of an API key cannot be changed", CODE_INVALID)
        if patched.username != current.username or patched.created_at != current.created_at:
            raise ApiError(400, "the username and created_at of an API key cannot be changed", CODE_INVALID)
        patched.metadata.created_by = current.metadata.created_by
        try:
            patched.validate()
        except ValidationError as exc:
            raise ApiError(400, f"resource is invalid: {exc.reason}", CODE_INVALID) from None
        try:
            await call.store.update(kv.key, _APIKEYS.encode(patched), mod_revision=kv.mod_revision)
        except CompareFailedError:
            continue
        wire = patched.to_wire()
        return json_body(wire, headers={"ETag": etag_of(wire)})
    raise ApiError(409, f"API key {key} is being modified concurrently; retry", CODE_EXISTS)


# ---------------------------------------------------------------------- registration


def register(router: Router, ctx: object) -> None:
    def add(path: str, methods: dict[str, Callable[..., Awaitable[Response]]]) -> None:
        router.add(path, dict(methods))

    add(USERS_PATH, {"GET": list_users, "POST": create_user})
    add(f"{USERS_PATH}/{{name}}", {"GET": get_user, "PUT": put_user, "DELETE": disable_user})
    add(f"{USERS_PATH}/{{name}}/reinstate", {"PUT": reinstate_user})
    add(f"{USERS_PATH}/{{name}}/groups", {"DELETE": remove_all_groups})
    add(f"{USERS_PATH}/{{name}}/groups/{{group}}", {"PUT": add_group, "DELETE": remove_group})
    add(f"{USERS_PATH}/{{name}}/password", {"PUT": change_password})
    add(f"{USERS_PATH}/{{name}}/reset_password", {"PUT": reset_password})
    add(APIKEYS_PATH, {"GET": list_apikeys, "POST": create_apikey})
    add(f"{APIKEYS_PATH}/{{key}}", {"GET": get_apikey, "DELETE": delete_apikey, "PATCH": patch_apikey})
