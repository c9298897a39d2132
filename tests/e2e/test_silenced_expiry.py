"""Sensu Go 6.12's silence expiry settings are applied (issue 17, point 4)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.harness.backend import BackendProcess

from .test_api_resources import NS, init_and_login, meta, q

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
async def node(tmp_path: Path, client: httpx.AsyncClient) -> AsyncIterator[BackendProcess]:
    proc = BackendProcess("default", "127.0.0.1", tmp_path / "node", extra_args=[
        "--default-silenced-expiry-time", "10m", "--max-silenced-expiry-time-allowed", "1h"])
    proc.start()
    try:
        await proc.wait_healthy(client)
        yield proc
    finally:
        proc.stop()


async def test_default_and_maximum_silence_expiry(node: BackendProcess, client: httpx.AsyncClient) -> None:
    api = await init_and_login(client, node)
    assert (await api.post(f"{NS}/silenced", {"metadata": meta("x"), "subscription": "linux"})).status_code == 201
    got = (await api.get(f"{NS}/silenced/{q('linux:*')}")).json()
    assert got["expire"] == -1 and got["expire_at"] == got["begin"] + 600
    kv = await api.store_get("/sensu.io/silenced/default/linux:*")
    assert kv is not None and kv["lease"] != 0  # the store ends it at expire_at

    r = await api.post(f"{NS}/silenced", {"metadata": meta("x"), "check": "disk", "expire": 7200})
    assert r.status_code == 400, r.text
    assert "max-silenced-expiry-time-allowed (3600s)" in r.json()["message"]
    r = await api.post(f"{NS}/silenced", {"metadata": meta("x"), "check": "disk", "expire": 1800})
    assert r.status_code == 201, r.text
    got = (await api.get(f"{NS}/silenced/{q('*:disk')}")).json()
    assert got["expire"] == 1800 and got["expire_at"] == got["begin"] + 1800
