"""``POST /init``: the server side of ``sensu-backend init``.

Sensu Go's ``init`` writes straight into etcd. Our store is reached only
through a backend, so ``init`` asks the local backend to seed the cluster. The
route needs no credentials (there are no users yet), so it answers only
clients on the loopback interface, only until the cluster is initialized:
the seed is one transaction guarded by the "initialized" marker, so exactly
one ``init`` per cluster wins and every later one gets 409.
"""

from __future__ import annotations

import ipaddress
import logging
import time
from typing import Any

from quart import Response

from core.identity import hash_password
from core.resources.meta import USERNAME_RE
from core.seed import AGENT_PASSWORD, INITIALIZED_KEY, seed_operations
from cluster import codec
from cluster.errors import StoreError

from .errors import error_response, json_body as json_response
from .context import ApiContext
from .router import Router

__all__ = ["register_bootstrap"]

logger = logging.getLogger(__name__)

ALREADY_INITIALIZED = "sensu-backend already initialized"


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def register_bootstrap(router: Router, ctx: ApiContext) -> None:
    async def init(call: Any) -> Response:
        client = call.request.scope.get("client")
        if not _is_loopback(client[0] if client else None):
            return error_response(403, "init is only accepted from the backend's own host", 4)
        if (await ctx.store.get(INITIALIZED_KEY, linearizable=True)) is not None:
            return error_response(409, ALREADY_INITIALIZED, 3)
        body = await call.request.get_json(force=True, silent=True)
        if not isinstance(body, dict):
            return error_response(400, "expected a JSON object with username and password", 1)
        username = body.get("username")
        password = body.get("password")
        api_key = body.get("api_key") or ""
        if not isinstance(username, str) or not USERNAME_RE.match(username):
            return error_response(400, "cluster-admin-username: must match [a-z0-9_.-]+", 1)
        if not isinstance(password, str) or len(password) < 8:
            return error_response(400, "cluster-admin-password: must be at least 8 characters", 1)
        if not isinstance(api_key, str):
            return error_response(400, "cluster-admin-api-key: must be a string", 1)
        admin_hash = await hash_password(password)
        agent_hash = await hash_password(AGENT_PASSWORD)
        ops = seed_operations(admin_username=username, admin_password_hash=admin_hash,
                              agent_password_hash=agent_hash, api_key=api_key, now=int(time.time()))
        try:
            result = await ctx.store.txn([codec.compare(INITIALIZED_KEY, "version", "==", 0)], ops)
        except StoreError as exc:
            return error_response(503, f"store unavailable: {exc}", 0, {"Retry-After": "1"})
        if not result.succeeded:
            return error_response(409, ALREADY_INITIALIZED, 3)
        logger.warning("cluster initialized", extra={"user": username, "node": ctx.node_name})
        return json_response({"initialized": True, "revision": result.revision}, 201)

    router.add("/init", {"POST": init}, public=True)
