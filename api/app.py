"""The REST API application: a quart-trio app whose HTTP requests take a short path.

The app is a :class:`~quart_trio.QuartTrio` instance served by hypercorn
(lifespan, configuration and the ASGI entry point are Quart's). Its HTTP
requests go through :class:`ApiDispatch`, installed with Quart's documented
middleware hook (``app.asgi_app = middleware(app.asgi_app)``), straight to
:class:`~api.router.Router` on the raw path. Why: Quart's own routing decodes
``%2F`` before matching, which would break asset and silence names (api.md
§1.1), so every request went to our router through one catch-all route
anyway, and Quart's per-request machinery (request context, werkzeug request
parsing, response wrapping) cost about a third of a GET's CPU (docs/
performance.md). Handlers still build ``quart.Response`` objects, which the
dispatcher sends over ASGI.
For every non-public route the dispatcher authenticates first (``Bearer`` or
``Key``); handlers authorize explicitly with :meth:`api.call.ApiCall.authorize`,
because only they know the resource, namespace and name. Every exception
becomes a response through :func:`api.errors.response_for`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Coroutine, cast

from quart import Response
from quart_trio import QuartTrio

from .auth import authenticate
from .bootstrap import register_bootstrap
from .call import ApiCall, ApiRequest, Receive, Scope, Send
from .context import ApiContext
from .errors import CODE_INVALID, error_response, json_body, response_for
from .health import health_payload, version_payload
from .intake_metrics import intake_families
from .metrics import ApiMetrics, render
from .router import Router, split_raw_path
from .routes import all_families
from .sensu_go_metrics import sensu_go_families

if TYPE_CHECKING:
    from hypercorn.typing import ASGIReceiveCallable, ASGISendCallable
    from hypercorn.typing import Scope as TypedScope

__all__ = ["create_app", "json_response", "error_response", "ApiDispatch", "AsgiApp", "plain_asgi"]

logger = logging.getLogger(__name__)

json_response = json_body

#: An ASGI application as the API and the dashboard call one: scope and messages are plain dicts.
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]
#: An ASGI application as Quart types one (hypercorn's TypedDicts for the scope and the messages).
QuartAsgiApp = Callable[["TypedScope", "ASGIReceiveCallable", "ASGISendCallable"], Coroutine[Any, Any, None]]


def plain_asgi(app: QuartAsgiApp) -> AsgiApp:
    """A Quart ASGI callable, seen with the plain-dict types (the same callable, unwrapped).

    ASGI scopes and messages are dicts at run time; hypercorn's TypedDicts
    and our ``dict[str, Any]`` describe the same objects, so only the static
    type changes here, at the one place where Quart's types meet ours.
    """
    return cast(AsgiApp, app)


class BodyTooLarge(Exception):
    pass


def needs_fresh_state(method: str, headers: Any) -> bool:
    """Whether a request decides from this node's local state, so that state must be fresh first.

    Reads answer from it; a merge patch reads the stored object and may
    answer 404; a request with ``If-Match`` or ``If-None-Match`` may answer
    412. Each of those answers is a claim about the current state, so it must
    not come from a node that is behind or no longer leads: the read barrier
    (:meth:`cluster.store.Store.sync_reads`) runs first. Other writes decide
    inside the log (compare-and-swap transactions) and need no barrier.
    """
    if method in ("GET", "HEAD", "PATCH"):
        return True
    return headers.get("If-Match") is not None or headers.get("If-None-Match") is not None


class ApiDispatch:
    """ASGI middleware around the Quart app: HTTP requests to the router, the rest to Quart."""

    def __init__(self, inner: AsgiApp, ctx: ApiContext, router: Router,
                 metrics: ApiMetrics) -> None:
        self.inner = inner
        self.ctx = ctx
        self.router = router
        self.metrics = metrics
        self._limit = int(ctx.settings.api_request_limit or 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # lifespan (and websockets, which the API has none of): Quart's
            await self.inner(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        try:
            body = await self._read_body(scope, receive)
        except BodyTooLarge:
            resp = error_response(413, f"request body exceeds {self._limit} bytes", CODE_INVALID,
                                  {"Connection": "close"})
            self.metrics.observe(method, "unmatched", 413, time.perf_counter() - started)
            await self._send(send, resp, method)
            return
        request = ApiRequest(scope, body)
        route_name = "unmatched"
        try:
            segments = split_raw_path(scope.get("raw_path") or scope.get("path", "/").encode())
            found = self.router.resolve(segments) if segments is not None else None
            if found is None:
                resp = error_response(404, "not found", 2)
            else:
                route, params = found
                route_name = "/" + "/".join(route.pattern)
                handler = route.methods.get(method)
                if handler is None and method == "HEAD":
                    handler = route.methods.get("GET")
                if handler is None:
                    resp = Response("", status=405)
                else:
                    principal = None
                    if not route.public:
                        if needs_fresh_state(method, request.headers):
                            await self.ctx.store.sync_reads()
                        principal = await authenticate(self.ctx.store, request.headers.get("Authorization", ""),
                                                      jwt_keys=self.ctx.jwt_keys)
                    resp = await handler(ApiCall(self.ctx, request, principal, route_name), **params)
        except Exception as exc:
            resp = response_for(exc, method=method, path=request.path)
        self.metrics.observe(method, route_name, resp.status_code, time.perf_counter() - started)
        await self._send(send, resp, method)

    async def _read_body(self, scope: Scope, receive: Receive) -> bytes:
        """The whole body, read before any answer: hypercorn cannot reuse a
        keep-alive connection whose request body was left unread, and a
        401/404/405 is often decided before a handler runs."""
        for name, value in scope.get("headers") or ():
            if name == b"content-length":
                try:
                    if self._limit and int(value) > self._limit:
                        raise BodyTooLarge
                except ValueError:
                    pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # http.disconnect
                break
            chunk = message.get("body") or b""
            size += len(chunk)
            if self._limit and size > self._limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body"):
                break
        return b"".join(chunks)

    @staticmethod
    async def _send(send: Send, resp: Response, method: str) -> None:
        body = await resp.get_data()
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in resp.headers.items()]
        await send({"type": "http.response.start", "status": resp.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})


def create_app(ctx: ApiContext) -> QuartTrio:
    """The API app: every route on one :class:`Router`, served by :class:`ApiDispatch`."""
    app = QuartTrio(__name__)
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    router = Router()
    metrics = ApiMetrics()
    app.extensions["sensu_router"] = router
    app.extensions["sensu_ctx"] = ctx
    ctx.services.setdefault("api_metrics", metrics)

    _add_node_routes(router, ctx, metrics)

    register_bootstrap(router, ctx)
    for register in all_families():
        register(router, ctx)

    # Quart's documented middleware hook: mypy cannot type a method replaced on the instance, nor
    # ApiDispatch's plain-dict ASGI types against hypercorn's TypedDicts (see plain_asgi)
    app.asgi_app = ApiDispatch(plain_asgi(app.asgi_app), ctx, router, metrics)  # type: ignore[method-assign,assignment]
    return app


def _add_node_routes(router: Router, ctx: ApiContext, metrics: ApiMetrics) -> None:
    """The public routes about this node: ``/health``, ``/version``, ``/ready`` and ``/metrics``."""

    async def health(call: ApiCall) -> Response:
        body, status = await health_payload(ctx.store, ctx.initial_members, ctx.node_name, ctx.cluster_id)
        return json_body(body, status)

    async def version(call: ApiCall) -> Response:
        return json_body(version_payload())

    async def ready(call: ApiCall) -> Response:
        return Response("ready\n", status=200, content_type="text/plain")

    async def prometheus(call: ApiCall) -> Response:
        return Response(render(metrics, _store_gauges(ctx),
                               extra=lambda: sensu_go_families(ctx.services) + intake_families(ctx.services)),
                        content_type="text/plain; version=0.0.4")

    router.add("/health", {"GET": health}, public=True)
    router.add("/version", {"GET": version}, public=True)
    router.add("/ready", {"GET": ready}, public=True)
    router.add("/metrics", {"GET": prometheus}, public=True)


def _store_gauges(ctx: ApiContext) -> dict[str, tuple[str, float]]:
    """The store's and Raft's gauges for ``/metrics``: name -> (help, value)."""
    st = ctx.store.raft_status()
    stats = ctx.store.statistics()
    return {
        "sensu_store_revision": ("Current store revision.", stats["revision"]),
        "sensu_store_keys": ("Keys in the store.", stats["keys"]),
        "sensu_store_leases": ("Live leases.", stats["leases"]),
        "sensu_store_batches_total": ("Raft entries proposed by this node.", stats["batches"]),
        "sensu_store_ops_total": ("Store operations proposed by this node.", stats["ops"]),
        "sensu_store_retries_total": ("Proposals retried after a leader change.", stats["retries"]),
        "sensu_raft_term": ("Current Raft term.", st.term),
        "sensu_raft_commit_index": ("Raft commit index.", st.commit_index),
        "sensu_raft_last_applied": ("Last applied Raft index.", st.last_applied),
        "sensu_raft_is_leader": ("1 if this node is the Raft leader.", 1 if st.is_leader else 0),
        "sensu_raft_has_quorum": ("1 if this node sees a leader and a quorum.", 1 if st.has_quorum else 0),
        "sensu_raft_log_entries": ("Entries in the Raft log since the last dump.", st.log_len),
    }
