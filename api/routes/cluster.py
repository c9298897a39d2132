"""``/api/core/v2/cluster/members[/{hexid}]`` and ``/api/core/v2/cluster/id`` (api.md §4).

Sensu Go proxies these to etcd's cluster API; we map them onto pysyncobj's
dynamic membership plus the member-name registry kept in the store
(:data:`cluster.membership.MEMBERS_PREFIX`), because pysyncobj only knows
``host:port`` addresses while ``sensuctl`` shows names, ids and peer URLs.

How the etcd operations map:

* **list**: the Raft configuration as this node applied it, named through the
  registry (:func:`api.health.cluster_members`), in etcd's
  ``MemberListResponse`` shape. ``clientURLs`` is omitted (we do not know other
  members' API URLs) and, as etcd does, so is every zero or empty field.
* **add** (``POST ?peer-addrs=<url>``): the member is written into the registry
  *under its address as name* (etcd also knows no name until the member
  starts), then added to Raft. When the new node starts (with
  ``--etcd-initial-cluster-state existing``), ``backend/node.py::_register_members``
  overwrites that entry with its real name. Its id therefore changes once,
  when it registers, because our ids derive from name + peer URL.
* **update** (``PUT /{hexid}?peer-addrs=``): pysyncobj identifies a member by its
  address, so a peer URL cannot change in place; the same URL is a no-op 200,
  another one is a plain-text 400 ``changing peer URLs is not supported``
  (remove the member and add it again instead).
* **remove** (``DELETE /{hexid}``): removed from Raft, then from the registry.
  The member serving the request cannot remove itself (pysyncobj ignores a
  node's removal of itself, which would leave it believing it is still a
  member): send the request to another member.

Authorization: these paths name no resource, so only a rule on resource ``*``
reaches them (api.md §2.13) — in practice the ``cluster-admin`` role. We ask
RBAC about resource ``*`` itself, which only a ``*`` rule can match, so a role
that lists some resource literally called ``cluster`` does not get in.

Failures are plain text (message + newline) as in Go. Deliberate deviations
from Go's blanket 500: client mistakes get 400/404/409, a ``?timeout=`` that
runs out is a 504, and store failures keep the error table's status (503 with
``Retry-After`` when there is no leader).
"""

from __future__ import annotations

import json
from typing import Any

import trio
from quart import Response

from core.seed import CLUSTER_ID_KEY
from cluster.errors import StoreError
from cluster.membership import Member, encode_member, member_key, peer_address

from ..call import ApiCall
from ..errors import CODE_DEADLINE, CODE_EXISTS, CODE_INTERNAL, CODE_INVALID, CODE_NOT_FOUND, ApiError, json_body, response_for
from ..health import cluster_members
from ..router import Router

__all__ = ["register", "member_list_payload", "CLUSTER_RESOURCE"]

MEMBERS_PATH = "/api/core/v2/cluster/members"
ID_PATH = "/api/core/v2/cluster/id"

#: The RBAC resource checked for every cluster route: only a ``*`` rule matches it.
CLUSTER_RESOURCE = "*"
#: ``?timeout=`` default, in seconds, as in Sensu Go.
DEFAULT_TIMEOUT_S = 3


def _plain(status: int, message: str, code: int = CODE_INVALID) -> ApiError:
    return ApiError(status, message, code, plain=True)


def _timeout(call: ApiCall) -> int:
    """``?timeout=<int seconds>``; a bad value is a plain-text 400 (api.md §1.4)."""
    raw = call.args.get("timeout")
    if raw is None or raw == "":
        return DEFAULT_TIMEOUT_S
    try:
        value = int(raw)
    except ValueError:
        raise _plain(400, f"bad timeout ({raw!r} is not an integer number of seconds)") from None
    if value <= 0:
        raise _plain(400, f"bad timeout ({raw!r} must be positive)")
    return value


def _member_wire(m: Member) -> dict[str, Any]:
    """etcd's ``Member``: zero or empty fields omitted; no ``clientURLs`` known."""
    out: dict[str, Any] = {"ID": m.id}
    if m.name:
        out["name"] = m.name
    out["peerURLs"] = [m.peer_url]
    return out


async def member_list_payload(call: ApiCall) -> tuple[dict[str, Any], list[Member]]:
    """``{"header", "members"}`` as etcd's ``MemberListResponse``, and the members."""
    store = call.store
    members = await cluster_members(store, call.ctx.initial_members)
    status = store.raft_status()
    self_address = store.self_address
    self_id = next((m.id for m in members if m.address == self_address), 0)
    header = {k: v for k, v in (("cluster_id", call.ctx.cluster_id), ("member_id", self_id),
                                ("raft_term", status.term)) if v}
    return {"header": header, "members": [_member_wire(m) for m in members]}, members


