"""The REST API application: one quart-trio app, routed on the raw path.

Quart's own routing decodes ``%2F`` before matching, which would break asset
and silence names (api.md §1.1), so a single catch-all Quart route hands every
request to :class:`~api.router.Router`. For every non-public route the
dispatcher authenticates first (``Bearer`` or ``Key``); handlers authorize
explicitly with :meth:`ApiCall.authorize`, because only they know the
resource, namespace and name. Every exception becomes a response through
:func:`api.errors.response_for`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from quart import Request, Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.routing import PathConverter

from .auth import Principal, authenticate
from .context import ApiContext
from .errors import CODE_INVALID, ApiError, error_response, json_body, response_for
from .health import health_payload, version_payload
from .metrics import ApiMetrics, render
from .rbac import require
from .router import Router, split_raw_path

__all__ = ["create_app", "json_response", "error_response", "ApiCall"]

logger = logging.getLogger(__name__)

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

json_response = json_body


class AnyPathConverter(PathConverter):
    """werkzeug's ``path`` converter, but matching any character (``%0A`` included),
    so every request reaches our router instead of Quart's HTML 404."""

    regex = "(?s:[^/].*?)"


class ApiCall:
    """One request as handlers see it: context, caller, body and authorization."""

    __slots__ = ("ctx", "request", "principal", "route")

    def __init__(self, ctx: ApiContext, req: Request, principal: Principal | None, route: str) -> None:
        self.ctx = ctx
        self.request = req
        self.principal = principal
        self.route = route

    @property
    def store(self) -> Any:
        return self.ctx.store

    @property
    def args(self) -> Any:
        return self.request.args

    @property
    def username(self) -> str:
        return self.principal.username if self.principal else ""

    async def authorize(self, verb: str, resource: str, namespace: str = "", name: str = "") -> None:
        if self.principal is None:
            raise ApiError(401, "bad credentials", 5)
        await require(self.ctx.store, self.principal, verb, resource, namespace, name)

    async def body(self) -> bytes:
        try:
            return await self.request.get_data()
        except RequestEntityTooLarge:
            raise ApiError(413, f"request body exceeds {self.ctx.config.api_request_limit} bytes", CODE_INVALID) from None

    async def json(self, *, allow_empty: bool = False) -> Any:
        """The body parsed as JSON whatever the Content-Type (api.md §1.3)."""
        import json

        raw = await self.body()
        if not raw.strip():
            if allow_empty:
                return None
            raise ApiError(400, "request body is empty; a JSON object is required", CODE_INVALID)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: deeply nested JSON
            raise ApiError(400, f"malformed JSON body: {exc}", CODE_INVALID) from None


def create_app(ctx: ApiContext) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = ctx.config.api_request_limit
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    router = Router()
    metrics = ApiMetrics()
    app.extensions["sensu_router"] = router
    app.extensions["sensu_ctx"] = ctx
    ctx.services.setdefault("api_metrics", metrics)

    async def health(call: ApiCall) -> Response:
        body, status = await health_payload(ctx.store, ctx.initial_members, ctx.node_name, ctx.cluster_id)
        return json_body(body, status)

    async def version(call: ApiCall) -> Response:
        return json_body(version_payload())

    async def ready(call: ApiCall) -> Response:
        return Response("ready\n", status=200, content_type="text/plain")

    async def prometheus(call: ApiCall) -> Response:
        st = ctx.store.raft_status()
        stats = ctx.store.statistics()
        gauges = {
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
        return Response(render(metrics, gauges), content_type="text/plain; version=0.0.4")

    router.add("/health", {"GET": health}, public=True)
    router.add("/version", {"GET": version}, public=True)
    router.add("/ready", {"GET": ready}, public=True)
    router.add("/metrics", {"GET": prometheus}, public=True)

    from .bootstrap import register_bootstrap

    register_bootstrap(router, ctx)
    from .routes import all_families

    for register in all_families():
        register(router, ctx)

    async def dispatch(path: str = "") -> Response:
        started = time.perf_counter()
        route_name = "unmatched"
        try:
            # Read the body before any answer: hypercorn cannot reuse a keep-alive
            # connection whose request body was left unread (the next request on
            # it hangs), and a 401/404/405 is often decided before a handler runs.
            if request.method in ("POST", "PUT", "PATCH", "DELETE"):
                try:
                    await request.get_data()
                except RequestEntityTooLarge:
                    resp = error_response(413, f"request body exceeds {ctx.config.api_request_limit} bytes",
                                          CODE_INVALID, {"Connection": "close"})
                    metrics.observe(request.method, route_name, 413, time.perf_counter() - started)
                    return resp
            segments = split_raw_path(request.scope.get("raw_path") or request.path.encode())
            found = router.resolve(segments) if segments is not None else None
            if found is None:
                resp = error_response(404, "not found", 2)
            else:
                route, params = found
                route_name = "/" + "/".join(route.pattern)
                handler = route.methods.get(request.method)
                if handler is None and request.method == "HEAD":
                    handler = route.methods.get("GET")
                if handler is None:
                    resp = Response("", status=405)
                else:
                    principal = None
                    if not route.public:
                        if request.method in ("GET", "HEAD"):
                            await ctx.store.sync_reads()
                        principal = await authenticate(ctx.store, request.headers.get("Authorization", ""))
                    resp = await handler(ApiCall(ctx, request._get_current_object(), principal, route_name), **params)
        except HTTPException as exc:  # werkzeug's, e.g. body too large while parsing
            status = exc.code or 400
            resp = error_response(status, exc.description or "bad request", CODE_INVALID)
        except Exception as exc:
            resp = response_for(exc, method=request.method, path=request.path)
        metrics.observe(request.method, route_name, resp.status_code, time.perf_counter() - started)
        return resp

    app.add_url_rule("/", "root", dispatch, methods=ALL_METHODS, defaults={"path": ""}, strict_slashes=False)
    app.url_map.converters["anypath"] = AnyPathConverter
    app.add_url_rule("/<anypath:path>", "dispatch", dispatch, methods=ALL_METHODS, strict_slashes=False)
    return app
