"""Pipeline resources run (issue 17, point 1): real backend, real agent, real handlers.

A check names two pipelines (and one that does not exist): one workflow is
filtered out by ``is_incident``, one passes a JavaScript EventFilter and runs
its handler, a workflow whose handler is missing is one error log and the
others still run, and the check's legacy ``handlers`` run beside them. An
agent's ``keepalive-pipelines`` fire when the agent stops.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

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


async def test_pipeline_workflows_with_tcp_udp_set_handlers_and_mutators(tmp_path: Path, single_node: BackendProcess,
                                                                       client: httpx.AsyncClient) -> None:
    """tcp and udp handlers get the mutated bytes; a set runs each member; has_metrics filters."""
    node = single_node
    await init_backend(node)
    api = Api(client, [node])
    received: dict[str, list[bytes]] = {"tcp": [], "udp": []}
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    tcp_port = listeners[0].socket.getsockname()[1]
    udp = trio.socket.socket(trio.socket.AF_INET, trio.socket.SOCK_DGRAM)
    await udp.bind(("127.0.0.1", 0))
    udp_port = udp.getsockname()[1]

    async def serve_tcp(stream: trio.abc.Stream) -> None:
        chunks = []
        async for chunk in stream:
            chunks.append(chunk)
        received["tcp"].append(b"".join(chunks))

    async def serve_udp() -> None:
        while True:
            data, _ = await udp.recvfrom(65536)
            received["udp"].append(data)

    member_a, member_b, metrics_only = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "metrics.jsonl"
    await put_resource(api, "handlers", "to-tcp", {"type": "tcp", "timeout": 10,
                                                   "socket": {"host": "127.0.0.1", "port": tcp_port}})
    await put_resource(api, "handlers", "to-udp", {"type": "udp", "timeout": 10,
                                                   "socket": {"host": "127.0.0.1", "port": udp_port}})
    for name, path in (("member-a", member_a), ("member-b", member_b), ("rec-metrics", metrics_only)):
        await put_resource(api, "handlers", name, {"type": "pipe", "command": recorder_command(path)})
    await put_resource(api, "handlers", "both-members", {"type": "set", "handlers": ["member-a", "member-b"]})
    await put_resource(api, "pipelines", "delivery", {"workflows": [
        workflow("raw-tcp", "to-tcp", mutator="only_check_output"),
        workflow("json-udp", "to-udp"),
        workflow("fan-out", "both-members", filters=("is_incident",)),
        workflow("metrics-only", "rec-metrics", filters=("has_metrics",)),
    ]})
    body = {"entity": {"metadata": {"name": "sock-entity", "namespace": "default"}, "entity_class": "proxy"},
            "check": {"metadata": {"name": "sock-check", "namespace": "default"}, "status": 2,
                      "output": "disk full", "interval": 60, "pipelines": [ref("Pipeline", "delivery")]}}
    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(trio.serve_listeners, serve_tcp, [listener])
        nursery.start_soon(serve_udp)
        r = await api.request("PUT", "/api/core/v2/namespaces/default/events/sock-entity/sock-check", json=body)
        assert r is not None and r.status_code in (200, 201), r.text if r is not None else "no answer"
        await wait_until("tcp, udp and both set members",
                         lambda: received["tcp"] and received["udp"] and read_events(member_a)
                         and read_events(member_b), node.log)
        nursery.cancel_scope.cancel()
    udp.close()
    assert received["tcp"] == [b"disk full"]  # only_check_output: the raw output, not JSON
    sent = json.loads(received["udp"][0])
    assert sent["check"]["metadata"]["name"] == "sock-check" and sent["check"]["status"] == 2
    assert read_events(member_a)[0]["check"]["output"] == "disk full"
    assert read_events(member_b)[0]["entity"]["metadata"]["name"] == "sock-entity"
    assert read_events(metrics_only) == []  # has_metrics: this event has none
