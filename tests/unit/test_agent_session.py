"""The agent's connection lifecycle against an in-process websocket peer (runtime.md §1).

The peer here is a stub speaking the wire protocol, so the agent's side of
each rule (headers, the entity_config gate, keepalive first, queue draining,
reconnect, 1001 on close, backoff) can be checked exactly and quickly; the
real backend is exercised by tests/e2e/test_agent_e2e.py. The agent itself is
the real one (real queue on disk, real child processes, real local API).
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, WebSocketRequest, serve_websocket

from agent import session as session_mod
from agent.agent import Agent
from agent.config import AgentConfig, load_config
from core.frames import decode_frame, encode_frame, encode_json
from agent.transport import Backoff, BackendPicker
from tests.harness.backend import free_port

TIMEOUT = 20


class FakeBackend:
    """A websocket peer: records handshakes and frames, sends what the test asks for."""

    def __init__(self, *, entity_config: dict[str, Any] | None = None, reject: int | None = None) -> None:
        self.entity_config = entity_config
        self.reject = reject
        self.port = 0
        self.handshakes: list[dict[str, str]] = []
        self.frames: list[tuple[str, dict[str, Any]]] = []
        self.close_codes: list[tuple[int | None, str | None]] = []
        self.current: WebSocketConnection | None = None
        self._changed = trio.Event()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            server = await nursery.start(serve_websocket, self._handle, "127.0.0.1", 0, None)
            self.port = server.port
            task_status.started()

    def _note(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _handle(self, request: WebSocketRequest) -> None:
        self.handshakes.append({k.decode().lower(): v.decode() for k, v in request.headers})
        self._note()
        if self.reject is not None:
            await request.reject(self.reject, body=b"bad credentials")
            return
        ws = await request.accept(extra_headers=[(b"Accept", b"application/json"),
                                                 (b"Content-Type", b"application/json")])
        self.current = ws
        self._note()
        if self.entity_config is not None:
            await ws.send_message(encode_frame("entity_config", encode_json(self.entity_config)))
        try:
            while True:
                frame = decode_frame(await ws.get_message())
                self.frames.append((frame.type, json.loads(frame.payload)))
                self._note()
        except ConnectionClosed as exc:
            self.close_codes.append((exc.reason.code, exc.reason.reason))
            self._note()
        finally:
            self.current = None

    async def wait_for(self, predicate: Any) -> None:
        """Wait until ``predicate()`` holds; it is re-checked whenever this peer sees something."""
        with trio.fail_after(TIMEOUT):
            while not predicate():
                await self._changed.wait()

    def of_type(self, msg_type: str) -> list[dict[str, Any]]:
        return [doc for t, doc in self.frames if t == msg_type]

    async def send(self, msg_type: str, doc: dict[str, Any]) -> None:
        assert self.current is not None
        await self.current.send_message(encode_frame(msg_type, encode_json(doc)))


async def poll(predicate: Any) -> None:
    """Wait for a condition spanning several peers (polled, under a deadline)."""
    with trio.fail_after(TIMEOUT):
        while not predicate():
            await trio.sleep(0.01)


def agent_config(tmp_path: Path, urls: list[str], **flags: object) -> AgentConfig:
    return load_config({
        "name": "web-01", "backend-url": urls, "cache-dir": str(tmp_path / "cache"),
        "disable-api": "true", "retry-min": "20ms", "retry-max": "100ms", "subscriptions": ["linux"],
        **flags,
    }, {"PATH": "/usr/bin:/bin"}, hostname=lambda: "h")


@asynccontextmanager
async def running(agent: Agent) -> AsyncIterator[Agent]:
    """Run the real agent; on exit stop it the way SIGTERM does and wait for it."""
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        try:
            yield agent
        finally:
            agent.request_stop()
            nursery.cancel_scope.deadline = trio.current_time() + TIMEOUT


def stored_entity(**fields: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-01", "namespace": "default", "labels": {"from": "backend"}},
            "entity_class": "agent", "subscriptions": ["stored-sub"], **fields}


async def test_handshake_entity_config_then_keepalive(tmp_path: Path) -> None:
    backend = FakeBackend(entity_config=stored_entity())
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        async with running(Agent(agent_config(tmp_path, [backend.url]))):
            await backend.wait_for(lambda: backend.of_type("keepalive"))
        nursery.cancel_scope.cancel()
    headers = backend.handshakes[0]
    assert headers["sensu-namespace"] == "default"
    assert headers["sensu-agentname"] == "web-01"
    assert headers["sensu-user"] == "agent"
    assert headers["authorization"].startswith("Basic ")
    assert headers["sensu-subscriptions"] == "linux"
    assert headers["accept"] == "application/json"
    keepalive = backend.of_type("keepalive")[0]
    assert keepalive["sequence"] == 1
    assert keepalive["check"]["metadata"]["name"] == "keepalive"
    # the stored entity config was adopted before the first keepalive
    assert keepalive["entity"]["subscriptions"] == ["stored-sub", "entity:web-01"]
    assert keepalive["entity"]["metadata"]["labels"] == {"from": "backend"}
    assert keepalive["entity"]["system"]["hostname"]
    assert backend.close_codes == [(1001, "bye")]


async def test_check_request_before_entity_config_is_dropped_then_runs(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    backend = FakeBackend(entity_config=None)
    config = {"metadata": {"name": "hello", "namespace": "default"}, "command": "echo hi {{ .name }}",
              "interval": 10, "timeout": 10}
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        async with running(Agent(agent_config(tmp_path, [backend.url]))):
            await backend.wait_for(lambda: backend.current is not None)
            await backend.send("check_request", {"config": config, "issued": 5})  # during the gate: lost
            await backend.send("entity_config", {"metadata": {"name": "not found", "namespace": "default"},
                                                 "entity_class": "agent"})
            await backend.wait_for(lambda: backend.of_type("keepalive"))
            await backend.send("check_request", {"config": config, "issued": 6})
            await backend.wait_for(lambda: backend.of_type("event"))
        nursery.cancel_scope.cancel()
    events = backend.of_type("event")
    assert len(events) == 1
    check = events[0]["check"]
    assert (check["output"], check["status"], check["issued"]) == ("hi web-01\n", 0, 6)
    assert events[0]["entity"]["subscriptions"] == ["linux", "entity:web-01"]  # local definition kept


async def test_gate_opens_after_timeout_without_entity_config(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "ENTITY_CONFIG_GATE_S", 0.2)
    backend = FakeBackend(entity_config=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        async with running(Agent(agent_config(tmp_path, [backend.url]))):
            await backend.wait_for(lambda: backend.of_type("keepalive"))
        nursery.cancel_scope.cancel()


async def test_agent_managed_entity_does_not_wait_for_entity_config(tmp_path: Path) -> None:
    backend = FakeBackend(entity_config=None)
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        async with running(Agent(agent_config(tmp_path, [backend.url], **{"agent-managed-entity": "true"}))):
            await backend.wait_for(lambda: backend.of_type("keepalive"))
        nursery.cancel_scope.cancel()
    labels = backend.of_type("keepalive")[0]["entity"]["metadata"]["labels"]
    assert labels == {"sensu.io/managed_by": "sensu-agent"}


async def test_queued_events_are_sent_after_the_keepalive_and_removed(tmp_path: Path) -> None:
    backend = FakeBackend(entity_config=stored_entity())
    agent = Agent(agent_config(tmp_path, ["ws://127.0.0.1:9"]))  # nothing listens there
    async with trio.open_nursery() as nursery:
        async with running(agent):
            for i in range(3):
                await agent.queue.put(encode_json({"check": {"metadata": {"name": f"c{i}"}}}), "api")
        await nursery.start(backend.serve)
        agent = Agent(agent_config(tmp_path, [backend.url]))  # same cache-dir: a restarted agent
        async with running(agent):
            await backend.wait_for(lambda: len(backend.of_type("event")) == 3)
            with trio.fail_after(TIMEOUT):
                while len(agent.queue):
                    await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    types = [t for t, _ in backend.frames]
    assert types[0] == "keepalive"
    assert [d["check"]["metadata"]["name"] for d in backend.of_type("event")] == ["c0", "c1", "c2"]
    assert [p.name for p in (tmp_path / "cache" / "events").iterdir()] == [".lock"]


async def test_reconnects_to_another_backend_and_loses_nothing(tmp_path: Path) -> None:
    a = FakeBackend(entity_config=stored_entity())
    b = FakeBackend(entity_config=stored_entity())
    async with trio.open_nursery() as nursery:
        await nursery.start(a.serve)
        await nursery.start(b.serve)
        agent = Agent(agent_config(tmp_path, [a.url, b.url]))
        async with running(agent):
            await poll(lambda: a.of_type("keepalive") or b.of_type("keepalive"))
            first, second = (a, b) if a.current is not None else (b, a)
            first.reject = 503  # it "dies": drop the session and refuse to come back
            assert first.current is not None
            await first.current.aclose(code=1011, reason="going down")
            await agent.queue.put(encode_json({"check": {"metadata": {"name": "during-switch"}}}), "api")
            await second.wait_for(lambda: [e for e in second.of_type("event")
                                           if e["check"]["metadata"]["name"] == "during-switch"])
            assert second.of_type("keepalive")[0]["sequence"] == 1  # per-connection sequence restarted
            assert agent.connected
        nursery.cancel_scope.cancel()


async def test_refused_upgrade_is_retried(tmp_path: Path) -> None:
    backend = FakeBackend(entity_config=stored_entity(), reject=401)
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        async with running(Agent(agent_config(tmp_path, [backend.url]))):
            await backend.wait_for(lambda: len(backend.handshakes) >= 2)
            backend.reject = None
            await backend.wait_for(lambda: backend.of_type("keepalive"))
        nursery.cancel_scope.cancel()


async def test_local_api_health_follows_the_connection(tmp_path: Path) -> None:
    backend = FakeBackend(entity_config=stored_entity())
    port = free_port()
    config = agent_config(tmp_path, ["ws://127.0.0.1:9"], **{"disable-api": "false", "api-port": str(port)})
    async with trio.open_nursery() as nursery, httpx.AsyncClient(timeout=5) as client:
        await nursery.start(backend.serve)
        async with running(Agent(config)):
            r = await client.get(f"http://127.0.0.1:{port}/healthz")
            assert (r.status_code, r.text) == (503, "sensu backend unavailable\n")
            r = await client.post(f"http://127.0.0.1:{port}/events",
                                  json={"check": {"metadata": {"name": "api-check"}, "status": 1, "output": "x"}})
            assert r.status_code == 202
        config = agent_config(tmp_path, [backend.url], **{"disable-api": "false", "api-port": str(port)})
        async with running(Agent(config)):  # restarted: the queued event survived
            await backend.wait_for(lambda: backend.of_type("event"))
            r = await client.get(f"http://127.0.0.1:{port}/healthz")
            assert (r.status_code, r.text) == (200, "ok\n")
        nursery.cancel_scope.cancel()
    event = backend.of_type("event")[0]
    assert event["check"]["metadata"]["name"] == "api-check"
    assert event["check"]["processed_by"] == "web-01"
    assert event["entity"]["metadata"]["name"] == "web-01"


# --- pure pieces of the transport -------------------------------------------------------


def test_backoff_grows_caps_and_resets() -> None:
    b = Backoff(1.0, 10.0, 2.0)
    assert [b.next_delay() for _ in range(6)] == [1, 2, 4, 8, 10, 10]
    b.reset()
    assert b.next_delay() == 1
    assert b.next_delay(throttled=True) == 4  # 429 doubles this attempt
    assert b.next_delay() == 4


def test_picker_uses_every_url_once_per_round() -> None:
    urls = [f"ws://b{i}:8081" for i in range(5)]
    picker = BackendPicker(urls, random.Random(7))
    seen = [picker.next() for _ in range(15)]
    for r in range(3):
        assert sorted(seen[r * 5:(r + 1) * 5]) == sorted(urls)
    assert all(seen[i] != seen[i + 1] for i in range(len(seen) - 1))
    assert len({tuple(seen[r * 5:(r + 1) * 5]) for r in range(3)}) > 1  # rounds are shuffled
    assert [BackendPicker(["ws://only"]).next() for _ in range(2)] == ["ws://only", "ws://only"]


async def test_max_session_length_forces_a_reconnect(tmp_path: Path) -> None:
    backend = FakeBackend(entity_config=stored_entity())
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        async with running(Agent(agent_config(tmp_path, [backend.url], **{"max-session-length": "300ms"}))):
            await backend.wait_for(lambda: len(backend.of_type("keepalive")) >= 2)
        nursery.cancel_scope.cancel()
    assert len(backend.handshakes) >= 2
    assert backend.close_codes[0] == (1001, "bye")


async def test_silent_backend_is_dropped_by_the_heartbeat(tmp_path: Path) -> None:
    """A peer that completes the upgrade and then never answers a ping (a hung backend)."""
    import wsproto
    from wsproto.events import AcceptConnection, BytesMessage, Request

    handshakes = 0

    async def silent_peer(stream: trio.SocketStream) -> None:
        nonlocal handshakes
        ws = wsproto.WSConnection(wsproto.ConnectionType.SERVER)
        while True:
            ws.receive_data(await stream.receive_some(65536))
            if any(isinstance(e, Request) for e in ws.events()):
                break
        handshakes += 1
        await stream.send_all(ws.send(AcceptConnection()))
        await stream.send_all(ws.send(BytesMessage(data=encode_frame(
            "entity_config", encode_json({"metadata": {"name": "not found"}, "entity_class": "agent"})))))
        await trio.sleep_forever()  # reads nothing, answers nothing

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(trio.serve_tcp, silent_peer, 0)
        port = listeners[0].socket.getsockname()[1]
        config = agent_config(tmp_path, [f"ws://127.0.0.1:{port}"], **{
            "backend-heartbeat-interval": "1", "backend-heartbeat-timeout": "2"})
        async with running(Agent(config)):
            await poll(lambda: handshakes >= 2)  # the first connection was given up on
        nursery.cancel_scope.cancel()


async def test_wss_with_trusted_ca_and_with_insecure_skip(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import shutil
    import ssl

    from agent.transport import build_ssl_context

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    with trio.fail_after(60):
        await trio.run_process(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
                                "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                                "-addext", "subjectAltName=IP:127.0.0.1"], capture_stdout=True, capture_stderr=True)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(str(cert), str(key))

    class TlsBackend(FakeBackend):
        async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
            async with trio.open_nursery() as nursery:
                server = await nursery.start(serve_websocket, self._handle, "127.0.0.1", 0, server_tls)
                self.port = server.port
                task_status.started()

    backend = TlsBackend(entity_config=stored_entity())
    async with trio.open_nursery() as nursery:
        await nursery.start(backend.serve)
        url = f"wss://127.0.0.1:{backend.port}"
        for flags in ({"trusted-ca-file": str(cert)}, {"insecure-skip-tls-verify": "true"}):
            config = agent_config(tmp_path, [url], **flags)
            async with running(Agent(config, ssl_context=build_ssl_context(config))):
                seen = len(backend.of_type("keepalive"))
                await backend.wait_for(lambda: len(backend.of_type("keepalive")) > seen)
        config = agent_config(tmp_path, [url])  # system CAs only: the self-signed backend is refused
        async with running(Agent(config, ssl_context=build_ssl_context(config))):
            await poll(lambda: any("TLS error" in r.getMessage() for r in caplog.records))
        nursery.cancel_scope.cancel()
