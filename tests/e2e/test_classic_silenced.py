"""The Sensu 0.28 ``/silenced`` API (api.md §6): every example of seed 004, with the admin's Basic auth.

Each seed example is replayed on an empty registry (the seed's GETs show one
entry each) and compared exactly with the documented body, except ``expire``
after an expiring POST, which counts down.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import httpx
import trio

from core.resources import keys
from tests.harness.backend import BackendProcess

from .test_api_users import ADMIN, admin_headers, bind_cluster_role, create_user, init_node

JSON = {"Content-Type": "application/json"}


def entry(**fields: Any) -> dict[str, Any]:
    """A classic entry with the seed's defaults."""
    base: dict[str, Any] = {"expire": -1, "expire_on_resolve": False, "creator": None, "reason": None,
                            "check": None, "subscription": None}
    base.update(fields)
    base["id"] = f"{base['subscription'] or '*'}:{base['check'] or '*'}"
    return base


async def post(client: httpx.AsyncClient, node: BackendProcess, path: str, body: Any,
               auth: tuple[str, str] | None = ADMIN) -> httpx.Response:
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return await client.request("POST", f"{node.api_url}{path}", content=data, headers=JSON, auth=auth)


async def listing(client: httpx.AsyncClient, node: BackendProcess, path: str = "/silenced",
                  **params: str) -> list[dict[str, Any]]:
    r = await client.get(f"{node.api_url}{path}", params=params, auth=ADMIN)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/json")
    items: list[dict[str, Any]] = r.json()
    return items


async def clear_all(client: httpx.AsyncClient, node: BackendProcess) -> None:
    for item in await listing(client, node):
        r = await post(client, node, "/silenced/clear", {"id": item["id"]})
        assert r.status_code == 204, r.text
    assert await listing(client, node) == []


