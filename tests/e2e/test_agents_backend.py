"""The backend side of agents, end to end: real backend processes, simulated agents.

The agents here are a few lines of trio-websocket speaking runtime.md §1
(the real ``sensu-agent`` is tested elsewhere). Everything waits on
conditions under ``trio.fail_after``; nothing sleeps to let things settle.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import msgpack
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket

from core.frames import MAX_MESSAGE_BYTES
from core.resources import CheckConfig, keys
from core.resources.storage import encode
from tests.harness.backend import REPO, BackendProcess, Cluster, free_port

from .test_api_auth import ADMIN, init_cluster

pytestmark = pytest.mark.e2e

AGENT = ("agent", "P@ssw0rd!")
T = TypeVar("T")


# ---------------------------------------------------------------------------- a simulated agent


def agent_headers(name: str, *, namespace: str = "default", subscriptions: str = "linux",
                  credentials: tuple[str, str] | None = AGENT) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"Sensu-Namespace", namespace.encode()),
        (b"Sensu-AgentName", name.encode()),
        (b"Sensu-Subscriptions", subscriptions.encode()),
        (b"Accept", b"application/json"),
    ]
    if credentials is not None:
        token = base64.b64encode(f"{credentials[0]}:{credentials[1]}".encode())
        headers += [(b"Sensu-User", credentials[0].encode()), (b"Authorization", b"Basic " + token)]
    return headers


def agent_entity(name: str, subscriptions: list[str], ts: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"region": "test"}},
        "entity_class": "agent",
        "subscriptions": subscriptions,
        "system": {"hostname": name, "os": "linux", "platform": "simulated", "arch": "amd64"},
        "last_seen": ts,
        "user": "agent",
        "sensu_agent_version": "6.12.0",
    }


def keepalive_frame(name: str, seq: int, *, ts: int | None = None, warning: int = 5, critical: int = 8,
                    subscriptions: list[str] | None = None) -> bytes:
    ts = ts or int(time.time())
    body = {
        "metadata": {"namespace": "default"},
        "id": str(uuid.uuid4()),
        "sequence": seq,
        "timestamp": ts,
        "entity": agent_entity(name, subscriptions or ["linux"], ts),
        "check": {"metadata": {"name": "keepalive", "namespace": "default"}, "interval": 1,
                  "timeout": warning, "ttl": critical, "executed": ts, "issued": ts},
    }
    return b"keepalive\n" + json.dumps(body).encode()


def result_frame(name: str, config: dict[str, Any], *, status: int, output: str, issued: int) -> bytes:
    ts = int(time.time())
    body = {
        "metadata": {"namespace": "default"},
        "id": str(uuid.uuid4()),
        "timestamp": ts,
        "entity": agent_entity(name, ["linux"], ts),
        "check": {**config, "status": status, "output": output, "executed": ts, "issued": issued,
                  "duration": 0.01, "processed_by": name},
    }
    return b"event\n" + json.dumps(body).encode()


@asynccontextmanager
async def connect(node: BackendProcess, name: str, **kw: Any) -> AsyncIterator[WebSocketConnection]:
    async with open_websocket(node.host, node.agent_port, "/", use_ssl=False,
                              extra_headers=agent_headers(name, **kw)) as ws:
        try:
            yield ws
        finally:
            # trio-websocket's client never closes its socket after a close the *server*
            # started (it waits for a TCP close it then ignores): close it ourselves.
            with trio.CancelScope(shield=True):
                await ws._stream.aclose()


async def upgrade_refusal(client: httpx.AsyncClient, node: BackendProcess, name: str,
                          **kw: Any) -> tuple[int, bytes]:
    """A WebSocket upgrade the backend is expected to refuse, sent as a plain HTTP request."""
    headers = {k.decode(): v.decode() for k, v in agent_headers(name, **kw)}
    headers.update({"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
                    "Sec-WebSocket-Key": base64.b64encode(uuid.uuid4().bytes).decode()})
    r = await client.get(f"http://{node.host}:{node.agent_port}/", headers=headers)
    return r.status_code, r.content


async def _logged(node: BackendProcess, text: str, entity: str) -> bool:
    return any(text in line and f'"entity": "{entity}"' in line for line in node.log().splitlines())


async def next_message(ws: WebSocketConnection, msg_type: str, timeout: float = 20.0) -> dict[str, Any]:
    """The next message of ``msg_type`` (others are skipped)."""
    with trio.fail_after(timeout):
        while True:
            raw = await ws.get_message()
            data = raw.encode() if isinstance(raw, str) else raw
            kind, _, payload = data.partition(b"\n")
            if kind.decode() == msg_type:
                body: dict[str, Any] = json.loads(payload)
                return body


async def wait_for(probe: Callable[[], Awaitable[T | None]], timeout: float = 30.0, what: str = "") -> T:
    with trio.fail_after(timeout):
        while True:
            got = await probe()
            if got is not None and got is not False:
                return got
            await trio.sleep(0.05)
    raise AssertionError(what)  # pragma: no cover


async def store_get(client: httpx.AsyncClient, node: BackendProcess, key: str) -> dict[str, Any] | None:
    r = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": key})
    if r.status_code == 404:
        return None
    r.raise_for_status()
    item = r.json()
    value = msgpack.unpackb(base64.b64decode(item["value_b64"]), raw=False)
    return {**item, "decoded": value}


async def store_range(client: httpx.AsyncClient, node: BackendProcess, prefix: str) -> tuple[list[dict[str, Any]], int]:
    r = await client.get(f"{node.debug_url}/debug/store/range", params={"prefix": prefix})
    r.raise_for_status()
    body = r.json()
    return body["items"], body["revision"]


def decoded(item: dict[str, Any]) -> Any:
    return msgpack.unpackb(base64.b64decode(item["value_b64"]), raw=False)


async def put_check(client: httpx.AsyncClient, node: BackendProcess, name: str, subscriptions: list[str]) -> dict[str, Any]:
    check = CheckConfig.from_wire({
        "metadata": {"name": name, "namespace": "default"},
        "command": "check-disk -w 80", "subscriptions": subscriptions, "interval": 60, "publish": False,
        "handlers": ["default"],
    })
    check.validate()
    r = await client.put(f"{node.debug_url}/debug/store/kv", params={"key": keys.key_for("checks", "default", name)},
                         content=encode(check))
    r.raise_for_status()
    return check.to_wire()


# ---------------------------------------------------------------------------- tests


async def test_handshake_refusals_health_and_registration(single_node: BackendProcess,
                                                          client: httpx.AsyncClient) -> None:
    node = single_node
    await init_cluster(Cluster([node], client))
    base = f"http://{node.host}:{node.agent_port}"
    assert (await client.get(f"{base}/health")).status_code == 200
    ready = await client.get(f"{base}/ready")
    assert ready.status_code == 200 and ready.text == "ready\n"

    refusals = [
        ({"credentials": None}, 401, b"missing credentials\n"),
        ({"credentials": ("agent", "wrong")}, 401, b"bad credentials\n"),
        ({"credentials": ("nobody", "wrong")}, 401, b"bad credentials\n"),
        ({"namespace": "nope"}, 404, b'namespace "nope" not found\n'),
    ]
    for kw, status, body in refusals:
        assert await upgrade_refusal(client, node, "refused-agent", **kw) == (status, body), kw
    expected = ["agent handshake refused: 401 missing credentials", "agent handshake refused: 401 bad credentials",
                'agent handshake refused: 404 namespace \\"nope\\" not found']
    for text in expected:  # the log is written by a background thread: wait for it
        await wait_for(lambda: _logged(node, text, "refused-agent"), what=text)

    async with connect(node, "web-01") as ws:
        # §1.4: JSON only; octet-stream must not be advertised
        headers = dict(ws.handshake_headers)
        assert headers[b"accept"] == b"application/json"
        assert headers[b"content-type"] == b"application/json"
        first = await next_message(ws, "entity_config")
        assert first["metadata"]["name"] == "not found"
        ts = int(time.time()) - 3
        await ws.send_message(keepalive_frame("web-01", 1, ts=ts))
        stored = await next_message(ws, "entity_config")  # the registered entity, live
        assert stored["metadata"]["name"] == "web-01"
        assert stored["subscriptions"] == ["linux", "entity:web-01"]
        entity = await wait_for(lambda: store_get(client, node, keys.key_for("entities", "default", "web-01")))
        assert entity["decoded"]["last_seen"] == ts
        assert entity["decoded"]["system"]["platform"] == "simulated"
        assert entity["decoded"]["metadata"]["labels"] == {"region": "test"}

        async def keepalive_event() -> dict[str, Any] | None:
            got = await store_get(client, node, keys.event_key("default", "web-01", "keepalive"))
            return got["decoded"] if got else None

        event = await wait_for(keepalive_event)
        assert event["check"]["status"] == 0
        assert event["check"]["output"].startswith("Keepalive last sent from web-01 at ")
        assert event["check"]["handlers"] == ["keepalive"]
        deadline = await store_get(client, node, keys.internal_key("keepalives", "default", "web-01"))
        assert deadline is not None and deadline["lease"] != 0
        await ws.aclose(1001, "bye")
    assert "agent entity registered" in node.log()


async def test_an_oversized_message_closes_only_that_connection(single_node: BackendProcess,
                                                                client: httpx.AsyncClient) -> None:
    """Bad but small messages are dropped (tests/e2e/test_agent_sessions.py); a message
    over the size limit cannot be skipped unread, so it closes that one connection (1009)."""
    node = single_node
    await init_cluster(Cluster([node], client))
    entity_key = keys.key_for("entities", "default", "honest")
    async with connect(node, "honest") as honest:
        await next_message(honest, "entity_config")
        await honest.send_message(keepalive_frame("honest", 1, ts=1_700_000_001))
        await wait_for(lambda: _last_seen_is(client, node, entity_key, 1_700_000_001))
        async with connect(node, "bad-size") as bad:
            await next_message(bad, "entity_config")
            await bad.send_message(b"event\n" + b"x" * MAX_MESSAGE_BYTES)
            with trio.fail_after(20), pytest.raises(ConnectionClosed) as info:
                while True:
                    await bad.get_message()
            assert info.value.reason.code == 1009, info.value.reason
        # the honest session on the same node still works: its keepalive updates last_seen
        await honest.send_message(keepalive_frame("honest", 2, ts=1_700_000_002))
        await wait_for(lambda: _last_seen_is(client, node, entity_key, 1_700_000_002), what="honest keepalive")
        await wait_for(lambda: _logged(node, "closing agent connection: ", "bad-size"), what="size close logged")


async def _last_seen_is(client: httpx.AsyncClient, node: BackendProcess, key: str, ts: int) -> bool:
    got = await store_get(client, node, key)
    return got is not None and got["decoded"].get("last_seen") == ts


async def _admin_token(client: httpx.AsyncClient, node: BackendProcess) -> str:
    r = await client.get(f"{node.api_url}/auth", auth=ADMIN)
    r.raise_for_status()
    return str(r.json()["access_token"])


async def test_request_crosses_nodes_and_keepalive_fails_over(cluster3: Cluster, client: httpx.AsyncClient) -> None:
    await init_cluster(cluster3)
    a, b, c = cluster3.nodes
    config = await put_check(client, a, "disk", ["linux"])
    stop_keepalives = trio.Event()

    async with connect(b, "db-01") as ws:
        async with trio.open_nursery() as nursery:
            await next_message(ws, "entity_config")
            await ws.send_message(keepalive_frame("db-01", 1))
            await next_message(ws, "entity_config")  # registered: the stored entity is sent

            async def keepalives() -> None:
                seq = 2
                while not stop_keepalives.is_set():
                    with trio.move_on_after(1.0):
                        await stop_keepalives.wait()
                    if not stop_keepalives.is_set():
                        await ws.send_message(keepalive_frame("db-01", seq))
                        seq += 1

            nursery.start_soon(keepalives)

            # ad hoc execution through node a: the API route when it exists, else the raw request key
            headers = {"Authorization": f"Bearer {await _admin_token(client, a)}"}
            r = await client.post(f"{a.api_url}/api/core/v2/namespaces/default/checks/disk/execute",
                                  json={"check": "disk", "reason": "e2e"}, headers=headers)
            if r.status_code == 404:  # no execute route yet
                value = msgpack.packb({"check": "disk", "subscriptions": [], "creator": "admin", "reason": "e2e",
                                       "issued": int(time.time())})
                r = await client.put(f"{a.debug_url}/debug/store/kv",
                                     params={"key": keys.internal_key("adhoc", "default", "disk", uuid.uuid4().hex)},
                                     content=value)
            assert r.status_code in (200, 202), r.text
            request = await next_message(ws, "check_request", timeout=30)
            assert request["config"]["metadata"]["name"] == "disk"
            assert request["config"]["command"] == "check-disk -w 80"
            assert request["issued"] > 0

            await ws.send_message(result_frame("db-01", config, status=1, output="disk 91% full",
                                               issued=request["issued"]))
            event_key = keys.event_key("default", "db-01", "disk")

            async def event_on_c() -> dict[str, Any] | None:
                got = await store_get(client, c, event_key)
                return got["decoded"] if got else None

            event = await wait_for(event_on_c, what="the result event on node c")
            assert event["check"]["status"] == 1
            assert event["check"]["output"] == "disk 91% full"
            assert [h["status"] for h in event["check"]["history"]] == [1]
            api = await client.get(f"{c.api_url}/api/core/v2/namespaces/default/events/db-01/disk",
                                   headers={"Authorization": f"Bearer {await _admin_token(client, c)}"})
            if api.status_code == 200:  # the events route exists: it shows the same event
                assert api.json()["check"]["status"] == 1

            # the agent falls silent and the node holding its connection dies
            stop_keepalives.set()
        b.kill()  # still connected: the node dies under the agent

    ka_key = keys.event_key("default", "db-01", "keepalive")
    claims_prefix = keys.internal_prefix("keepalive-fired", "default", "db-01")

    async def critical_and_accounted() -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
        # one range over everything: the event and the claims at one revision of one node
        items, _ = await store_range(client, c, "/sensu.io/")
        by_key = {item["key"]: item for item in items}
        if ka_key not in by_key:
            return None
        event = decoded(by_key[ka_key])
        claims = [decoded(item) for key, item in by_key.items() if key.startswith(claims_prefix)]
        failures = [h for h in event["check"]["history"] if h["status"] != 0]
        # never two failure events for one expiry
        assert len(failures) <= len(claims), (failures, claims)
        if event["check"]["status"] == 2 and len(failures) == len(claims):
            return event, claims
        return None

    event, claims = await wait_for(critical_and_accounted, timeout=60, what="a critical keepalive failure")
    assert event["check"]["output"].startswith("No keepalive sent from db-01 for ")
    assert event["check"]["output"].endswith("(>= 8)")
    assert len(claims) >= 2  # warning, then critical
    assert {claim["node"] for claim in claims} <= {a.name, c.name}
    # exactly one keepalive event exists for the entity, and it is critical
    events, _ = await store_range(client, c, keys.event_prefix("default", "db-01"))
    keepalive_events = [decoded(i) for i in events if i["key"] == ka_key]
    assert len(keepalive_events) == 1 and keepalive_events[0]["check"]["status"] == 2
    # each failure was handed to the pipeline once
    handled, _ = await store_range(client, c, keys.internal_prefix("handled", "default", "db-01", "keepalive"))
    assert len(handled) >= len([h for h in event["check"]["history"] if h["status"] != 0])


async def test_agent_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [sys.executable, "-m", "backend.cli", "start", "--state-dir", str(tmp_path / "s"),
                "--agent-host", "127.0.0.1", "--agent-port", str(port),
                "--api-listen-address", f"127.0.0.1:{free_port()}",
                "--etcd-initial-cluster", f"default=http://127.0.0.1:{free_port()}"]
        result = await trio.to_thread.run_sync(lambda: subprocess.run(
            args, capture_output=True, text=True, timeout=60, cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)}))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"sensu-backend: agent-port: cannot listen on 127.0.0.1:{port}"), result.stderr
    assert "Traceback" not in result.stderr


async def test_agents_over_tls(tmp_path: Path) -> None:
    """With ``cert-file``/``key-file`` the agent port speaks wss:// (and https for /health)."""
    from .test_api_tls import TlsBackendProcess, make_certificates
    from .test_init import run_init

    host = "127.0.0.1"
    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = await make_certificates(certs, host)
    node = TlsBackendProcess("default", host, tmp_path / "node", extra_args=[
        "--cert-file", str(cert), "--key-file", str(key), "--trusted-ca-file", str(ca)])
    trusting = ssl.create_default_context(cafile=str(ca))
    node.start()
    try:
        async with httpx.AsyncClient(verify=trusting, timeout=10.0) as client:
            await node.wait_healthy(client, 45)
            result = await trio.to_thread.run_sync(lambda: run_init(
                node.api_url, "--trusted-ca-file", str(ca),
                "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
            assert result.returncode == 0, result.stderr
            assert (await client.get(f"https://{host}:{node.agent_port}/health")).status_code == 200
            async with httpx.AsyncClient(timeout=5.0) as plain:  # no plain ws/http on a TLS agent port
                with pytest.raises(httpx.TransportError):
                    await plain.get(f"http://{host}:{node.agent_port}/health")
            async with open_websocket(host, node.agent_port, "/", use_ssl=trusting,
                                      extra_headers=agent_headers("tls-agent")) as ws:
                try:
                    config = await next_message(ws, "entity_config")
                    assert config["metadata"]["name"] == "not found"
                    await ws.send_message(keepalive_frame("tls-agent", 1))
                    assert (await next_message(ws, "entity_config"))["metadata"]["name"] == "tls-agent"
                finally:
                    with trio.CancelScope(shield=True):
                        await ws._stream.aclose()
    finally:
        node.stop()
