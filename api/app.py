"""The REST API application: one quart-trio app, routed on the raw path.

Quart's own routing decodes ``%2F`` before matching, which would break asset
and silence names (api.md §1.1), so a single catch-all Quart route hands every
request to :class:`~api.router.Router`. Route families register themselves in
:func:`create_app`.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from quart import Response, request
from quart_trio import QuartTrio

from .context import ApiContext
from .health import health_payload, version_payload
from .router import Router, split_raw_path

__all__ = ["create_app", "json_response", "error_response"]

logger = logging.getLogger(__name__)

ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = json.dumps(body, separators=(",", ":"))
    resp = Response(data, status=status, content_type="application/json")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def error_response(status: int, message: str, code: int, headers: dict[str, str] | None = None) -> Response:
    return json_response({"message": message, "code": code}, status, headers)


def create_app(ctx: ApiContext) -> QuartTrio:
    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = ctx.config.api_request_limit
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False
    router = Router()
    app.extensions["sensu_router"] = router
    app.extensions["sensu_ctx"] = ctx

    async def health() -> Response:
        body, status = await health_payload(ctx.store, ctx.initial_members, ctx.node_name, ctx.cluster_id)
        return json_response(body, status)

    async def version() -> Response:
        return json_response(version_payload())

    router.add("/health", {"GET": health}, public=True)
    router.add("/version", {"GET": version}, public=True)

    from .bootstrap import register_bootstrap

    register_bootstrap(router, ctx)

    async def dispatch(path: str = "") -> Response:
        segments = split_raw_path(request.scope.get("raw_path") or request.path.encode())
        found = router.resolve(segments) if segments is not None else None
        if found is None:
            return error_response(404, "not found", 2)
        route, params = found
        handler = route.methods.get(request.method)
        if handler is None and request.method == "HEAD":
            handler = route.methods.get("GET")
        if handler is None:
            return Response("", status=405)
        return await handler(**params)

    app.add_url_rule("/", "root", dispatch, methods=ALL_METHODS, defaults={"path": ""}, strict_slashes=False)
    app.add_url_rule("/<path:path>", "dispatch", dispatch, methods=ALL_METHODS, strict_slashes=False)
    return app
