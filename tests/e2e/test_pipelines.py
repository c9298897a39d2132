"""Pipeline resources run (issue 17, point 1): real backend, real agent, real handlers.

A check names two pipelines (and one that does not exist): one workflow is
filtered out by ``is_incident``, one passes a JavaScript EventFilter and runs
its handler, a workflow whose handler is missing is one error log and the
others still run, and the check's legacy ``handlers`` run beside them. An
agent's ``keepalive-pipelines`` fire when the agent stops.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.agent import (
    AgentProcess,
    Api,
    init_backend,
    put_resource,
    read_events,
    recorder_command,
    running_agent,
    wait_until,
)
from tests.harness.backend import BackendProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def ref(kind: str, name: str) -> dict[str, str]:
    return {"api_version": "core/v2", "type": kind, "name": name}


def workflow(name: str, handler: str, *, filters: tuple[str, ...] = (), mutator: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "handler": ref("Handler", handler)}
    if filters:
        out["filters"] = [ref("EventFilter", f) for f in filters]
    if mutator:
        out["mutator"] = ref("Mutator", mutator)
    return out


def agent_for(tmp_path: Path, node: BackendProcess, name: str, *extra: str) -> AgentProcess:
    return AgentProcess(tmp_path, [f"ws://{node.host}:{node.agent_port}"], name=name, subscriptions=("pipe",),
                        extra_args=list(extra))


async def test_a_check_with_two_pipelines_runs_the_workflow_that_passes(tmp_path: Path, single_node: BackendProcess,
                                                                         client: httpx.AsyncClient) -> None:
    node = single_node
    await init_backend(node)
    api = Api(client, [node])
    incidents, matched, legacy = tmp_path / "incidents.jsonl", tmp_path / "matched.jsonl", tmp_path / "legacy.jsonl"
    for name, path in (("rec-incidents", incidents), ("rec-matched", matched), ("rec-legacy", legacy)):
        await put_resource(api, "handlers", name, {"type": "pipe", "command": recorder_command(path)})
    await put_resource(api, "filters", "from-pipe-agent", {
        "action": "allow", "expressions": ["event.entity.name == 'pipe-agent' && event.check.status == 0"]})
    await put_resource(api, "pipelines", "only-incidents", {
        "workflows": [workflow("incidents", "rec-incidents", filters=("is_incident",))]})
    await put_resource(api, "pipelines", "everything", {
        "workflows": [workflow("ghost", "no-such-handler"),
                      workflow("matched", "rec-matched", filters=("from-pipe-agent", "not_silenced"))]})
    await put_resource(api, "checks", "pipe-check", {
        "command": "echo pipelines-ok", "subscriptions": ["pipe"], "interval": 1, "publish": True,
        "handlers": ["rec-legacy"],
        "pipelines": [ref("Pipeline", "only-incidents"), ref("Pipeline", "everything"),
                      ref("Pipeline", "no-such-pipeline")],
    })
    async with running_agent(agent_for(tmp_path, node, "pipe-agent")) as agent:
        got = await wait_until("two events through the matched workflow",
                               lambda: len(read_events(matched)) >= 2 and read_events(legacy), node.log, agent.log)
        assert got
    events = read_events(matched)
    assert {e["check"]["metadata"]["name"] for e in events} == {"pipe-check"}
    assert all(e["check"]["output"] == "pipelines-ok\n" and e["check"]["status"] == 0 for e in events)
    assert all(ref("Pipeline", "everything") in e["check"]["pipelines"] for e in events)
    assert read_events(incidents) == []  # status 0, never an incident: that workflow is filtered out
    log = node.log()
    assert "pipeline does not exist: no-such-pipeline" in log
    assert "workflow ghost: handler does not exist: no-such-handler" in log


async def test_keepalive_pipelines_fire_when_the_agent_stops(tmp_path: Path, single_node: BackendProcess,
                                                            client: httpx.AsyncClient) -> None:
    node = single_node
    await init_backend(node)
    api = Api(client, [node])
    alerts = tmp_path / "keepalive-alerts.jsonl"
    await put_resource(api, "handlers", "rec-keepalive", {"type": "pipe", "command": recorder_command(alerts)})
    await put_resource(api, "pipelines", "keepalive-alerts", {
        "workflows": [workflow("alert", "rec-keepalive", filters=("is_incident",))]})
    agent = agent_for(tmp_path, node, "ka-agent", "--keepalive-pipelines", "keepalive-alerts",
                      "--keepalive-interval", "1", "--keepalive-warning-timeout", "5")

    async def keepalive_ok() -> bool:
        event = await api.get_json("/api/core/v2/namespaces/default/events/ka-agent/keepalive")
        return bool(event) and event["check"]["status"] == 0

    async with running_agent(agent):
        await wait_until("the agent's keepalive event", keepalive_ok, node.log, agent.log)
    assert read_events(alerts) == []  # OK keepalives are not incidents
    events = await wait_until("a keepalive alert through the pipeline", lambda: read_events(alerts), node.log)
    assert events[0]["check"]["metadata"]["name"] == "keepalive"
    assert events[0]["check"]["status"] == 1
    assert events[0]["entity"]["metadata"]["name"] == "ka-agent"
    assert "No keepalive sent from ka-agent" in events[0]["check"]["output"]
