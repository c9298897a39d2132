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
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.harness.agent import AgentProcess, Api, init_backend, ns_path, running_agent, wait_until
from tests.harness.backend import REPO, BackendProcess, Cluster


pytestmark = pytest.mark.e2e


_BACKEND_READY = all(importlib.util.find_spec(m) is not None
                     for m in ("backend.agentd", "api.routes.entities", "api.routes.events", "api.routes.checks"))
needs_backend = pytest.mark.skipif(
    not _BACKEND_READY,
    reason="the backend's agent listener (backend/agentd) or the entities/events/checks API routes do not exist yet")


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
