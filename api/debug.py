"""Store debugging endpoints, served only with ``--debug`` on ``debug-listen-address``.

Sensu's ``--debug`` exposes Go's pprof on 127.0.0.1:6060; ours exposes the
replicated store itself, for operators and for the store's end-to-end tests:
raw key reads and writes, leases, Raft status, membership changes and a
streaming prefix watch. Values travel as UTF-8 text (or ``value_b64``). It
binds to loopback by default and must never be exposed.
"""

from __future__ import annotations

import base64
import json
from typing import Any, AsyncIterator

import trio
from quart import Response, request
from quart_trio import QuartTrio

from cluster.errors import CompareFailedError, LeaseNotFoundError, StoreError, WatchLaggedError
from cluster.membership import Member, encode_member, member_key, peer_address
from cluster.statemachine import EVENT_PUT, KeyValue
from cluster.store import Store

__all__ = ["create_debug_app"]


def _kv(kv: KeyValue) -> dict[str, Any]:
    try:
        text: Any = kv.value.decode()
    except UnicodeDecodeError:
        text = None
    return {
        "key": kv.key,
        "value": text,
        "value_b64": base64.b64encode(kv.value).decode(),
        "create_revision": kv.create_revision,
        "mod_revision": kv.mod_revision,
        "version": kv.version,
        "lease": kv.lease,
    }


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json")


def create_debug_app(store: Store) -> QuartTrio:
    """The debug app over ``store``: Raft status, raw keys, leases, membership and a prefix watch."""
    app = QuartTrio("sensu-debug")

    @app.errorhandler(StoreError)
    async def store_error(exc: StoreError) -> Response:
        status = 409 if isinstance(exc, CompareFailedError) else 404 if isinstance(exc, LeaseNotFoundError) else 503
        return _json({"message": str(exc), "type": type(exc).__name__}, status)

    @app.get("/debug/raft")
    async def raft() -> Response:
        st = store.raft_status()
        return _json({**st.__dict__, "store": store.statistics()})

    _add_kv_routes(app, store)
    _add_lease_routes(app, store)
    _add_member_routes(app, store)
    _add_watch_route(app, store)
    return app


def _add_kv_routes(app: QuartTrio, store: Store) -> None:
    """Raw key reads, writes (optionally compare-and-swap on ``mod_revision``), deletes and ranges."""

    @app.get("/debug/store/kv")
    async def get_key() -> Response:
        kv = await store.get(request.args["key"], linearizable=request.args.get("linearizable") == "true")
        return _json(_kv(kv)) if kv else _json({"message": "not found"}, 404)

    @app.put("/debug/store/kv")
    async def put_key() -> Response:
        key = request.args["key"]
        value = await request.get_data(cache=True, as_text=False, parse_form_data=False)  # bytes (Quart's defaults)
        lease = int(request.args.get("lease", "0"))
        if "mod_revision" in request.args:
            rev = await store.update(key, value, mod_revision=int(request.args["mod_revision"]), lease=lease)
        else:
            rev = await store.put(key, value, lease=lease)
        return _json({"revision": rev})

    @app.delete("/debug/store/kv")
    async def delete_key() -> Response:
        existed = await store.delete(request.args["key"])
        return _json({"deleted": existed})

    @app.get("/debug/store/range")
    async def range_() -> Response:
        res = await store.range(
            request.args.get("prefix", "/"),
            limit=int(request.args.get("limit", "0")),
            start_after=request.args.get("start_after"),
            linearizable=request.args.get("linearizable") == "true",
        )
        return _json({"items": [_kv(kv) for kv in res.items], "more": res.more, "revision": res.revision})


def _add_lease_routes(app: QuartTrio, store: Store) -> None:
    @app.post("/debug/store/lease")
    async def grant() -> Response:
        lease_id = await store.grant_lease(float(request.args["ttl"]))
        return _json({"id": lease_id})

    @app.post("/debug/store/lease/keepalive")
    async def keepalive() -> Response:
        deadline = await store.keepalive_lease(int(request.args["id"]))
        return _json({"deadline": deadline})


def _add_member_routes(app: QuartTrio, store: Store) -> None:
    """Membership changes: the member's key and the Raft configuration change together."""

    @app.post("/debug/cluster/members")
    async def add_member() -> Response:
        member = Member(request.args["name"], request.args["peer_url"])
        await store.put(member_key(member.address), encode_member(member))
        await store.add_member(member.address)
        return _json({"added": member.address})

    @app.delete("/debug/cluster/members")
    async def remove_member() -> Response:
        address = peer_address(request.args["peer_url"])
        await store.remove_member(address)
        await store.delete(member_key(address))
        return _json({"removed": address})


def _add_watch_route(app: QuartTrio, store: Store) -> None:
    @app.get("/debug/store/watch")
    async def watch() -> Response:
        prefix = request.args.get("prefix", "/")
        start = request.args.get("start_revision")

        if not start:
            await store.sync_reads()  # a watch from "now" starts no older than any acknowledged write

        resp = Response(_watch_lines(store, prefix, start), content_type="application/x-ndjson")
        resp.timeout = None
        return resp


async def _watch_lines(store: Store, prefix: str, start: str | None) -> AsyncIterator[bytes]:
    """The watch as NDJSON: a header line, one line per change, an empty line each idle second.

    Ends with a ``lagged`` line when the watcher fell behind the retained history.
    """
    with store.watch(prefix, start_revision=int(start) if start else None) as watcher:
        yield json.dumps({"watching": prefix, "revision": store.revision}).encode() + b"\n"
        while True:
            try:
                with trio.move_on_after(1.0):
                    events = await watcher.receive()
                    for e in events:
                        yield json.dumps({
                            "revision": e.revision,
                            "type": "PUT" if e.kind == EVENT_PUT else "DELETE",
                            "key": e.key,
                            "value": e.value.decode(errors="replace"),
                        }).encode() + b"\n"
                    continue
                yield b"\n"  # keep the stream visibly alive
            except WatchLaggedError as exc:
                yield json.dumps({"lagged": exc.revision}).encode() + b"\n"
                return
