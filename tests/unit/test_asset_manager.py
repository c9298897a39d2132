"""AssetManager against a loopback HTTP server: failures leave nothing installed."""

from __future__ import annotations

import hashlib
import http.server
import io
import tarfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from backend.assets import AssetError, AssetManager
from backend.pipelined.daemon import pipeline_refs

ENTITY = {"metadata": {"name": "backend-1", "namespace": ""}, "entity_class": "backend",
          "system": {"os": "linux", "arch": "amd64"}}


@pytest.fixture
async def served() -> AsyncIterator[tuple[str, dict[str, bytes]]]:
    files: dict[str, bytes] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            body = files.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", files
    finally:
        await trio.to_thread.run_sync(httpd.shutdown)
        httpd.server_close()


def asset(name: str, url: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "default"}, "url": url,
            "sha512": hashlib.sha512(data).hexdigest(), **extra}


def tar_with(name: str, text: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(text)
        tar.addfile(info, io.BytesIO(text.encode()))
    return buf.getvalue()


async def test_a_broken_archive_or_http_error_is_a_clear_error_and_nothing_is_installed(
        tmp_path: Path, served: tuple[str, dict[str, bytes]]) -> None:
    url, files = served
    manager = AssetManager(tmp_path / "cache", entity=ENTITY)
    await manager.start()
    files["/junk.tar.gz"] = b"this is not a tarball"
    with trio.fail_after(30), pytest.raises(AssetError, match="cannot unpack the archive"):
        await manager.get(asset("junk", f"{url}/junk.tar.gz", files["/junk.tar.gz"]))
    with trio.fail_after(30), pytest.raises(AssetError, match="HTTP 404"):
        await manager.get(asset("gone", f"{url}/gone.tar.gz", b"x"))
    files["/escape.tar.gz"] = tar_with("../escaped.txt", "outside the cache")
    with trio.fail_after(30), pytest.raises(AssetError, match="cannot unpack"):
        await manager.get(asset("escape", f"{url}/escape.tar.gz", files["/escape.tar.gz"]))
    assert list((tmp_path / "cache" / "assets").iterdir()) == []
    assert not (tmp_path / "cache" / "escaped.txt").exists()
    assert manager.stats["failures"] == 3 and manager.stats["installed"] == 0


async def test_builds_are_chosen_by_the_backend_entity_and_none_matching_is_skipped(
        tmp_path: Path, served: tuple[str, dict[str, bytes]]) -> None:
    url, files = served
    files["/linux.tar.gz"] = tar_with("bin/tool", "#!/bin/sh\n")
    manager = AssetManager(tmp_path / "cache", entity=ENTITY)
    await manager.start()
    linux = {"url": f"{url}/linux.tar.gz", "sha512": hashlib.sha512(files["/linux.tar.gz"]).hexdigest(),
             "filters": ["entity.system.os == 'linux'", "entity.entity_class == 'backend'"]}
    windows = {**linux, "url": f"{url}/windows.tar.gz", "filters": ["entity.system.os == 'windows'"]}
    with trio.fail_after(30):
        got = await manager.get({"metadata": {"name": "tool"}, "builds": [windows, linux]})
        assert got is not None and (got.bin_dir / "tool").read_text() == "#!/bin/sh\n"
        assert await manager.get({"metadata": {"name": "win-only"}, "builds": [windows]}) is None
        again = await manager.get({"metadata": {"name": "tool"}, "builds": [windows, linux]})
    assert again == got and manager.stats["downloads"] == 1 and manager.stats["cache_hits"] == 1


def test_pipeline_refs_come_from_the_event_the_check_and_the_entity_once_each() -> None:
    ref = lambda name, **kw: {"api_version": "core/v2", "type": "Pipeline", "name": name, **kw}  # noqa: E731
    event = {"pipelines": [ref("a"), ref("b")], "check": {"pipelines": [ref("b"), ref("c")]},
             "entity": {"pipelines": [ref("d"), {"api_version": "other/v1", "type": "Pipeline", "name": "x"},
                                      {"api_version": "core/v2", "type": "Handler", "name": "y"}]}}
    assert pipeline_refs(event) == ["a", "b", "c", "d"]
    assert pipeline_refs({"check": {}}) == []
