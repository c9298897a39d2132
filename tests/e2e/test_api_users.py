"""Users, API keys and authentication failures against a real backend (api.md §2.12, §2.14, §3).

The helpers at the top (init, login, users, cluster role bindings) are shared
by the other API test modules.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import bcrypt
import httpx
import msgpack
import trio

from api.auth import sign_jwt
from core.seed import JWT_SECRET_KEY
from tests.harness.backend import BackendProcess

from .test_init import run_init

ADMIN = ("admin", "P@ssw0rd!")
USERS = "/api/core/v2/users"
APIKEYS = "/api/core/v2/apikeys"
HASH_MISMATCH = "hashed password does not the match the cleartext password, only one of those should be provided"


# ---------------------------------------------------------------------- shared helpers


async def init_node(node: BackendProcess, *extra: str) -> None:
    """``sensu-backend init`` with the default admin, through ``node``."""
    result = await trio.to_thread.run_sync(lambda: run_init(
        node.api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1], *extra))
    assert result.returncode == 0, result.stderr


async def login(client: httpx.AsyncClient, node: BackendProcess, creds: tuple[str, str] = ADMIN) -> dict[str, Any]:
    r = await client.get(f"{node.api_url}/auth", auth=creds)
    assert r.status_code == 200, r.text
    tokens: dict[str, Any] = r.json()
    return tokens


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def admin_headers(client: httpx.AsyncClient, node: BackendProcess) -> dict[str, str]:
    return bearer(await login(client, node))


async def create_user(client: httpx.AsyncClient, node: BackendProcess, headers: dict[str, str], name: str,
                      password: str, groups: list[str] | None = None) -> None:
    body: dict[str, Any] = {"username": name, "password": password}
    if groups is not None:
        body["groups"] = groups
    r = await client.post(f"{node.api_url}{USERS}", json=body, headers=headers)
    assert r.status_code == 201, r.text


async def bind_cluster_role(client: httpx.AsyncClient, node: BackendProcess, headers: dict[str, str],
                            binding: str, role: str, username: str) -> None:
    """A ClusterRoleBinding of ``username`` to ``role``: through the API, else the debug store."""
    body = {"metadata": {"name": binding}, "subjects": [{"type": "User", "name": username}],
            "role_ref": {"type": "ClusterRole", "name": role}}
    r = await client.put(f"{node.api_url}/api/core/v2/clusterrolebindings/{binding}", json=body, headers=headers)
    if r.status_code in (200, 201):
        return
    assert r.status_code == 404, r.text  # route not there yet: write it the way the registry stores it
    from core.resources import resource_type

    rtype = resource_type("clusterrolebindings")
    value = rtype.encode(rtype.from_wire(body))
    r = await client.put(f"{node.debug_url}/debug/store/kv", params={"key": rtype.key_of(rtype.from_wire(body))},
                         content=value)
    assert r.status_code == 200, r.text


async def put_cluster_role(client: httpx.AsyncClient, node: BackendProcess, headers: dict[str, str], name: str,
                           rules: list[dict[str, Any]]) -> None:
    body = {"metadata": {"name": name}, "rules": rules}
    r = await client.put(f"{node.api_url}/api/core/v2/clusterroles/{name}", json=body, headers=headers)
    if r.status_code in (200, 201):
        return
    assert r.status_code == 404, r.text
    from core.resources import resource_type

    rtype = resource_type("clusterroles")
    obj = rtype.from_wire(body)
    r = await client.put(f"{node.debug_url}/debug/store/kv", params={"key": rtype.key_of(obj)},
                         content=rtype.encode(obj))
    assert r.status_code == 200, r.text


async def read_jwt_secret(client: httpx.AsyncClient, node: BackendProcess) -> bytes:
    r = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": JWT_SECRET_KEY})
    assert r.status_code == 200, r.text
    return base64.b64decode(r.json()["value_b64"])


def jwt_claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


# ---------------------------------------------------------------------- users


async def test_user_create_get_list_never_show_passwords(single_node: BackendProcess,
                                                         client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    r = await client.post(f"{node.api_url}{USERS}", json={"username": "alice", "password": "alicepass1"}, headers=h)
    assert (r.status_code, r.content) == (201, b"")
    r = await client.post(f"{node.api_url}{USERS}", json={"username": "alice", "password": "alicepass1"}, headers=h)
    assert r.status_code == 409
    assert r.json() == {"message": "resource already exists", "code": 3}
    r = await client.get(f"{node.api_url}{USERS}/alice", headers=h)
    assert r.status_code == 200
    assert r.json() == {"username": "alice", "disabled": False}
    assert r.headers["ETag"].startswith('"')
    r = await client.get(f"{node.api_url}{USERS}", headers=h)
    assert r.status_code == 200
    assert [u["username"] for u in r.json()] == ["admin", "agent", "alice"]
    assert all("disabled" in u and "password" not in u and "password_hash" not in u for u in r.json())
    assert "password" not in r.text
    r = await client.get(f"{node.api_url}{USERS}", params={"limit": "2"}, headers=h)
    assert [u["username"] for u in r.json()] == ["admin", "agent"]
    r = await client.get(f"{node.api_url}{USERS}", params={"continue": r.headers["Sensu-Continue"]}, headers=h)
    assert [u["username"] for u in r.json()] == ["alice"] and "Sensu-Continue" not in r.headers
    r = await client.get(f"{node.api_url}{USERS}", params={"fieldSelector": "user.username == agent"}, headers=h)
    assert [u["username"] for u in r.json()] == ["agent"]
    r = await client.get(f"{node.api_url}{USERS}/nobody", headers=h)
    assert r.status_code == 404
    # the new user logs in, and its stored hash is bcrypt
    await login(client, node, ("alice", "alicepass1"))
    r = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": "/sensu.io/users/alice"})
    stored = msgpack.unpackb(base64.b64decode(r.json()["value_b64"]), raw=False)
    assert stored["password_hash"].startswith("$2b$") and "alicepass1" not in r.text


async def test_user_put_password_rules(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    url = f"{node.api_url}{USERS}/bob"
    good_hash = bcrypt.hashpw(b"bobpassword", bcrypt.gensalt()).decode()
    # a hash alone is stored as sent ($2b$, and the $2a$/$2y$ spellings of the same hash)
    for prefix in ("$2b$", "$2a$", "$2y$"):
        r = await client.put(url, json={"username": "bob", "password_hash": prefix + good_hash[4:]}, headers=h)
        assert (r.status_code, r.content) == (201, b""), r.text
        await login(client, node, ("bob", "bobpassword"))
    # both: must match
    r = await client.put(url, json={"username": "bob", "password": "bobpassword", "password_hash": good_hash,
                                    "groups": ["dev"]}, headers=h)
    assert r.status_code == 201, r.text
    assert (await client.get(url, headers=h)).json() == {"username": "bob", "groups": ["dev"], "disabled": False}
    r = await client.put(url, json={"username": "bob", "password": "otherpassword", "password_hash": good_hash},
                         headers=h)
    assert r.status_code == 400
    assert r.json() == {"message": HASH_MISMATCH, "code": 1}
    # neither
    r = await client.put(url, json={"username": "bob", "groups": ["ops"]}, headers=h)
    assert r.status_code == 400
    assert r.json() == {"message": "a password or its hash is required", "code": 1}
    # too short, bad hash, name mismatch, bad username, bad JSON
    r = await client.put(url, json={"username": "bob", "password": "short"}, headers=h)
    assert r.status_code == 400 and "8" in r.json()["message"]
    r = await client.put(url, json={"username": "bob", "password_hash": "plain-text"}, headers=h)
    assert r.status_code == 400
    r = await client.put(url, json={"username": "carol", "password": "longenough"}, headers=h)
    assert r.status_code == 400 and "does not match" in r.json()["message"]
    r = await client.put(f"{node.api_url}{USERS}/Bad%20Name", json={"username": "Bad Name", "password": "longenough"},
                         headers=h)
    assert r.status_code == 400
    r = await client.put(url, content=b"{nope", headers=h)
    assert r.status_code == 400
    r = await client.put(url, content=b"[" * 5000 + b"]" * 5000, headers=h)  # past the recursion limit
    assert r.status_code == 400
    # PUT is a full replacement: groups and password as sent
    r = await client.put(url, json={"username": "bob", "password": "newbobpassword"}, headers=h)
    assert r.status_code == 201
    assert (await client.get(url, headers=h)).json() == {"username": "bob", "disabled": False}
    assert (await client.get(f"{node.api_url}/auth", auth=("bob", "bobpassword"))).status_code == 401
    await login(client, node, ("bob", "newbobpassword"))


async def test_user_sub_routes_groups_disable_reinstate(single_node: BackendProcess,
                                                        client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    await create_user(client, node, h, "alice", "alicepass1")
    url = f"{node.api_url}{USERS}/alice"
    # groups: no body and no Content-Type
    for _ in range(2):
        r = await client.put(f"{url}/groups/ops", headers=h)
        assert (r.status_code, r.content) == (201, b"")
    assert "content-type" not in {k.lower() for k in r.request.headers}
    r = await client.put(f"{url}/groups/dev", headers=h)
    assert r.status_code == 201
    assert (await client.get(url, headers=h)).json()["groups"] == ["ops", "dev"]
    r = await client.delete(f"{url}/groups/ops", headers=h)
    assert (r.status_code, r.content) == (204, b"")
    assert (await client.get(url, headers=h)).json()["groups"] == ["dev"]
    r = await client.delete(f"{url}/groups", headers=h)
    assert r.status_code == 204
    assert (await client.get(url, headers=h)).json() == {"username": "alice", "disabled": False}
    # a missing user is a 404 on every sub-route
    missing = f"{node.api_url}{USERS}/nobody"
    for method, path in (("PUT", "/reinstate"), ("PUT", "/groups/ops"), ("DELETE", "/groups/ops"),
                         ("DELETE", "/groups"), ("DELETE", ""),
                         ("PUT", "/reset_password")):
        body = {"username": "nobody", "password_hash": bcrypt.hashpw(b"x" * 8, bcrypt.gensalt()).decode()}
        r = await client.request(method, missing + path, headers=h,
                                 json=body if path == "/reset_password" else None)
        assert r.status_code == 404, (method, path, r.text)
    # disable: soft delete, GET still works, tokens die at once, login refused
    alice = await login(client, node, ("alice", "alicepass1"))
    assert (await client.get(url, headers=bearer(alice))).status_code == 200
    r = await client.delete(url, headers=h)
    assert (r.status_code, r.content) == (204, b"")
    assert (await client.get(url, headers=h)).json() == {"username": "alice", "disabled": True}
    assert (await client.get(url, headers=bearer(alice))).status_code == 401
    assert (await client.get(f"{node.api_url}/auth", auth=("alice", "alicepass1"))).status_code == 401
    assert (await client.get(f"{node.api_url}/auth/test", auth=("alice", "alicepass1"))).status_code == 401
    r = await client.post(f"{node.api_url}/auth/token", json={"refresh_token": alice["refresh_token"]},
                          headers=bearer(alice))
    assert r.status_code == 401
    assert (await client.delete(url, headers=h)).status_code == 204  # already disabled: still fine
    # reinstate (no body): login works again, the old session stays dead
    r = await client.put(f"{url}/reinstate", headers=h)
    assert (r.status_code, r.content) == (201, b"")
    assert (await client.put(f"{url}/reinstate", headers=h)).status_code == 201
    assert (await client.get(url, headers=h)).json()["disabled"] is False
    assert (await client.get(url, headers=bearer(alice))).status_code == 401
    await login(client, node, ("alice", "alicepass1"))


async def test_password_change_and_reset(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    await create_user(client, node, h, "alice", "alicepass1")
    alice = bearer(await login(client, node, ("alice", "alicepass1")))
    url = f"{node.api_url}{USERS}/alice"
    new_hash = bcrypt.hashpw(b"alicepass2", bcrypt.gensalt()).decode()
    # a user changes its own password (localselfuser), proving the current one
    r = await client.put(f"{url}/password", json={"password": "wrong-password", "password_hash": new_hash},
                         headers=alice)
    assert r.status_code == 401
    r = await client.put(f"{url}/password", json={"password": "alicepass1", "password_hash": ""}, headers=alice)
    assert r.status_code == 400
    r = await client.put(f"{url}/password", json={"password": "alicepass1", "password_hash": new_hash},
                         headers=alice)
    assert (r.status_code, r.content) == (201, b"")
    assert (await client.get(f"{node.api_url}/auth", auth=("alice", "alicepass1"))).status_code == 401
    await login(client, node, ("alice", "alicepass2"))
    # ... but cannot reset it (an administrator's operation), nor touch another user
    reset = {"username": "alice", "password_hash": bcrypt.hashpw(b"alicepass3", bcrypt.gensalt()).decode()}
    assert (await client.put(f"{url}/reset_password", json=reset, headers=alice)).status_code == 403
    r = await client.put(f"{node.api_url}{USERS}/admin/password",
                         json={"password": ADMIN[1], "password_hash": new_hash}, headers=alice)
    assert r.status_code == 403
    # the administrator resets it, unchecked; an empty hash is a 400
    r = await client.put(f"{url}/reset_password", json={"username": "alice", "password_hash": ""}, headers=h)
    assert r.status_code == 400
    r = await client.put(f"{url}/reset_password", json=reset, headers=h)
    assert (r.status_code, r.content) == (201, b"")
    await login(client, node, ("alice", "alicepass3"))


# ---------------------------------------------------------------------- authentication and RBAC


async def test_authentication_failures(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    api = f"{node.api_url}{USERS}"
    r = await client.get(api)
    assert r.status_code == 401
    assert r.json() == {"message": "bad credentials", "code": 5}
    assert (await client.get(api, auth=ADMIN)).status_code == 401  # Basic is not accepted on /api
    for creds in (("admin", "wrong-password"), ("nobody", "wrong-password")):
        r = await client.get(f"{node.api_url}/auth", auth=creds)
        assert (r.status_code, r.text) == (401, "Unauthorized\n")
    assert (await client.get(api, headers={"Authorization": "Bearer not.a.jwt"})).status_code == 401
    assert (await client.get(api, headers={"Authorization": "Key no-such-key"})).status_code == 401
    # an expired token, otherwise valid (same secret, a live session), is refused
    tokens = await login(client, node)
    assert (await client.get(api, headers=bearer(tokens))).status_code == 200
    claims = jwt_claims(tokens["access_token"])
    secret = await read_jwt_secret(client, node)
    expired = sign_jwt({**claims, "exp": int(time.time()) - 5}, secret)
    r = await client.get(api, headers={"Authorization": f"Bearer {expired}"})
    assert r.status_code == 401
    assert r.json() == {"message": "invalid credentials", "code": 5}
    # the same claims re-signed with a later expiry still work: only the expiry was wrong
    fresh = sign_jwt({**claims, "exp": int(time.time()) + 60}, secret)
    assert (await client.get(api, headers={"Authorization": f"Bearer {fresh}"})).status_code == 200


async def test_view_user_is_denied_writes(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    await create_user(client, node, h, "viewer", "viewerpass")
    await bind_cluster_role(client, node, h, "viewer-view", "view", "viewer")
    v = bearer(await login(client, node, ("viewer", "viewerpass")))
    base = node.api_url
    # reads the view role allows, and its own user record (localselfuser)
    r = await client.get(f"{base}/api/core/v2/namespaces/default/checks", headers=v)
    assert r.status_code in (200, 404), r.text  # 404 only while the checks routes do not exist
    assert (await client.get(f"{base}{USERS}/viewer", headers=v)).status_code == 200
    # everything else is a 403
    denied: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"{base}{USERS}", None),
        ("GET", f"{base}{USERS}/admin", None),
        ("POST", f"{base}{USERS}", {"username": "mallory", "password": "mallorypass"}),
        ("PUT", f"{base}{USERS}/mallory", {"username": "mallory", "password": "mallorypass"}),
        ("DELETE", f"{base}{USERS}/admin", None),
        ("PUT", f"{base}{USERS}/viewer/groups/cluster-admins", None),
        ("PUT", f"{base}{USERS}/viewer/reinstate", None),
        ("POST", f"{base}{APIKEYS}", {"username": "viewer"}),
        ("GET", f"{base}{APIKEYS}", None),
        ("GET", f"{base}/api/core/v2/cluster/members", None),
        ("POST", f"{base}/api/core/v2/cluster/members?peer-addrs=http://127.0.0.9:2380", None),
        ("GET", f"{base}/api/core/v2/cluster/id", None),
    ]
    for method, url, body in denied:
        r = await client.request(method, url, json=body, headers=v)
        assert r.status_code == 403, (method, url, r.status_code, r.text)
    for method, url, body in (
            ("PUT", f"{base}/api/core/v2/namespaces/default/checks/c1",
             {"metadata": {"name": "c1", "namespace": "default"}, "command": "true", "interval": 60}),
            ("DELETE", f"{base}/api/core/v2/namespaces/default/checks/c1", None)):
        # Connection: close — one fresh connection per refused request
        r = await client.request(method, url, json=body, headers={**v, "Connection": "close"})
        assert r.status_code in (403, 404), (method, url, r.status_code, r.text)
    # nothing was written
    r = await client.get(f"{base}{USERS}", headers=h)
    assert [u["username"] for u in r.json()] == ["admin", "agent", "viewer"]
    assert (await client.get(f"{base}{USERS}/viewer", headers=h)).json() == {"username": "viewer",
                                                                           "disabled": False}


# ---------------------------------------------------------------------- API keys


async def test_api_keys(single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_node(node)
    h = await admin_headers(client, node)
    await create_user(client, node, h, "alice", "alicepass1")
    r = await client.post(f"{node.api_url}{APIKEYS}", json={"username": "nobody"}, headers=h)
    assert (r.status_code, r.text) == (400, "user does not exist\n")
    assert r.headers["content-type"].startswith("text/plain")
    for bad in (b"{", b"[" * 5000 + b"]" * 5000, b"[]"):
        r = await client.post(f"{node.api_url}{APIKEYS}", content=bad, headers=h)
        assert r.status_code == 400 and r.headers["content-type"].startswith("text/plain"), bad[:10]
    r = await client.post(f"{node.api_url}{APIKEYS}", json={"username": "alice"}, headers=h)
    assert (r.status_code, r.content) == (201, b"")
    location = r.headers["Location"]
    assert location.startswith(f"{APIKEYS}/")
    key = location.rsplit("/", 1)[1]
    assert len(key) == 36 and key.count("-") == 4
    # the key acts as alice: her own record yes, the user list no
    k = {"Authorization": f"Key {key}"}
    assert (await client.get(f"{node.api_url}{USERS}/alice", headers=k)).status_code == 200
    assert (await client.get(f"{node.api_url}{USERS}", headers=k)).status_code == 403
    r = await client.get(f"{node.api_url}{location}", headers=h)
    assert r.status_code == 200
    got = r.json()
    assert got["metadata"] == {"name": key, "created_by": "admin"}
    assert got["username"] == "alice" and abs(got["created_at"] - time.time()) < 300
    etag = r.headers["ETag"]
    r = await client.get(f"{node.api_url}{APIKEYS}", headers=h)
    assert key in [item["metadata"]["name"] for item in r.json()]
    # PATCH: merge patch of labels; preconditions; no JSON Patch; the owner is fixed
    url = f"{node.api_url}{location}"
    r = await client.patch(url, json={"metadata": {"labels": {"team": "ops"}}}, headers=h)
    assert r.status_code == 400  # application/json is not a merge patch
    mp = {**h, "Content-Type": "application/merge-patch+json"}
    r = await client.patch(url, content=b'[{"op":"add"}]', headers={**h, "Content-Type": "application/json-patch+json"})
    assert r.status_code == 400 and r.json()["message"] == "JSON Patch is not supported yet"
    r = await client.patch(url, content=json.dumps({"metadata": {"labels": {"team": "ops"}}}),
                           headers={**mp, "If-Match": '"stale"'})
    assert r.status_code == 412
    r = await client.patch(url, content=json.dumps({"metadata": {"labels": {"team": "ops"}}}),
                           headers={**mp, "If-Match": etag})
    assert r.status_code == 200, r.text
    assert r.json()["metadata"] == {"name": key, "labels": {"team": "ops"}, "created_by": "admin"}
    r = await client.patch(url, content=json.dumps({"username": "admin"}), headers=mp)
    assert r.status_code == 400
    r = await client.patch(url, content=json.dumps({"metadata": {"name": "other"}}), headers=mp)
    assert r.status_code == 400
    # a disabled owner's key stops working; reinstated, it works again
    assert (await client.delete(f"{node.api_url}{USERS}/alice", headers=h)).status_code == 204
    assert (await client.get(f"{node.api_url}{USERS}/alice", headers=k)).status_code == 401
    assert (await client.put(f"{node.api_url}{USERS}/alice/reinstate", headers=h)).status_code == 201
    assert (await client.get(f"{node.api_url}{USERS}/alice", headers=k)).status_code == 200
    # revoke
    r = await client.delete(url, headers=h)
    assert (r.status_code, r.content) == (204, b"")
    assert (await client.delete(url, headers=h)).status_code == 404
    assert (await client.get(url, headers=h)).status_code == 404
    assert (await client.get(f"{node.api_url}{USERS}/alice", headers=k)).status_code == 401
