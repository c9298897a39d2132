"""The agent's local HTTP API: event rules (pure) and the HTTP server of a real agent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from agent.agent import Agent
from agent.api import MAX_BODY_BYTES, prepare_api_event
from agent.config import load_config
from agent.entity import EntityState
from agent.version import AGENT_VERSION
from core.resources.errors import ValidationError, WireTypeError
from tests.harness.backend import free_port

NOW = 1_700_000_000


def agent_entity() -> Any:
    config = load_config({"name": "web-01"}, {}, hostname=lambda: "h")
    return EntityState(config).current(NOW)


def prepare(doc: Any) -> Any:
    return prepare_api_event(doc, agent_entity=agent_entity(), namespace="default", agent_name="web-01", now=NOW,
                             new_id=lambda: "9d1ab8a4-8b6e-4a7e-8f3e-3b9b4b8c2f11")


def test_fills_defaults() -> None:
    event = prepare({"check": {"metadata": {"name": "backup"}, "status": 2, "output": "failed"}})
    assert event.metadata.namespace == "default"
    assert event.timestamp == NOW
    assert event.id == "9d1ab8a4-8b6e-4a7e-8f3e-3b9b4b8c2f11"
    assert event.entity is not None and event.entity.metadata.name == "web-01"
    assert event.check is not None
    assert (event.check.interval, event.check.executed, event.check.processed_by) == (1, NOW, "web-01")
    assert event.check.metadata.namespace == "default"
    assert (event.check.status, event.check.output) == (2, "failed")


def test_keeps_what_the_client_set() -> None:
    event = prepare({"timestamp": 5, "check": {"metadata": {"name": "c"}, "interval": 30, "executed": 7,
                                               "handlers": ["slack"]}})
    assert event.timestamp == 5
    assert event.check is not None and (event.check.interval, event.check.executed) == (30, 7)
    assert event.check.handlers == ["slack"]


def test_foreign_entity_becomes_the_proxy_entity() -> None:
    event = prepare({"entity": {"metadata": {"name": "switch-7"}, "entity_class": "proxy"},
                     "check": {"metadata": {"name": "ping"}}})
    assert event.entity is not None and event.entity.metadata.name == "web-01"
    assert event.check is not None and event.check.proxy_entity_name == "switch-7"
    own = prepare({"entity": {"metadata": {"name": "web-01"}}, "check": {"metadata": {"name": "ping"}}})
    assert own.check is not None and own.check.proxy_entity_name == ""


def test_metrics_only_event() -> None:
    event = prepare({"metrics": {"points": [{"name": "x", "value": 1, "timestamp": 1}], "handlers": ["influx"]}})
    assert event.check is None and event.metrics is not None


@pytest.mark.parametrize(("doc", "error"), [
    ([], WireTypeError),
    ({}, ValidationError),
    ({"check": {"metadata": {"name": "has space"}}}, ValidationError),
    ({"check": {"metadata": {"name": "c"}, "status": "1"}}, WireTypeError),
    ({"check": {"metadata": {"name": "c"}}, "metadata": {"name": "named"}}, ValidationError),
])
def test_invalid_events(doc: Any, error: type[Exception]) -> None:
    with pytest.raises(error):
        prepare(doc)


# --- the server ------------------------------------------------------------------------


@pytest.fixture
async def agent_api(tmp_path: Path) -> AsyncIterator[tuple[Agent, str]]:
    port = free_port()
    config = load_config({"name": "web-01", "backend-url": ["ws://127.0.0.1:9"], "cache-dir": str(tmp_path),
                          "api-port": str(port), "retry-min": "1s"}, {}, hostname=lambda: "h")
    agent = Agent(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        try:
            yield agent, f"http://127.0.0.1:{port}"
        finally:
            agent.request_stop()
            nursery.cancel_scope.deadline = trio.current_time() + 10


async def test_routes(agent_api: tuple[Agent, str], client: httpx.AsyncClient) -> None:
    agent, base = agent_api
    r = await client.get(f"{base}/healthz")
    assert (r.status_code, r.text) == (503, "sensu backend unavailable\n")
    r = await client.get(f"{base}/version")
    assert (r.status_code, r.json()) == (200, {"version": AGENT_VERSION})
    r = await client.post(f"{base}/events", json={"check": {"metadata": {"name": "x"}, "status": 1}})
    assert (r.status_code, r.text) == (202, "")
    assert len(agent.queue) == 1
    payload = await agent.queue.read(await agent.queue.wait_oldest())
    assert payload is not None and json.loads(payload)["check"]["processed_by"] == "web-01"
    r = await client.post(f"{base}/events", content=b"{not json")
    assert r.status_code == 400 and r.text.startswith("invalid JSON")
    r = await client.post(f"{base}/events", json={"check": {"metadata": {"name": "a b"}}})
    assert r.status_code == 400 and "check.metadata.name" in r.text
    assert (await client.get(f"{base}/events")).status_code == 405
    assert (await client.get(f"{base}/nope")).status_code == 404
    r = await client.get(f"{base}/metrics")
    assert "sensu_agent_event_queue_events 1" in r.text
    assert "sensu_agent_connected 0" in r.text


async def test_body_limit(agent_api: tuple[Agent, str], client: httpx.AsyncClient) -> None:
    _, base = agent_api
    r = await client.post(f"{base}/events", content=b"x" * (MAX_BODY_BYTES + 1))
    assert r.status_code == 413


async def test_keep_alive_serves_several_requests_on_one_connection(agent_api: tuple[Agent, str]) -> None:
    _, base = agent_api
    port = int(base.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        request = b"GET /version HTTP/1.1\r\nHost: x\r\n\r\n"
        await stream.send_all(request + request)
        data = b""
        with trio.fail_after(10):
            while data.count(b"HTTP/1.1 200 OK") < 2:
                data += await stream.receive_some(4096)


async def test_garbage_gets_400(agent_api: tuple[Agent, str]) -> None:
    _, base = agent_api
    port = int(base.rsplit(":", 1)[1])
    stream = await trio.open_tcp_stream("127.0.0.1", port)
    async with stream:
        await stream.send_all(b"NOT HTTP\r\n\r\n")
        with trio.fail_after(10):
            data = await stream.receive_some(4096)
    assert data.startswith(b"HTTP/1.1 400")


async def test_queue_full_is_503(tmp_path: Path, client: httpx.AsyncClient) -> None:
    port = free_port()
    config = load_config({"name": "web-01", "backend-url": ["ws://127.0.0.1:9"], "cache-dir": str(tmp_path),
                          "api-port": str(port), "cache-max-events": "1"}, {}, hostname=lambda: "h")
    agent = Agent(config)
    async with trio.open_nursery() as nursery:
        await nursery.start(agent.run)
        body = {"check": {"metadata": {"name": "x"}}}
        assert (await client.post(f"http://127.0.0.1:{port}/events", json=body)).status_code == 202
        r = await client.post(f"http://127.0.0.1:{port}/events", json=body)
        assert r.status_code == 503 and "full" in r.text
        assert r.headers["Retry-After"] == "10"
        agent.request_stop()


async def test_port_in_use_is_a_startup_error(tmp_path: Path) -> None:
    from agent.agent import StartupError

    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        config = load_config({"backend-url": ["ws://127.0.0.1:9"], "cache-dir": str(tmp_path),
                              "api-port": str(port)}, {}, hostname=lambda: "h")
        with pytest.raises(StartupError, match=f"cannot listen on 127.0.0.1:{port}"):
            await Agent(config).run()
