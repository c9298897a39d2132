"""One request as route handlers see it, and the ASGI types around it.

Why a module of its own: handlers take an :class:`ApiCall`, and when it
lived in ``api/app.py`` every route module imported the application that
imports the routes (``app -> routes -> routes.auth -> app``). Now the
application and the routes both import this module, and nothing here
imports either of them.
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable
from urllib.parse import parse_qsl

from werkzeug.datastructures import Headers, MultiDict

from core.identity import Principal

from .context import ApiContext
from .errors import CODE_INVALID, ApiError
from .rbac import require

__all__ = ["ApiCall", "ApiRequest", "Scope", "Receive", "Send"]

#: The ASGI connection scope, and the receive/send callables of one connection.
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class ApiRequest:
    """What handlers read of a request; the body is read before dispatch."""

    __slots__ = ("scope", "method", "path", "scheme", "headers", "args", "_body")

    def __init__(self, scope: Scope, body: bytes) -> None:
        self.scope = scope
        self.method: str = scope["method"]
        self.path: str = scope.get("path") or "/"
        self.scheme: str = scope.get("scheme") or "http"
        self.headers = Headers([(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers") or ()])
        query = (scope.get("query_string") or b"").decode("latin-1")
        self.args: MultiDict[str, str] = MultiDict(parse_qsl(query, keep_blank_values=True))
        self._body = body

    @property
    def host(self) -> str:
        host = self.headers.get("Host")
        if host:
            return host
        server = self.scope.get("server")
        return f"{server[0]}:{server[1]}" if server else "localhost"

    async def get_data(self) -> bytes:
        return self._body

    async def get_json(self, *, force: bool = True, silent: bool = True) -> Any:
        try:
            return json.loads(self._body)
        except (ValueError, UnicodeDecodeError, RecursionError):
            if silent:
                return None
            raise

    @property
    def form(self) -> Awaitable[MultiDict[str, str]]:
        """``await request.form``: the urlencoded body (as in Quart)."""
        async def parse() -> MultiDict[str, str]:
            ctype = self.headers.get("Content-Type", "").split(";", 1)[0].strip().lower()
            if ctype != "application/x-www-form-urlencoded":
                return MultiDict()
            return MultiDict(parse_qsl(self._body.decode("latin-1"), keep_blank_values=True))
        return parse()


class ApiCall:
    """One request as handlers see it: context, caller, body and authorization."""

    __slots__ = ("ctx", "request", "principal", "route")

    def __init__(self, ctx: ApiContext, req: ApiRequest, principal: Principal | None, route: str) -> None:
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
        return await self.request.get_data()

    async def json(self, *, allow_empty: bool = False) -> Any:
        """The body parsed as JSON whatever the Content-Type (api.md §1.3)."""
        raw = await self.body()
        if not raw.strip():
            if allow_empty:
                return None
            raise ApiError(400, "request body is empty; a JSON object is required", CODE_INVALID)
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: deeply nested JSON
            raise ApiError(400, f"malformed JSON body: {exc}", CODE_INVALID) from None
