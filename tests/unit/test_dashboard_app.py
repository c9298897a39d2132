"""api.dashboard: the ASGI app in process (a recording stand-in for the REST API), and
static checks on the page's sources that back the escaping and CSP rules."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import trio

from api.dashboard import SECURITY_HEADERS, STATIC_DIR, DashboardApp, create_dashboard_app, is_forwarded, load_assets


class RecordingApi:
    """Answers every request with what it received; optionally with extra headers."""

    def __init__(self, headers: list[tuple[bytes, bytes]] | None = None, status: int = 200) -> None:
        self.scopes: list[dict[str, Any]] = []
        self.headers = headers or []
        self.status = status

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = json.dumps({"method": scope["method"], "path": scope["path"],
                              "raw_path": scope["raw_path"].decode(), "query": scope["query_string"].decode(),
                              "body": body.decode(),
                              "authorization": dict(scope["headers"]).get(b"authorization", b"").decode()}).encode()
        await send({"type": "http.response.start", "status": self.status,
                    "headers": [(b"content-type", b"application/json"), *self.headers]})
        await send({"type": "http.response.body", "body": payload})


async def client_for(api: RecordingApi) -> httpx.AsyncClient:
    app = await create_dashboard_app(api)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://dashboard.test")


def assert_secured(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS:
        assert response.headers[name.decode()] == value.decode()


@pytest.mark.parametrize("path, forwarded", [
    ("/auth", True), ("/auth/token", True), ("/auth/logout", True), ("/api/core/v2/namespaces", True),
    ("/health", True), ("/version", True), ("/", False), ("/static/app.js", False), ("/authx", False),
    ("/api", False), ("/metrics", False), ("/healthz", False),
])
def test_forwarded_paths(path: str, forwarded: bool) -> None:
    assert is_forwarded(path) is forwarded


async def test_api_requests_are_forwarded_unchanged() -> None:
    api = RecordingApi()
    async with await client_for(api) as client:
        r = await client.put("/api/core/v2/namespaces/default/silenced/linux%3A%2A?x=1", content=b'{"a": 1}',
                             headers={"Authorization": "Bearer t0k"})
    assert r.status_code == 200
    seen = r.json()
    assert seen == {"method": "PUT", "path": "/api/core/v2/namespaces/default/silenced/linux:*",
                    "raw_path": "/api/core/v2/namespaces/default/silenced/linux%3A%2A", "query": "x=1",
                    "body": '{"a": 1}', "authorization": "Bearer t0k"}
    assert_secured(r)
    assert r.headers["cache-control"] == "no-store"


async def test_forwarded_responses_lose_www_authenticate_and_keep_their_cache_control() -> None:
    api = RecordingApi([(b"WWW-Authenticate", b'Basic realm="x"'), (b"Cache-Control", b"max-age=5"),
                        (b"X-Frame-Options", b"SAMEORIGIN")], status=401)
    async with await client_for(api) as client:
        r = await client.get("/auth")
    assert r.status_code == 401
    assert "www-authenticate" not in r.headers
    assert r.headers["cache-control"] == "max-age=5"
    assert r.headers.get_list("x-frame-options") == ["DENY"]


async def test_static_assets() -> None:
    api = RecordingApi()
    async with await client_for(api) as client:
        index = await client.get("/")
        assert index.status_code == 200 and index.headers["content-type"] == "text/html; charset=utf-8"
        assert_secured(index)
        for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css"), ("favicon.svg", "image/svg+xml")):
            r = await client.get(f"/static/{name}")
            assert r.status_code == 200 and r.headers["content-type"].startswith(kind), name
            assert r.content == await (STATIC_DIR / name).read_bytes()
        etag = index.headers["etag"]
        cached = await client.get("/", headers={"If-None-Match": etag})
        assert cached.status_code == 304 and cached.content == b""
        head = await client.head("/static/app.js")
        assert head.status_code == 200 and head.content == b""
        assert int(head.headers["content-length"]) == len(await (STATIC_DIR / "app.js").read_bytes())
        for path in ("/missing", "/static/missing.js", "/static/../__init__.py", "/static", "/index.html"):
            r = await client.get(path)
            assert r.status_code == 404, path
            assert_secured(r)
        r = await client.delete("/static/app.js")
        assert r.status_code == 405 and r.headers["allow"] == "GET, HEAD"
    assert api.scopes == []


async def test_lifespan_is_answered_here() -> None:
    app = DashboardApp(RecordingApi(), {})
    sent: list[dict[str, Any]] = []
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    with trio.fail_after(5):
        await app({"type": "lifespan"}, receive, send)
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


async def test_missing_index_is_an_error(tmp_path: Any) -> None:
    (tmp_path / "app.js").write_text("")
    with pytest.raises(OSError, match="index.html"):
        await load_assets(trio.Path(tmp_path))


# ---- the page's sources -----------------------------------------------------------------------

async def test_sources_never_assign_html() -> None:
    """API data reaches the DOM only as text (dom.js's h()); no HTML sinks anywhere."""
    sinks = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function|"
                       r"setAttribute\(\s*['\"]on|\.src\s*=|javascript:")
    scripts = [p for p in await STATIC_DIR.iterdir() if p.name.endswith(".js")]
    assert len(scripts) >= 5
    for path in scripts:
        text = await path.read_text()
        assert not sinks.search(text), f"{path.name}: {sinks.search(text)}"


async def test_index_has_no_inline_code_and_no_other_origin() -> None:
    """Anything inline would be blocked by the CSP; anything remote would need the network."""
    index = await (STATIC_DIR / "index.html").read_text()
    for match in re.finditer(r"<script\b([^>]*)>", index):
        assert "src=" in match.group(1)
    assert not re.search(r"\son\w+=|\sstyle=", index)
    for path in await STATIC_DIR.iterdir():
        text = await path.read_text()
        assert not re.search(r"(?:https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, re.I) or path.name == "favicon.svg", \
            path.name
        if path.name.endswith(".js"):
            assert not re.search(r"\b(?:localStorage|sessionStorage|indexedDB)\s*[.\[]|document\.cookie", text), path.name
