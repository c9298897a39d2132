"""sensu-agent end to end: a real agent process against real sensu-backend processes.

* an agent registers: its entity and its keepalive event are stored;
* an ad hoc check request runs on the agent and its result is stored;
* in a 3-node cluster, kill -9 the backend the agent is connected to: the agent
  reconnects to another one, and results produced during the switch (an event
  posted to the agent's local API, a check that finishes while disconnected)
  are not lost;
* the agent process alone: queued events survive a restart, SIGTERM exits 0.

Every wait polls under ``trio.fail_after``; every process is killed in ``finally``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.harness.backend import REPO, BackendProcess, Cluster, free_port

from .test_init import run_init

pytestmark = pytest.mark.e2e

ADMIN = ("admin", "P@ssw0rd!")
AGENT = "agent-e2e"
WAIT = 60.0

_BACKEND_READY = all(importlib.util.find_spec(m) is not None
                     for m in ("backend.agentd", "api.routes.entities", "api.routes.events", "api.routes.checks"))
needs_backend = pytest.mark.skipif(
    not _BACKEND_READY,
    reason="the backend's agent listener (backend/agentd) or the entities/events/checks API routes do not exist yet")


class AgentProcess:
    """One ``python -m agent.cli start`` process with its own cache-dir, API port and log file."""

    def __init__(self, tmp_path: Path, backend_urls: list[str], *, name: str = AGENT,
                 extra_args: list[str] | None = None) -> None:
        self.name = name
        self.api_port = free_port()
        self.cache_dir = tmp_path / f"{name}-cache"
        self.log_path = tmp_path / f"{name}.log"
        self.backend_urls = backend_urls
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "agent.cli", "start", "--name", self.name,
                "--cache-dir", str(self.cache_dir), "--api-port", str(self.api_port),
                "--subscriptions", "e2e", "--log-level", "debug",
                "--retry-min", "100ms", "--retry-max", "1s", "--backend-heartbeat-interval", "1",
                "--backend-heartbeat-timeout", "3"]
        for url in self.backend_urls:
            args += ["--backend-url", url]
        return args + self.extra_args

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("SENSU_CONFIG_FILE", None)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {' '.join(self.args()[3:])}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
        return records

    def connected_backend(self) -> str | None:
        """The backend URL of the last ``connected to backend`` log line."""
        urls = [r.get("backend") for r in self.log_records() if r.get("msg") == "connected to backend"]
        return urls[-1] if urls else None

    def connection_count(self) -> int:
        return sum(1 for r in self.log_records() if r.get("msg") == "connected to backend")

    async def get(self, client: httpx.AsyncClient, path: str) -> httpx.Response | None:
        try:
            return await client.get(f"{self.api_url}{path}", timeout=2.0)
        except httpx.HTTPError:
            return None


@asynccontextmanager
async def running_agent(agent: AgentProcess) -> AsyncIterator[AgentProcess]:
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


async def wait_until(what: str, check: Callable[[], Any], *logs: Callable[[], str], timeout: float = WAIT) -> Any:
    """Poll the async or sync ``check`` until it returns something truthy; fail with the logs attached."""
    try:
        with trio.fail_after(timeout):
            while True:
                result = check()
                if hasattr(result, "__await__"):
                    result = await result
                if result:
                    return result
                await trio.sleep(0.1)
    except trio.TooSlowError:
        raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(log() for log in logs)) from None


async def init_backend(node: BackendProcess) -> None:
    result = await trio.to_thread.run_sync(lambda: run_init(
        node.api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
    assert result.returncode == 0, result.stderr


class Api:
    """The REST API of one or more nodes with an admin token; tries each node in turn."""

    def __init__(self, client: httpx.AsyncClient, nodes: list[BackendProcess]) -> None:
        self.client = client
        self.nodes = nodes
        self.tokens: dict[str, str] = {}

    async def _token(self, node: BackendProcess) -> str:
        if node.name not in self.tokens:
            r = await self.client.get(f"{node.api_url}/auth", auth=ADMIN)
            r.raise_for_status()
            self.tokens[node.name] = r.json()["access_token"]
        return self.tokens[node.name]

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response | None:
        for node in self.nodes:
            if not node.running:
                continue
            try:
                headers = {"Authorization": f"Bearer {await self._token(node)}"}
                return await self.client.request(method, f"{node.api_url}{path}", headers=headers, timeout=5.0, **kw)
            except httpx.HTTPError:
                continue
        return None

    async def get_json(self, path: str) -> dict[str, Any] | None:
        r = await self.request("GET", path)
        return r.json() if r is not None and r.status_code == 200 else None


def ns_path(*parts: str) -> str:
    return "/api/core/v2/namespaces/default/" + "/".join(parts)


async def wait_registered(api: Api, agent: AgentProcess, *logs: Callable[[], str]) -> dict[str, Any]:
    await wait_until("the entity to be stored", lambda: api.get_json(ns_path("entities", agent.name)), *logs)
    return await wait_until("the keepalive event to be stored",
                            lambda: api.get_json(ns_path("events", agent.name, "keepalive")), *logs)


# --- single backend --------------------------------------------------------------------


@needs_backend
async def test_agent_registers_and_runs_a_check(single_node: BackendProcess, client: httpx.AsyncClient,
                                                tmp_path: Path) -> None:
    await init_backend(single_node)
    api = Api(client, [single_node])
    agent = AgentProcess(tmp_path, [f"ws://{single_node.host}:{single_node.agent_port}"],
                         extra_args=["--labels", "greeting=hello"])
    async with running_agent(agent):
        logs = (agent.log, single_node.log)
        keepalive = await wait_registered(api, agent, *logs)
        assert keepalive["check"]["status"] == 0
        assert keepalive["entity"]["entity_class"] == "agent"
        entity = await api.get_json(ns_path("entities", agent.name))
        assert entity is not None
        assert "e2e" in entity["subscriptions"]
        assert entity["system"]["hostname"]
        health = await agent.get(client, "/healthz")
        assert health is not None and (health.status_code, health.text) == (200, "ok\n")

        check = {"metadata": {"name": "hello", "namespace": "default"},
                 "command": "echo {{ .labels.greeting }} from {{ .name }}; exit 1",
                 "subscriptions": ["e2e"], "interval": 600, "publish": False, "timeout": 10}
        r = await api.request("PUT", ns_path("checks", "hello"), json=check)
        assert r is not None and r.status_code in (200, 201), r.text if r is not None else ""
        r = await api.request("POST", ns_path("checks", "hello", "execute"), json={"check": "hello"})
        assert r is not None and r.status_code == 202, r.text if r is not None else ""

        async def result() -> dict[str, Any] | None:
            event = await api.get_json(ns_path("events", agent.name, "hello"))
            return event if event and event["check"]["output"] else None

        event = await wait_until("the check result to be stored", result, *logs)
        assert event["check"]["output"] == f"hello from {agent.name}\n"
        assert event["check"]["status"] == 1
        assert event["check"]["command"] == check["command"]  # unsubstituted
        assert event["check"]["processed_by"] == agent.name

        # an event posted to the agent's local API reaches the store too
        r = await client.post(f"{agent.api_url}/events",
                              json={"check": {"metadata": {"name": "posted"}, "status": 2, "output": "from api"}})
        assert r.status_code == 202
        posted = await wait_until("the posted event", lambda: api.get_json(ns_path("events", agent.name, "posted")),
                                  *logs)
        assert (posted["check"]["status"], posted["check"]["output"]) == (2, "from api")


# --- failover --------------------------------------------------------------------------


@needs_backend
@pytest.mark.slow
async def test_failover_to_another_backend_loses_no_result(cluster3: Cluster, client: httpx.AsyncClient,
                                                           tmp_path: Path) -> None:
    await init_backend(cluster3.nodes[0])
    api = Api(client, cluster3.nodes)
    by_url = {f"ws://{n.host}:{n.agent_port}": n for n in cluster3.nodes}
    agent = AgentProcess(tmp_path, list(by_url), extra_args=["--retry-min", "2s", "--retry-max", "4s"])
    async with running_agent(agent):
        logs = (agent.log, cluster3.logs)
        await wait_registered(api, agent, *logs)
        check = {"metadata": {"name": "slow", "namespace": "default"}, "command": "sleep 3; echo finished",
                 "subscriptions": ["e2e"], "interval": 600, "publish": False, "timeout": 30}
        r = await api.request("PUT", ns_path("checks", "slow"), json=check)
        assert r is not None and r.status_code in (200, 201)

        async def check_running() -> bool:
            r = await agent.get(client, "/metrics")
            return r is not None and "sensu_agent_checks_in_progress 1" in r.text

        r = await api.request("POST", ns_path("checks", "slow", "execute"), json={"check": "slow"})
        assert r is not None and r.status_code == 202
        await wait_until("the slow check to start on the agent", check_running, *logs)

        victim_url = agent.connected_backend()
        assert victim_url in by_url, agent.log()
        connections = agent.connection_count()
        by_url[victim_url].kill()  # kill -9 the backend the agent is connected to

        async def disconnected() -> bool:
            r = await agent.get(client, "/healthz")
            return r is not None and r.status_code == 503

        # A result produced while the agent has no backend: posted to its local API
        # (retry-min 2s keeps it disconnected long enough to see and use the gap).
        await wait_until("the agent to notice its backend is gone", disconnected, *logs)
        r = await client.post(f"{agent.api_url}/events",
                              json={"check": {"metadata": {"name": "during-switch"}, "status": 1,
                                              "output": "produced while the backend was down"}})
        assert r.status_code == 202

        await wait_until("a reconnect to a surviving backend",
                         lambda: agent.connection_count() > connections and agent.connected_backend() != victim_url,
                         *logs)
        posted = await wait_until("the event posted during the switch",
                                  lambda: api.get_json(ns_path("events", agent.name, "during-switch")), *logs)
        assert posted["check"]["output"] == "produced while the backend was down"

        async def slow_result() -> dict[str, Any] | None:
            event = await api.get_json(ns_path("events", agent.name, "slow"))
            return event if event and event["check"]["output"] == "finished\n" else None

        await wait_until("the check that finished during the switch", slow_result, *logs)
        health = await agent.get(client, "/healthz")
        assert health is not None and health.status_code == 200


# --- the agent process on its own ------------------------------------------------------


async def test_queued_events_survive_an_agent_restart(tmp_path: Path, client: httpx.AsyncClient) -> None:
    agent = AgentProcess(tmp_path, ["ws://127.0.0.1:9"])  # nothing listens there
    async with running_agent(agent):
        async def posted() -> bool:
            try:
                r = await client.post(f"{agent.api_url}/events",
                                      json={"check": {"metadata": {"name": "kept"}, "output": "x"}}, timeout=2)
            except httpx.HTTPError:
                return False
            return r.status_code == 202

        await wait_until("the agent API to accept an event", posted, agent.log)
    assert agent.proc is not None and agent.proc.returncode == 0, agent.log()  # SIGTERM is a clean stop
    queued = [p.name for p in (agent.cache_dir / "events").iterdir() if p.name.endswith(".json")]
    assert len(queued) == 1
    async with running_agent(agent):
        async def queue_length() -> str | None:
            r = await agent.get(client, "/metrics")
            return r.text if r is not None and r.status_code == 200 else None

        metrics = await wait_until("the restarted agent's metrics", queue_length, agent.log)
        assert "sensu_agent_event_queue_events 1" in metrics


async def test_second_agent_on_the_same_cache_dir_exits_1(tmp_path: Path, client: httpx.AsyncClient) -> None:
    first = AgentProcess(tmp_path, ["ws://127.0.0.1:9"])
    async with running_agent(first):
        await wait_until("the first agent's API", lambda: first.get(client, "/version"), first.log)
        second = AgentProcess(tmp_path, ["ws://127.0.0.1:9"])
        second.cache_dir = first.cache_dir
        result = await trio.to_thread.run_sync(lambda: subprocess.run(
            second.args(), capture_output=True, text=True, timeout=60, cwd=str(REPO),
            env={**os.environ, "PYTHONPATH": str(REPO)}))
        assert result.returncode == 1
        assert result.stderr.strip().endswith("is in use by another sensu-agent")
