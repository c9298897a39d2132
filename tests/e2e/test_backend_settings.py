"""Backend settings that used to be accepted and ignored are applied (issue 17, point 4).

``log-millisecond-timestamps``, ``etcd-log-level`` (the store's loggers) and
``api-serve-wait-time`` have their effect on a real backend; the settings
this backend cannot honour stop the start with a one-line error.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import trio

from tests.harness.backend import BackendProcess

from .test_run_and_errors import start_and_wait_exit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def records(node: BackendProcess) -> list[dict[str, object]]:
    out = []
    for line in node.log().splitlines():
        start = line.find("{")
        if start >= 0:
            try:
                out.append(json.loads(line[start:]))
            except ValueError:
                pass
    return out


async def test_millisecond_timestamps_store_log_level_and_api_serve_wait(tmp_path: Path,
                                                                        client: httpx.AsyncClient) -> None:
    node = BackendProcess("default", "127.0.0.1", tmp_path / "node", extra_args=[
        "--log-millisecond-timestamps", "--etcd-log-level", "error", "--api-serve-wait-time", "1s"])
    node.start()
    try:
        await node.wait_healthy(client)
        logged = records(node)
        assert logged and all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(r["time"])) for r in logged)
        assert any(r.get("level") == "info" for r in logged)  # log-level info still applies elsewhere
        assert not [r for r in logged if r.get("component") in ("membership", "store", "bridge", "journal")
                    and r.get("level") in ("info", "warning")]
        assert any(r.get("msg") == "serving after api-serve-wait-time (1.0s)" for r in logged)
    finally:
        node.stop()


@pytest.mark.parametrize("flag, value", [
    ("--api-write-timeout", "30s"), ("--dashboard-write-timeout", "30s"),
    ("--etcd-listen-client-urls", "http://127.0.0.1:2390"), ("--etcd-advertise-client-urls", "http://a:2379"),
    ("--etcd-client-urls", "http://a:2379"), ("--etcd-client-log-level", "debug"),
    ("--etcd-max-request-bytes", "10485760"), ("--etcd-quota-backend-bytes", "1000"),
])
async def test_settings_this_backend_cannot_honour_are_refused(tmp_path: Path, flag: str, value: str) -> None:
    result = await trio.to_thread.run_sync(lambda: start_and_wait_exit([flag, value], tmp_path))
    assert result.returncode != 0
    assert f"flag {flag}: not supported by this backend" in result.stderr
    assert "Traceback" not in result.stderr
