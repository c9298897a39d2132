"""The web dashboard: static assets plus the public REST API, on the dashboard port.

One small ASGI app (no framework) served by hypercorn in the backend process:

* ``GET /`` is the single page (``static/index.html``); ``GET /static/<name>`` are its
  scripts, style sheet and icon. They are read once, when the app is built, and served
  from memory with a content hash as ``ETag``; no asset comes from anywhere else.
* ``/auth``, ``/auth/*``, ``/api/*``, ``/health`` and ``/version`` are handed, scope
  untouched (``raw_path`` included), to the REST API's own ASGI app, so the page talks
  to the same origin it was loaded from and uses nothing but the public REST API.
* Anything else is a plain-text 404 (the page routes with ``#/...`` fragments, which
  never reach the server).

Every response, forwarded or not, carries the security headers in
:data:`SECURITY_HEADERS` (a strict Content-Security-Policy: scripts and styles only
from this origin, no inline code, no framing). Forwarded responses also get
``Cache-Control: no-store`` (tokens travel in them) unless the API set one, and lose
``WWW-Authenticate`` so a browser never opens its own login prompt over the page.

The page keeps its tokens in memory only (docs/dashboard.md explains the choice), so
this app handles no cookies and keeps no per-user state.
"""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import trio

__all__ = ["Asset", "DashboardApp", "SECURITY_HEADERS", "STATIC_DIR", "create_dashboard_app", "load_assets"]

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

STATIC_DIR = trio.Path(__file__).parent / "static"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)

#: Paths handed to the REST API unchanged.
_FORWARDED_EXACT = frozenset({"/auth", "/health", "/version"})
_FORWARDED_PREFIXES = ("/auth/", "/api/")

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: bytes


def _asset(name: str, body: bytes) -> Asset:
    suffix = name[name.rfind("."):] if "." in name else ""
    content_type = _TYPES.get(suffix) or mimetypes.guess_type(name)[0] or "application/octet-stream"
    return Asset(body, content_type, b'"' + hashlib.sha256(body).hexdigest()[:32].encode() + b'"')


async def load_assets(directory: trio.Path = STATIC_DIR) -> dict[str, Asset]:
    """Every file of ``directory`` (not recursive) by URL path: ``/`` for index.html,
    ``/static/<name>`` for the rest. Raises OSError if the directory is unreadable."""
    assets: dict[str, Asset] = {}
    for path in sorted(await directory.iterdir()):
        if not await path.is_file():
            continue
        body = await path.read_bytes()
        assets[f"/static/{path.name}"] = _asset(path.name, body)
        if path.name == "index.html":
            assets["/"] = assets["/static/index.html"]
    if "/" not in assets:
        raise OSError(f"{directory}: index.html is missing")
    return assets


def is_forwarded(path: str) -> bool:
    return path in _FORWARDED_EXACT or path.startswith(_FORWARDED_PREFIXES)


class DashboardApp:
    """The dashboard's ASGI app; ``api`` is the REST API app requests are forwarded to.

    Lifespan events are answered here and not forwarded: the API app is the one the
    API listener already runs, and its lifespan belongs to that listener.
    """

    def __init__(self, api: AsgiApp, assets: dict[str, Asset]) -> None:
        self.api = api
        self.assets = assets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "http":
            if is_forwarded(scope["path"]):
                await self.api(scope, receive, _secured(send, forwarded=True))
            else:
                await self._static(scope, _secured(send, forwarded=False))
        elif kind == "websocket":
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _static(self, scope: Scope, send: Send) -> None:
        method = scope["method"]
        asset = self.assets.get(scope["path"])
        if asset is None:
            await _plain(send, 404, b"not found\n")
            return
        if method not in ("GET", "HEAD"):
            await _plain(send, 405, b"method not allowed\n", [(b"allow", b"GET, HEAD")])
            return
        headers = [(b"etag", asset.etag), (b"cache-control", b"no-cache")]
        if _header(scope, b"if-none-match") == asset.etag:
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        headers += [(b"content-type", asset.content_type.encode()),
                    (b"content-length", str(len(asset.body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if method == "HEAD" else asset.body})


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


async def _plain(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode()),
               *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _secured(send: Send, *, forwarded: bool) -> Send:
    """``send`` with the security headers added to the response start."""

    async def wrapped(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(bytes(k).lower(), bytes(v)) for k, v in message.get("headers", ())]
            names = {k for k, _ in headers}
            if forwarded:
                headers = [(k, v) for k, v in headers if k != b"www-authenticate"]
                if b"cache-control" not in names:
                    headers.append((b"cache-control", b"no-store"))
            headers = [(k, v) for k, v in headers if k not in _SECURITY_NAMES]
            message = {**message, "headers": headers + list(SECURITY_HEADERS)}
        await send(message)

    return wrapped


_SECURITY_NAMES = frozenset(k for k, _ in SECURITY_HEADERS)


async def create_dashboard_app(api: AsgiApp, directory: trio.Path = STATIC_DIR) -> DashboardApp:
    """The dashboard app forwarding to ``api``, with its assets loaded into memory."""
    return DashboardApp(api, await load_assets(directory))
