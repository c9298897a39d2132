"""The cluster members API and cluster id on real processes (api.md §4), mapped onto Raft membership."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import httpx
import trio

from core.seed import CLUSTER_ID_KEY
from tests.harness.backend import BackendProcess, Cluster, make_cluster_nodes

from .test_api_users import admin_headers, bearer, bind_cluster_role, create_user, init_node, login, put_cluster_role

MEMBERS = "/api/core/v2/cluster/members"


def plain(r: httpx.Response) -> str:
    assert r.headers["content-type"].startswith("text/plain"), r.headers
    return r.text


async def test_member_list_cluster_id_and_errors(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    r = await client.get(f"{node.api_url}{MEMBERS}", headers=h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"header", "members"}
    assert set(body["header"]) <= {"cluster_id", "member_id", "raft_term"} and body["header"]["member_id"]
    [member] = body["members"]
    assert member == {"ID": body["header"]["member_id"], "name": "default", "peerURLs": [node.peer_url]}
    health = (await client.get(f"{node.api_url}/health")).json()
    assert health["ClusterHealth"][0]["MemberID"] == member["ID"]
    hexid = f"{member['ID']:x}"

    # the cluster id: a JSON string and a newline, the UUID init stored
    r = await client.get(f"{node.api_url}/api/core/v2/cluster/id", headers=h)
    assert r.status_code == 200
    stored = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": CLUSTER_ID_KEY})
    uuid = base64.b64decode(stored.json()["value_b64"]).decode()
    assert r.text == json.dumps(uuid) + "\n"
    assert json.loads(r.text) == uuid and len(uuid) == 36

    # failures are plain text
    r = await client.post(f"{node.api_url}{MEMBERS}", headers=h)
    assert (r.status_code, plain(r)) == (400, "missing peer-addrs form value\n")
    r = await client.post(f"{node.api_url}{MEMBERS}", params={"peer-addrs": "not a url"}, headers=h)
    assert r.status_code == 400 and plain(r)
    r = await client.post(f"{node.api_url}{MEMBERS}", params={"peer-addrs": node.peer_url}, headers=h)
    assert r.status_code == 409 and "already exists" in plain(r)
    r = await client.get(f"{node.api_url}{MEMBERS}", params={"timeout": "soon"}, headers=h)
    assert r.status_code == 400 and plain(r).startswith("bad timeout")
    assert (await client.get(f"{node.api_url}{MEMBERS}", params={"timeout": "5"}, headers=h)).status_code == 200
    r = await client.delete(f"{node.api_url}{MEMBERS}/xyz", headers=h)
    assert r.status_code == 400 and plain(r).startswith("bad id (")
    r = await client.delete(f"{node.api_url}{MEMBERS}/{member['ID'] ^ 1:x}", headers=h)
    assert r.status_code == 404 and plain(r)
    r = await client.delete(f"{node.api_url}{MEMBERS}/{hexid}", headers=h)
    assert r.status_code == 400 and "cannot remove itself" in plain(r)
    # update: the same peer URL is a no-op; another one is refused
    r = await client.put(f"{node.api_url}{MEMBERS}/{hexid}", params={"peer-addrs": node.peer_url}, headers=h)
    assert r.status_code == 200, r.text
    assert r.json()["members"] == body["members"]
    r = await client.put(f"{node.api_url}{MEMBERS}/{hexid}", params={"peer-addrs": "http://127.0.0.1:1"}, headers=h)
    assert r.status_code == 400 and plain(r).startswith("changing peer URLs is not supported")
    r = await client.put(f"{node.api_url}{MEMBERS}/{hexid}", headers=h)
    assert (r.status_code, plain(r)) == (400, "missing peer-addrs form value\n")


async def test_only_a_star_resource_rule_reaches_the_cluster_api(single_node: BackendProcess,
                                                                 client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    assert (await client.get(f"{node.api_url}{MEMBERS}")).status_code == 401
    # a role naming a resource "cluster" literally, with every verb, is still not enough
    await put_cluster_role(client, node, h, "cluster-literal", [{"verbs": ["*"], "resources": ["cluster"],
                                                                 "resource_names": None}])
    await create_user(client, node, h, "operator", "operatorpass")
    await bind_cluster_role(client, node, h, "operator-cluster", "cluster-literal", "operator")
    # "admin" (everything on the core set, roles and bindings) is not enough either
    await create_user(client, node, h, "nsadmin", "nsadminpass")
    await bind_cluster_role(client, node, h, "nsadmin-admin", "admin", "nsadmin")
    for creds in (("operator", "operatorpass"), ("nsadmin", "nsadminpass")):
        t = bearer(await login(client, node, creds))
        for method, path in (("GET", MEMBERS), ("POST", f"{MEMBERS}?peer-addrs=http://127.0.0.9:2380"),
                             ("DELETE", f"{MEMBERS}/1"), ("PUT", f"{MEMBERS}/1?peer-addrs=http://127.0.0.9:1"),
                             ("GET", "/api/core/v2/cluster/id")):
            r = await client.request(method, f"{node.api_url}{path}", headers=t)
            assert r.status_code == 403, (creds, method, path, r.text)
    # a role with resource "*" (a second cluster-admin) is
    await put_cluster_role(client, node, h, "everything", [{"verbs": ["*"], "resources": ["*"],
                                                            "resource_names": None}])
    await bind_cluster_role(client, node, h, "operator-everything", "everything", "operator")
    t = bearer(await login(client, node, ("operator", "operatorpass")))
    assert (await client.get(f"{node.api_url}{MEMBERS}", headers=t)).status_code == 200


async def _names(client: httpx.AsyncClient, node: BackendProcess, h: dict[str, str]) -> list[str]:
    r = await client.get(f"{node.api_url}{MEMBERS}", headers=h)
    assert r.status_code == 200, r.text
    return sorted(m.get("name", "") for m in r.json()["members"])


async def test_add_then_remove_a_member_through_the_api(tmp_path: Path, client: httpx.AsyncClient) -> None:
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
        await init_node(first3[0])
        h = await admin_headers(client, first3[0])
        assert await _names(client, first3[1], h) == [n.name for n in first3]

        # etcd's order: announce the member, then start it with state "existing"
        r = await client.post(f"{first3[1].api_url}{MEMBERS}", params={"peer-addrs": fourth.peer_url}, headers=h)
        assert r.status_code == 200, r.text
        added: dict[str, Any] = r.json()
        assert set(added) == {"header", "member", "members"}
        assert added["member"]["peerURLs"] == [fourth.peer_url]
        address = fourth.peer_url.split("//", 1)[1]
        # until the new node registers itself, its address stands in for its name
        assert {"ID": added["member"]["ID"], "name": address, "peerURLs": [fourth.peer_url]} in added["members"]

        fourth.state_arg = "existing"
        fourth.start()
        cluster.nodes.append(fourth)
        await fourth.wait_healthy(client, 45)
        last: list[Any] = []
        try:
            with trio.fail_after(30):
                while True:
                    last[:] = await _names(client, first3[0], h)
                    if last == [n.name for n in nodes]:
                        break
                    await trio.sleep(0.1)
        except trio.TooSlowError:
            raise AssertionError(f"the new member never registered its name: {last}\n{cluster.logs()}") from None
        # the new node serves the same API, with the same tokens
        assert await _names(client, fourth, h) == [n.name for n in nodes]

        members = (await client.get(f"{first3[0].api_url}{MEMBERS}", headers=h)).json()["members"]
        gone = next(m for m in members if m["name"] == fourth.name)
        r = await client.delete(f"{first3[2].api_url}{MEMBERS}/{gone['ID']:x}", headers=h)
        assert r.status_code == 200, r.text
        assert fourth.name not in [m.get("name") for m in r.json()["members"]]
        try:
            with trio.fail_after(30):
                while await _names(client, first3[0], h) != [n.name for n in first3]:
                    await trio.sleep(0.1)
        except trio.TooSlowError:
            raise AssertionError(f"member not removed\n{cluster.logs()}") from None
        r = await client.put(f"{first3[0].api_url}/api/core/v2/users/after-remove",
                             json={"username": "after-remove", "password": "longenough"}, headers=h)
        assert r.status_code == 201, r.text
    finally:
        cluster.stop()
