"""The replicated store across real processes: replication, failover, leases, watches.

Writes and reads go through each node's debug store API (``--debug``), which
is the store's own async API over HTTP; every process is a real
``sensu-backend``.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import trio

from tests.harness.backend import BackendProcess, Cluster, make_cluster_nodes


async def put(client: httpx.AsyncClient, node: BackendProcess, key: str, value: str, **params: str) -> httpx.Response:
    return await client.put(f"{node.debug_url}/debug/store/kv", params={"key": key, **params}, content=value)


async def get(client: httpx.AsyncClient, node: BackendProcess, key: str) -> dict | None:
    r = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": key})
    return r.json() if r.status_code == 200 else None


async def keys(client: httpx.AsyncClient, node: BackendProcess, prefix: str) -> dict[str, str]:
    r = await client.get(f"{node.debug_url}/debug/store/range", params={"prefix": prefix})
    r.raise_for_status()
    return {item["key"]: item["value"] for item in r.json()["items"]}


async def wait_for(predicate, timeout: float = 20.0, interval: float = 0.05):  # type: ignore[no-untyped-def]
    with trio.fail_after(timeout):
        while True:
            result = await predicate()
            if result:
                return result
            await trio.sleep(interval)


async def test_single_node_restart_keeps_state(tmp_path: Path, client: httpx.AsyncClient) -> None:
    node = BackendProcess("default", "127.0.0.1", tmp_path / "node")
    node.start()
    try:
        await node.wait_healthy(client)
        for i in range(50):
            assert (await put(client, node, f"/t/{i:03}", f"v{i}")).status_code == 200
        node.kill()
        node.start()
        await node.wait_healthy(client)
        got = await keys(client, node, "/t/")
        assert got == {f"/t/{i:03}": f"v{i}" for i in range(50)}
        # and a clean stop also keeps it
        assert node.stop() == 0
        node.start()
        await node.wait_healthy(client)
        assert len(await keys(client, node, "/t/")) == 50
    finally:
        node.stop()


async def test_write_through_one_node_reads_from_all(cluster3: Cluster, client: httpx.AsyncClient) -> None:
    a, b, c = cluster3.nodes
    r = await put(client, b, "/hello", "world")
    assert r.status_code == 200
    # read-your-writes on the node that acknowledged
    assert (await get(client, b, "/hello"))["value"] == "world"
    for node in (a, c):
        async def replicated(node: BackendProcess = node) -> bool:
            got = await get(client, node, "/hello")
            return got is not None and got["value"] == "world"
        await wait_for(replicated)
    # A quorum needs only the links to the leader; the follower-to-follower
    # link forms on its own retry (connectionRetryTime), so wait for the mesh.
    async def whole_mesh() -> dict | None:
        health = (await client.get(f"{a.api_url}/health")).json()
        return health if all(m["Healthy"] for m in health["ClusterHealth"]) else None
    health = await wait_for(whole_mesh)
    assert sorted(m["Name"] for m in health["ClusterHealth"]) == ["backend-0", "backend-1", "backend-2"]
    assert sum(m["IsLeader"] for m in health["ClusterHealth"]) == 1


async def test_kill_leader_during_writes_loses_no_acknowledged_write(cluster3: Cluster, client: httpx.AsyncClient) -> None:
    leader = await cluster3.leader()
    followers = [n for n in cluster3.nodes if n is not leader]
    acked: list[str] = []
    failed = 0
    stop_writing = trio.Event()

    async def writer(node: BackendProcess, wid: int) -> None:
        nonlocal failed
        i = 0
        while not stop_writing.is_set():
            key = f"/w/{wid}/{i:05}"
            try:
                r = await put(client, node, key, "x")
            except httpx.HTTPError:
                failed += 1
                await trio.sleep(0.05)
                continue
            if r.status_code == 200:
                acked.append(key)
                i += 1
            else:
                failed += 1
                await trio.sleep(0.05)

    async with trio.open_nursery() as nursery:
        # writers go through the followers, so the write path survives the kill
        for wid, node in enumerate(followers * 2):
            nursery.start_soon(writer, node, wid)
        await wait_for(lambda: _ready(len(acked) >= 200))
        before_kill = len(acked)
        leader.kill()
        new_leader = await cluster3.leader(timeout=20)
        assert new_leader is not leader
        await wait_for(lambda: _ready(len(acked) >= before_kill + 200))
        stop_writing.set()

    for node in followers:
        present = await keys(client, node, "/w/")
        missing = [k for k in acked if k not in present]
        assert not missing, f"{node.name} lost {len(missing)} acknowledged writes, e.g. {missing[:5]}"

    # the killed node restarts and catches up on everything
    leader.start()
    await leader.wait_healthy(client)

    async def caught_up() -> bool:
        present = await keys(client, leader, "/w/")
        return all(k in present for k in acked)
    await wait_for(caught_up, timeout=30)


async def _ready(value: bool) -> bool:
    return value


async def test_watch_sees_every_change_once_in_order_across_leader_change(cluster3: Cluster, client: httpx.AsyncClient) -> None:
    leader = await cluster3.leader()
    watched, writer_node = [n for n in cluster3.nodes if n is not leader]
    seen: list[tuple[int, str]] = []
    acked: list[str] = []
    done = trio.Event()
    watching = trio.Event()

    async def watch() -> None:
        async with client.stream("GET", f"{watched.debug_url}/debug/store/watch", params={"prefix": "/watch/"},
                                 timeout=httpx.Timeout(60.0)) as resp:
            async for line in resp.aiter_lines():
                if not line.strip():
                    continue
                msg = json.loads(line)
                assert "lagged" not in msg
                if "watching" in msg:
                    watching.set()
                if "key" in msg:
                    seen.append((msg["revision"], msg["key"]))
                if done.is_set() and all_seen():
                    return

    def all_seen() -> bool:
        keys_seen = {k for _, k in seen}
        return all(k in keys_seen for k in acked)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(watch)
        await watching.wait()
        for i in range(300):
            if i == 100:
                leader.kill()
            while True:
                try:
                    r = await put(client, writer_node, f"/watch/{i:04}", str(i))
                    if r.status_code == 200:
                        acked.append(f"/watch/{i:04}")
                        break
                except httpx.HTTPError:
                    pass
                await trio.sleep(0.05)
        done.set()
        try:
            with trio.fail_after(30):
                while not all_seen():
                    await trio.sleep(0.05)
        except trio.TooSlowError:
            keys_seen = {k for _, k in seen}
            missing = [k for k in acked if k not in keys_seen]
            raise AssertionError(f"watch never saw {missing[:10]} ({len(missing)} missing)\n{cluster3.logs()}") from None
        nursery.cancel_scope.cancel()

    revisions = [r for r, _ in seen]
    assert revisions == sorted(revisions), "events out of revision order"
    keys_seen = [k for _, k in seen]
    assert len(keys_seen) == len(set(keys_seen)), "an event was delivered twice"
    assert keys_seen == acked


async def test_lease_expires_exactly_once_cluster_wide_across_leader_change(cluster3: Cluster, client: httpx.AsyncClient) -> None:
    leader = await cluster3.leader()
    others = [n for n in cluster3.nodes if n is not leader]
    r = await client.post(f"{others[0].debug_url}/debug/store/lease", params={"ttl": "2"})
    lease = r.json()["id"]
    assert (await put(client, others[0], "/lease/k", "v", lease=str(lease))).status_code == 200
    deletes: dict[str, int] = {n.name: 0 for n in others}
    started = {n.name: trio.Event() for n in others}

    async def watch(node: BackendProcess) -> None:
        async with client.stream("GET", f"{node.debug_url}/debug/store/watch", params={"prefix": "/lease/"},
                                 timeout=httpx.Timeout(60.0)) as resp:
            async for line in resp.aiter_lines():
                if line.strip():
                    msg = json.loads(line)
                    if "watching" in msg:
                        started[node.name].set()
                    if msg.get("type") == "DELETE" and msg["key"] == "/lease/k":
                        deletes[node.name] += 1

    async with trio.open_nursery() as nursery:
        for node in others:
            nursery.start_soon(watch, node)
        for event in started.values():
            await event.wait()
        leader.kill()  # the lease must still expire, decided by the next leader
        await cluster3.leader(timeout=20)

        async def gone() -> bool:
            return all([await get(client, n, "/lease/k") is None for n in others])
        await wait_for(gone, timeout=20)
        # a further write proves the log moved on; no second expiry appears
        await put(client, others[0], "/lease/after", "x")
        await wait_for(lambda: _ready(all(v >= 1 for v in deletes.values())))
        nursery.cancel_scope.cancel()
    assert deletes == {n.name: 1 for n in others}


async def test_node_with_another_token_is_refused(tmp_path: Path, client: httpx.AsyncClient) -> None:
    nodes = make_cluster_nodes(tmp_path, 3)
    nodes[2].token = "some-other-cluster"
    cluster = Cluster(nodes, client)
    try:
        for n in nodes:
            n.start()
        await nodes[0].wait_healthy(client)
        await nodes[1].wait_healthy(client)
        await put(client, nodes[0], "/only/members", "yes")
        # the intruder never gets a leader, and the members say why
        got = await nodes[2].health(client)
        assert got is None or got[0] == 503
        assert await get(client, nodes[2], "/only/members") is None

        async def logged() -> bool:
            return any("etcd-initial-cluster-token differs" in n.log() for n in nodes[:2])
        await wait_for(logged)
    finally:
        cluster.stop()


async def test_add_a_fourth_member_then_remove_it(tmp_path: Path, client: httpx.AsyncClient) -> None:
    nodes = make_cluster_nodes(tmp_path, 4)
    first3, fourth = nodes[:3], nodes[3]
    initial3 = ",".join(f"{n.name}={n.peer_url}" for n in first3)
    for n in first3:
        n.initial_cluster = initial3
    cluster = Cluster(list(first3), client)
    try:
        for n in first3:
            n.start()
        await cluster.wait_healthy(45)
        await put(client, first3[0], "/before/join", "1")
        # etcd's way: add the member first, then start it with state "existing"
        r = await client.post(f"{first3[1].debug_url}/debug/cluster/members",
                              params={"name": fourth.name, "peer_url": fourth.peer_url})
        assert r.status_code == 200, r.text
        fourth.state_arg = "existing"
        fourth.start()
        cluster.nodes.append(fourth)
        await fourth.wait_healthy(client, 45)

        async def replicated() -> bool:
            return (await get(client, fourth, "/before/join")) is not None
        await wait_for(replicated)
        health = (await client.get(f"{first3[0].api_url}/health")).json()
        assert sorted(m["Name"] for m in health["ClusterHealth"]) == [n.name for n in nodes]

        r = await client.request("DELETE", f"{first3[0].debug_url}/debug/cluster/members",
                                 params={"peer_url": fourth.peer_url})
        assert r.status_code == 200, r.text

        last: list[object] = []

        async def three_left() -> bool:
            h = (await client.get(f"{first3[0].api_url}/health")).json()
            last[:] = [h]
            return sorted(m["Name"] for m in h["ClusterHealth"]) == [n.name for n in first3]
        try:
            await wait_for(three_left)
        except trio.TooSlowError:
            raise AssertionError(f"still {last}") from None
        assert (await put(client, first3[2], "/after/remove", "1")).status_code == 200
    finally:
        cluster.stop()
