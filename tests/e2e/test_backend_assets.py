"""Backend runtime assets (issue 17, point 2): real backend, tarballs served over loopback.

The HTTP server is the test's own (a peer we do not own, like Bonsai): it
serves tarballs built in ``tmp_path`` and records every request, so the
tests can count downloads and see the asset headers.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import tarfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.harness.agent import ADMIN, Api, initialized_node, ns_path, put_resource, read_events, wait_until
from tests.harness.backend import BackendProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


class AssetServer:
    """A loopback HTTP server for tarballs; ``requests`` holds ``(path, headers)`` of each GET."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def hits(self, path: str) -> int:
        return sum(1 for p, _ in self.requests if p == path)


def tarball(files: dict[str, tuple[str, int]]) -> bytes:
    """A gzipped tar of ``{path: (text, mode)}``."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, (text, mode) in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def sha512(data: bytes) -> str:
    return hashlib.sha512(data).hexdigest()


RECORD_ALERT = """#!/bin/sh
# record-alert FILE: append the event on stdin as one line, and the asset paths Sensu set
echo "$LD_LIBRARY_PATH|$CPATH" > "$1.env"
flock "$1.lock" sh -c 'cat >> "$0"; echo >> "$0"' "$1"
"""


@pytest.fixture
async def server() -> AsyncIterator[AssetServer]:
    srv = AssetServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        await trio.to_thread.run_sync(srv.httpd.shutdown)
        srv.httpd.server_close()


@pytest.fixture
async def node(tmp_path: Path, client: httpx.AsyncClient) -> AsyncIterator[BackendProcess]:
    async with initialized_node(tmp_path, client, ["--cache-dir", str(tmp_path / "cache")]) as proc:
        yield proc


async def post_event(api: Api, entity: str, check: str, status: int, handlers: list[str]) -> None:
    body = {"entity": {"metadata": {"name": entity, "namespace": "default"}, "entity_class": "proxy"},
            "check": {"metadata": {"name": check, "namespace": "default"}, "status": status,
                      "output": f"status {status}", "interval": 60, "handlers": handlers}}
    r = await api.request("PUT", ns_path("events", entity, check), json=body)
    assert r is not None and r.status_code in (200, 201), r.text if r is not None else "no answer"


async def test_a_handler_from_a_runtime_asset_runs_and_the_asset_is_downloaded_once(
        tmp_path: Path, node: BackendProcess, server: AssetServer, client: httpx.AsyncClient) -> None:
    api = Api(client, [node])
    tools = tarball({"bin/record-alert": (RECORD_ALERT, 0o755), "lib/README": ("libs", 0o644),
                     "include/tools.h": ("/* */", 0o644)})
    helpers = tarball({"lib/helpers.js": ("function worth_alerting(e) { return e.check.status >= 2; }\n", 0o644)})
    server.files.update({"/alert-tools.tar.gz": tools, "/js-helpers.tar.gz": helpers})
    await put_resource(api, "assets", "alert-tools", {
        "builds": [
            {"url": f"{server.url}/windows.tar.gz", "sha512": sha512(b"other"),
             "filters": ["entity.system.os == 'windows'"]},
            {"url": f"{server.url}/alert-tools.tar.gz", "sha512": sha512(tools),
             "filters": ["entity.system.os == 'linux'", "entity.entity_class == 'backend'"],
             "headers": {"X-Asset-Token": "s3cret"}},
        ]})
    await put_resource(api, "assets", "js-helpers", {"url": f"{server.url}/js-helpers.tar.gz",
                                                     "sha512": sha512(helpers)})
    await put_resource(api, "filters", "critical-only", {
        "action": "allow", "expressions": ["worth_alerting(event)"], "runtime_assets": ["js-helpers"]})
    alerts = tmp_path / "alerts.jsonl"
    await put_resource(api, "handlers", "asset-handler", {
        "type": "pipe", "command": f"record-alert {alerts}", "runtime_assets": ["alert-tools"],
        "filters": ["critical-only"]})

    # three first uses at once share one download
    async with trio.open_nursery() as nursery:
        for i in range(3):
            nursery.start_soon(post_event, api, f"proxy-{i}", "disk", 2, ["asset-handler"])
    await wait_until("three alerts from the asset's handler", lambda: len(read_events(alerts)) >= 3, node.log)
    await post_event(api, "proxy-ok", "disk", 1, ["asset-handler"])  # the asset's JS filter denies it
    await post_event(api, "proxy-3", "disk", 2, ["asset-handler"])
    await wait_until("the fourth alert, from the cached asset", lambda: len(read_events(alerts)) >= 4, node.log)

    events = read_events(alerts)
    assert sorted(e["entity"]["metadata"]["name"] for e in events) == [f"proxy-{i}" for i in range(4)]
    assert server.hits("/alert-tools.tar.gz") == 1
    assert server.hits("/js-helpers.tar.gz") == 1
    assert server.hits("/windows.tar.gz") == 0
    assert all(h.get("x-asset-token") == "s3cret" for p, h in server.requests if p == "/alert-tools.tar.gz")
    installed = tmp_path / "cache" / "assets" / sha512(tools)
    lib_path, cpath = (Path(f"{alerts}.env").read_text().strip()).split("|")
    assert lib_path.split(":")[0] == str(installed / "lib")
    assert cpath.split(":")[0] == str(installed / "include")
    assert sorted(p.name for p in (tmp_path / "cache" / "assets").iterdir()) == sorted([sha512(tools),
                                                                                         sha512(helpers)])


async def test_a_bad_sha512_is_one_clear_error_and_no_handler_run(
        tmp_path: Path, node: BackendProcess, server: AssetServer, client: httpx.AsyncClient) -> None:
    api = Api(client, [node])
    tools = tarball({"bin/record-alert": (RECORD_ALERT, 0o755)})
    server.files["/tampered.tar.gz"] = tools
    await put_resource(api, "assets", "tampered-tools", {"url": f"{server.url}/tampered.tar.gz",
                                                         "sha512": sha512(b"what was published")})
    alerts = tmp_path / "never.jsonl"
    await put_resource(api, "handlers", "tampered-handler", {
        "type": "pipe", "command": f"record-alert {alerts}", "runtime_assets": ["tampered-tools"]})
    await post_event(api, "proxy-x", "disk", 2, ["tampered-handler"])

    def errors() -> list[dict[str, Any]]:
        return [json.loads(line) for line in node.log().splitlines()
                if line.startswith("{") and "tampered-tools" in line and "sha512 mismatch" in line]

    found = await wait_until("the checksum error", errors, node.log)
    assert len(found) == 1
    assert found[0]["level"] == "error" and found[0]["handler"] == "tampered-handler"
    assert found[0]["entity"] == "proxy-x" and found[0]["check"] == "disk"
    assert server.hits("/tampered.tar.gz") == 1
    assert not alerts.exists()
    assert list((tmp_path / "cache" / "assets").iterdir()) == []  # nothing installed, no partial download