async def _peer_address_arg(call: ApiCall) -> tuple[str, str]:
    """The one ``peer-addrs`` URL (query or form value) and its ``host:port``."""
    raw = call.args.get("peer-addrs")
    if raw is None:
        form = await call.request.form
        raw = form.get("peer-addrs")
    if not raw:
        raise _plain(400, "missing peer-addrs form value")
    urls = [u.strip() for u in raw.split(",") if u.strip()]
    try:
        addresses = {peer_address(u) for u in urls}
    except ValueError as exc:
        raise _plain(400, f"invalid peer-addrs: {exc}") from None
    if len(addresses) != 1:
        raise _plain(400, "a member has exactly one peer address here (pysyncobj); got "
                          f"{', '.join(sorted(addresses)) or 'none'}")
    return urls[0], addresses.pop()


def _parse_id(hexid: str) -> int:
    try:
        value = int(hexid, 16)
    except ValueError:
        raise _plain(400, f"bad id ({hexid!r} is not a hexadecimal member id)") from None
    if value < 0 or value >= 1 << 64:
        raise _plain(400, f"bad id ({hexid!r} is out of range)")
    return value


async def _find(call: ApiCall, hexid: str) -> Member:
    wanted = _parse_id(hexid)
    members = await cluster_members(call.store, call.ctx.initial_members)
    for m in members:
        if m.id == wanted:
            return m
    raise _plain(404, f"member {wanted:x} not found", CODE_NOT_FOUND)


async def _run(call: ApiCall, verb: str, work: Any) -> Response:
    """Authorize, then run ``work()`` under ``?timeout=``; every failure as plain text."""
    timeout = _timeout(call)
    await call.authorize(verb, CLUSTER_RESOURCE)
    try:
        with trio.fail_after(timeout):
            result: Response = await work()
            return result
    except trio.TooSlowError:
        raise _plain(504, f"timed out after {timeout}s; the membership change may still be applied",
                     CODE_DEADLINE) from None
    except StoreError as exc:
        mapped = response_for(exc)
        raise _plain(mapped.status_code, f"{exc}" or type(exc).__name__, CODE_INTERNAL) from None


async def list_members(call: ApiCall) -> Response:
    async def work() -> Response:
        body, _ = await member_list_payload(call)
        return json_body(body)

    return await _run(call, "list", work)


async def add_member(call: ApiCall) -> Response:
    async def work() -> Response:
        peer_url, address = await _peer_address_arg(call)
        if address in call.store.members():
            raise _plain(409, f"a member with peer address {address} already exists", CODE_EXISTS)
        member = Member(address, peer_url)  # the name is unknown until the node registers itself
        registry_key = member_key(address)
        had_entry = await call.store.get(registry_key) is not None
        await call.store.put(registry_key, encode_member(member))
        try:
            await call.store.add_member(address)
        except BaseException:
            if not had_entry:
                with trio.CancelScope(shield=True), trio.move_on_after(2):
                    await call.store.delete(registry_key)
            raise
        body, _ = await member_list_payload(call)
        body["member"] = {"ID": member.id, "peerURLs": [peer_url]}
        return json_body({"header": body["header"], "member": body["member"], "members": body["members"]})

    return await _run(call, "create", work)


async def update_member(call: ApiCall, hexid: str) -> Response:
    async def work() -> Response:
        peer_url, address = await _peer_address_arg(call)
        member = await _find(call, hexid)
        if address != member.address:
            raise _plain(400, "changing peer URLs is not supported (pysyncobj knows members by address): "
                              "remove the member and add it again")
        if peer_url != member.peer_url:
            await call.store.put(member_key(address), encode_member(Member(member.name, peer_url)))
        body, _ = await member_list_payload(call)
        return json_body(body)

    return await _run(call, "update", work)


async def remove_member(call: ApiCall, hexid: str) -> Response:
    async def work() -> Response:
        member = await _find(call, hexid)
        if member.address == call.store.self_address:
            raise _plain(400, f"member {member.name} is serving this request and cannot remove itself; "
                              "send the request to another member")
        await call.store.remove_member(member.address)
        await call.store.delete(member_key(member.address))
        body, _ = await member_list_payload(call)
        return json_body(body)

    return await _run(call, "delete", work)


async def cluster_id(call: ApiCall) -> Response:
    """The cluster's UUID as a JSON string plus a newline; ``sensuctl cluster id`` prints it raw."""
    async def work() -> Response:
        kv = await call.store.get(CLUSTER_ID_KEY)
        if kv is None:
            raise _plain(503, "the cluster is not initialized yet (run sensu-backend init)", CODE_INTERNAL)
        text = json.dumps(kv.value.decode()) + "\n"
        resp = Response(text, status=200, content_type="application/json")
        resp.headers["X-Content-Type-Options"] = "nosniff"
        return resp

    return await _run(call, "get", work)


def register(router: Router, ctx: object) -> None:
    router.add(MEMBERS_PATH, {"GET": list_members, "POST": add_member})
    router.add(f"{MEMBERS_PATH}/{{hexid}}", {"PUT": update_member, "DELETE": remove_member})
    router.add(ID_PATH, {"GET": cluster_id})
