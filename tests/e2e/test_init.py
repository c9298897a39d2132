"""``sensu-backend init`` against real backends: exactly once per cluster."""

from __future__ import annotations


import httpx
import trio

from tests.harness.agent import run_init
from tests.harness.backend import BackendProcess, Cluster


async def test_init_seeds_once_then_says_already_initialized(cluster3: Cluster) -> None:
    a, b, c = cluster3.nodes
    env = {"SENSU_BACKEND_CLUSTER_ADMIN_USERNAME": "admin", "SENSU_BACKEND_CLUSTER_ADMIN_PASSWORD": "P@ssw0rd!"}
    first = await trio.to_thread.run_sync(lambda: run_init(a.api_url, env=env))
    assert first.returncode == 0, first.stderr
    # a second init, through another node, is refused: the cluster already has its admin
    second = await trio.to_thread.run_sync(lambda: run_init(
        b.api_url, "--cluster-admin-username", "other", "--cluster-admin-password", "0therPassw0rd"))
    assert second.returncode == 3
    assert "already initialized" in second.stderr
    ignored = await trio.to_thread.run_sync(lambda: run_init(c.api_url, "--ignore-already-initialized", env=env))
    assert ignored.returncode == 0
    # the seed is replicated: every node knows the admin user (stored hashed)
    for node in cluster3.nodes:
        r = await cluster3.client.get(f"{node.debug_url}/debug/store/range", params={"prefix": "/sensu.io/users/"})
        users = [item["key"] for item in r.json()["items"]]
        assert users == ["/sensu.io/users/admin", "/sensu.io/users/agent"]
        raw = " ".join(item["value_b64"] for item in r.json()["items"])
        assert "P@ssw0rd" not in raw


async def test_init_without_a_backend_fails_with_a_message(tmp_path) -> None:  # type: ignore[no-untyped-def]
    result = await trio.to_thread.run_sync(lambda: run_init(
        "http://127.0.0.1:9", "--cluster-admin-username", "admin", "--cluster-admin-password", "P@ssw0rd!",
        "--timeout", "1s"))
    assert result.returncode == 1
    assert "no backend available" in result.stderr


async def test_init_rejects_a_short_password(tmp_path, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    node = BackendProcess("default", "127.0.0.1", tmp_path / "n")
    node.start()
    try:
        await node.wait_healthy(client)
        r = await client.post(f"{node.api_url}/init", json={"username": "admin", "password": "short"})
        assert r.status_code == 400
        assert "at least 8 characters" in r.json()["message"]
    finally:
        node.stop()