async def test_every_seed_example(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    assert await listing(client, node) == []

    # Silence all checks on a specific client
    r = await post(client, node, "/silenced", {"subscription": "client:i-424242"})
    assert (r.status_code, r.content) == (201, b"")
    assert await listing(client, node) == [entry(subscription="client:i-424242")]
    assert (await listing(client, node))[0]["id"] == "client:i-424242:*"
    # ... make it expire in 3600 seconds: the same id, replaced, expire counting down
    r = await post(client, node, "/silenced", {"subscription": "client:i-424242", "expire": 3600})
    assert (r.status_code, r.content) == (201, b"")
    [got] = await listing(client, node)
    assert 3500 < got["expire"] <= 3600
    assert got == entry(subscription="client:i-424242", expire=got["expire"])

    # Silence a specific check on a specific client, then make it expire on resolve
    await clear_all(client, node)
    r = await post(client, node, "/silenced", {"subscription": "client:i-424242", "check": "check_ntp"})
    assert (r.status_code, r.content) == (201, b"")
    assert await listing(client, node) == [entry(subscription="client:i-424242", check="check_ntp")]
    r = await post(client, node, "/silenced", {"subscription": "client:i-424242", "check": "check_ntp",
                                               "expire_on_resolve": True})
    assert (r.status_code, r.content) == (201, b"")
    assert await listing(client, node) == [entry(subscription="client:i-424242", check="check_ntp",
                                                 expire_on_resolve=True)]

    # Silence all checks on clients with a specific subscription
    await clear_all(client, node)
    r = await post(client, node, "/silenced", {"subscription": "appserver"})
    assert (r.status_code, r.content) == (201, b"")
    assert await listing(client, node) == [entry(subscription="appserver")]

    # Silence a specific check on clients with a specific subscription (the seed's GET body, verbatim)
    await clear_all(client, node)
    r = await post(client, node, "/silenced", {"subscription": "appserver", "check": "mysql_status"})
    assert (r.status_code, r.content) == (201, b"")
    assert await listing(client, node) == [{
        "expire": -1, "expire_on_resolve": False, "creator": None, "reason": None, "check": "mysql_status",
        "subscription": "appserver", "id": "appserver:mysql_status"}]

    # Deleting silencing entries
    r = await post(client, node, "/silenced/clear", {"id": "appserver:mysql_status"})
    assert (r.status_code, r.content) == (204, b"")
    assert await listing(client, node) == []

    # Silence a specific check on every client (the seed's GET body, verbatim)
    r = await post(client, node, "/silenced", {"check": "mysql_status"})
    assert (r.status_code, r.content) == (201, b"")
    assert await listing(client, node) == [{
        "expire": -1, "expire_on_resolve": False, "creator": None, "reason": None, "check": "mysql_status",
        "subscription": None, "id": "*:mysql_status"}]


async def test_attribute_examples(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    """The request bodies of the seed's attribute table, each on its own."""
    node = single_node
    await init_node(node)
    examples: list[tuple[dict[str, Any], dict[str, Any]]] = [
        ({"check": "haproxy_status"}, entry(check="haproxy_status")),
        ({"check": "haproxy_status", "subscription": "load_balancer"},
         entry(check="haproxy_status", subscription="load_balancer")),
        ({"subscription": "client:i-424242"}, entry(subscription="client:i-424242")),
        ({"subscription": "client:i-424242", "check": "haproxy_status"},
         entry(subscription="client:i-424242", check="haproxy_status")),
        ({"expire": 3600, "check": "disk_utilization", "subscription": "client:i-424242"},
         entry(expire=3600, check="disk_utilization", subscription="client:i-424242")),
        ({"expire_on_resolve": True, "check": "mysql_status"}, entry(expire_on_resolve=True, check="mysql_status")),
        ({"creator": "Application Deploy Tool 5.0", "subscription": "appservers", "check": "app_status"},
         entry(creator="Application Deploy Tool 5.0", subscription="appservers", check="app_status")),
        ({"creator": "patrick", "subscription": "client:darkstar", "reason": "brb, rebooting"},
         entry(creator="patrick", subscription="client:darkstar", reason="brb, rebooting")),
    ]
    for body, expected in examples:
        await clear_all(client, node)
        r = await post(client, node, "/silenced", body)
        assert (r.status_code, r.content) == (201, b""), (body, r.text)
        [got] = await listing(client, node)
        if expected["expire"] > 0:
            assert expected["expire"] - 60 < got["expire"] <= expected["expire"]
            expected = {**expected, "expire": got["expire"]}
        assert got == expected, body


async def test_lookups_clear_and_pagination(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    for body in ({"subscription": "appserver", "check": "mysql_status"}, {"subscription": "appserver"},
                 {"check": "mysql_status"}, {"subscription": "client:i-424242"}):
        assert (await post(client, node, "/silenced", body)).status_code == 201
    ids = [e["id"] for e in await listing(client, node)]
    assert sorted(ids) == sorted(["appserver:mysql_status", "appserver:*", "*:mysql_status", "client:i-424242:*"])
    assert [e["id"] for e in await listing(client, node, "/silenced/subscriptions/appserver")] == [
        "appserver:*", "appserver:mysql_status"]
    assert sorted(e["id"] for e in await listing(client, node, "/silenced/checks/mysql_status")) == [
        "*:mysql_status", "appserver:mysql_status"]
    assert await listing(client, node, "/silenced/checks/nothing") == []
    r = await client.get(f"{node.api_url}/silenced/ids/{urllib.parse.quote('client:i-424242:*', safe='')}",
                         auth=ADMIN)
    assert r.status_code == 200 and r.json() == entry(subscription="client:i-424242")
    r = await client.get(f"{node.api_url}/silenced/ids/nope:*", auth=ADMIN)
    assert (r.status_code, r.content) == (404, b"")

    # pagination, Sensu 1.x style
    r = await client.get(f"{node.api_url}/silenced", params={"limit": "3"}, auth=ADMIN)
    assert r.status_code == 200 and [e["id"] for e in r.json()] == ids[:3]
    assert json.loads(r.headers["X-Pagination"]) == {"limit": 3, "offset": 0, "total": 4}
    r = await client.get(f"{node.api_url}/silenced", params={"limit": "3", "offset": "3"}, auth=ADMIN)
    assert [e["id"] for e in r.json()] == ids[3:]
    assert json.loads(r.headers["X-Pagination"]) == {"limit": 3, "offset": 3, "total": 4}
    r = await client.get(f"{node.api_url}/silenced", params={"limit": "x"}, auth=ADMIN)
    assert len(r.json()) == 4 and "X-Pagination" not in r.headers

    # clear: by subscription + check, by subscription alone, unknown (404), nothing (400)
    r = await post(client, node, "/silenced/clear", {"subscription": "appserver", "check": "mysql_status"})
    assert (r.status_code, r.content) == (204, b"")
    r = await post(client, node, "/silenced/clear", {"subscription": "appserver", "check": "mysql_status"})
    assert (r.status_code, r.content) == (404, b"")
    r = await post(client, node, "/silenced/clear", {"subscription": "appserver"})
    assert r.status_code == 204
    r = await post(client, node, "/silenced/clear", {"check": "mysql_status"})
    assert r.status_code == 204
    r = await post(client, node, "/silenced/clear", {"id": "nope:nope"})
    assert (r.status_code, r.content) == (404, b"")
    for bad in ({}, {"reason": "x"}, {"id": 5}, b"{", b"[]", b"[" * 5000):
        r = await post(client, node, "/silenced/clear", bad)
        assert (r.status_code, r.content) == (400, b""), bad
    assert [e["id"] for e in await listing(client, node)] == ["client:i-424242:*"]


async def test_bad_requests_are_empty_400s(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    deep = b'{"check": ' + b"[" * 5000 + b"]" * 5000 + b"}"  # valid JSON past the recursion limit
    for bad in (b"", b"{", b"[]", b"null", b"[" * 5000, deep, {}, {"reason": "no target"},
                {"subscription": None, "check": None},
                {"subscription": 5}, {"check": ["a"]}, {"subscription": "has space"}, {"check": "a:b"},
                {"subscription": "x", "expire": "60"}, {"subscription": "x", "expire": True},
                {"subscription": "x", "expire_on_resolve": "yes"}, {"subscription": "x", "reason": 1},
                {"subscription": "x", "creator": {}}, {"subscription": "x", "begin": "now"},
                {"subscription": ""}):
        r = await post(client, node, "/silenced", bad)
        assert (r.status_code, r.content) == (400, b""), bad
    r = await client.post(f"{node.api_url}/silenced", params={"namespace": "nowhere"},
                          content=json.dumps({"subscription": "x"}), headers=JSON, auth=ADMIN)
    assert r.status_code == 400
    # explicit nulls are fine (Sensu 1.x: nil_ok)
    r = await post(client, node, "/silenced", {"subscription": "x", "check": None, "expire": None, "reason": None,
                                               "creator": None, "expire_on_resolve": None, "begin": None})
    assert r.status_code == 201
    assert await listing(client, node) == [entry(subscription="x")]


async def test_authentication(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    url = f"{node.api_url}/silenced"
    for auth in (None, ("admin", "wrong-password"), ("nobody", "whatever1")):
        for method, path, body in (("GET", "", None), ("POST", "", {"subscription": "x"}),
                                   ("POST", "/clear", {"id": "x:*"}), ("GET", "/ids/x:*", None)):
            r = await client.request(method, url + path, content=json.dumps(body) if body else None,
                                     headers=JSON, auth=auth)
            assert (r.status_code, r.content) == (401, b""), (auth, method, path)
            assert r.headers["WWW-Authenticate"] == 'Basic realm="Restricted Area"'
    for header in ("Bearer nope", "Key nope", "Digest x"):
        r = await client.get(url, headers={"Authorization": header})
        assert r.status_code == 401 and "WWW-Authenticate" in r.headers
    # Bearer and Key work too
    h = await admin_headers(client, node)
    assert (await client.get(url, headers=h)).status_code == 200
    r = await client.post(f"{node.api_url}/api/core/v2/apikeys", json={"username": "admin"}, headers=h)
    key = r.headers["Location"].rsplit("/", 1)[1]
    r = await client.post(url, content=json.dumps({"check": "by_key"}), headers={**JSON, "Authorization": f"Key {key}"})
    assert r.status_code == 201
    # RBAC applies: a view-only user may read but not silence
    await create_user(client, node, h, "viewer", "viewerpass")
    await bind_cluster_role(client, node, h, "viewer-view", "view", "viewer")
    assert (await client.get(url, auth=("viewer", "viewerpass"))).status_code == 200
    r = await client.post(url, content=json.dumps({"check": "nope"}), headers=JSON, auth=("viewer", "viewerpass"))
    assert r.status_code == 403
    r = await client.post(f"{url}/clear", content=json.dumps({"id": "*:by_key"}), headers=JSON,
                          auth=("viewer", "viewerpass"))
    assert r.status_code == 403
    assert [e["id"] for e in await listing(client, node)] == ["*:by_key"]


async def test_shared_with_core_v2_and_expired_by_the_store(single_node: BackendProcess,
                                                             client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    r = await post(client, node, "/silenced", {"subscription": "client:i-424242", "expire": 3600,
                                               "creator": "patrick", "reason": "maintenance"})
    assert r.status_code == 201
    # a core/v2 object in namespace default: expire as stored, the server's created_by
    key = keys.key_for("silenced", "default", "client:i-424242:*")
    r = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": key})
    assert r.status_code == 200 and r.json()["lease"] != 0
    core = await client.get(f"{node.api_url}/api/core/v2/namespaces/default/silenced/"
                            f"{urllib.parse.quote('client:i-424242:*', safe='')}", headers=h)
    if core.status_code != 404 or core.json().get("message") != "not found":  # core/v2 routes exist
        assert core.status_code == 200, core.text
        got = core.json()
        assert got["expire"] == 3600 and got["expire_at"] - got["begin"] == 3600
        assert got["metadata"]["name"] == "client:i-424242:*" and got["creator"] == "patrick"
        assert got["subscription"] == "client:i-424242" and got["reason"] == "maintenance"
    # a re-post without expiry detaches the entry from its lease
    assert (await post(client, node, "/silenced", {"subscription": "client:i-424242"})).status_code == 201
    r = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": key})
    assert r.json()["lease"] == 0
    # a short expiry: the store deletes the entry at expire_at, on its own
    assert (await post(client, node, "/silenced", {"check": "short", "expire": 1})).status_code == 201
    short_key = keys.key_for("silenced", "default", "*:short")
    r = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": short_key})
    assert r.status_code == 200 and r.json()["lease"] != 0
    with trio.fail_after(15):
        while (await client.get(f"{node.debug_url}/debug/store/kv", params={"key": short_key})).status_code != 404:
            await trio.sleep(0.1)
    assert [e["id"] for e in await listing(client, node)] == ["client:i-424242:*"]
    # a begin in the past with an expiry already over is accepted and never visible
    r = await post(client, node, "/silenced", {"check": "past", "begin": 1000, "expire": 60})
    assert r.status_code == 201
    assert [e["id"] for e in await listing(client, node)] == ["client:i-424242:*"]
    # ?namespace= targets another namespace
    r = await client.put(f"{node.api_url}/api/core/v2/namespaces/other", json={"name": "other"}, headers=h)
    if r.status_code in (200, 201):
        r = await client.post(f"{node.api_url}/silenced", params={"namespace": "other"},
                              content=json.dumps({"check": "elsewhere"}), headers=JSON, auth=ADMIN)
        assert r.status_code == 201
        assert [e["id"] for e in await listing(client, node, namespace="other")] == ["*:elsewhere"]
        assert "*:elsewhere" not in [e["id"] for e in await listing(client, node)]
