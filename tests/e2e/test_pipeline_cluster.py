"""The pipeline and silencing in action on a three-node cluster with two real agents.

Three ``sensu-backend`` nodes (started with ``--deregistration-handler
dereg``) and two ``sensu-agent`` processes, ``web-1`` (subscriptions
``linux``, ``web``, ``rr``) connected to the second node and ``db-1``
(``linux``, ``db``, ``rr``) connected to the third, are shared by the whole
module; the REST API is used through the first node, so every definition and
silence crosses the cluster before it acts. Each test uses its own checks and
handlers. Results come from the agents, either run by the scheduler or
posted to an agent's local events API (``POST /events``) when a test needs an
exact sequence of statuses.

Handlers are real pipe handlers appending the event JSON to a file, so "the
handler ran" means a line in that file; "the handler was skipped" means a
backend logged that it skipped it for that entity and check, and no line.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.harness.agent import (
    ADMIN,
    AgentProcess,
    Api,
    ns_path,
    put_resource,
    read_events,
    recorder_command,
    run_init,
    wait_until,
)
from tests.harness.backend import BackendProcess, make_cluster_nodes


pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


@dataclass
class Env:
    nodes: list[BackendProcess]
    web: AgentProcess
    db: AgentProcess
    tmp: Path

    @property
    def api_node(self) -> BackendProcess:
        return self.nodes[0]

    def logs(self) -> str:
        return "\n".join([*(n.log()[-4000:] for n in self.nodes), self.web.log()[-3000:], self.db.log()[-3000:]])

    def backend_records(self) -> list[dict[str, Any]]:
        out = []
        for node in self.nodes:
            for line in node.log().splitlines():
                if line.startswith("{"):
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass
        return out


def _sync_wait(what: str, check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = check()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        time.sleep(0.2)  # sync fixture code, outside any event loop
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("pipeline")
    nodes = make_cluster_nodes(tmp, 3, extra_args=["--deregistration-handler", "dereg"])
    web = AgentProcess(tmp, [f"ws://{nodes[1].host}:{nodes[1].agent_port}"], name="web-1",
                       subscriptions=("linux", "web", "rr"))
    db = AgentProcess(tmp, [f"ws://{nodes[2].host}:{nodes[2].agent_port}"], name="db-1",
                      subscriptions=("linux", "db", "rr"))
    for node in nodes:
        node.start()
    try:
        with httpx.Client(timeout=5.0) as http:
            for node in nodes:
                _sync_wait(f"{node.name} to be healthy", lambda node=node: http.get(
                    f"{node.api_url}/health").status_code == 200)
            api_url = nodes[0].api_url
            result = run_init(api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1])
            assert result.returncode == 0, result.stderr
            web.start()
            db.start()
            token = http.get(f"{api_url}/auth", auth=ADMIN).json()["access_token"]
            for agent in (web, db):
                _sync_wait(f"{agent.name} to register", lambda agent=agent: http.get(
                    f"{api_url}{ns_path('events', agent.name, 'keepalive')}",
                    headers={"Authorization": f"Bearer {token}"}).status_code == 200)
        yield Env(nodes, web, db, tmp)
    finally:
        web.stop()
        db.stop()
        for node in nodes:
            node.stop()


@pytest.fixture
async def api(env: Env, client: httpx.AsyncClient) -> Api:
    return Api(client, [env.api_node])


async def delete(api: Api, kind: str, name: str) -> None:
    await api.request("DELETE", ns_path(kind, name))


async def recorder(api: Api, env: Env, name: str, **extra: Any) -> Path:
    """A pipe handler ``name`` appending each event to its own file; returns the file."""
    path = env.tmp / f"{name}.jsonl"
    await put_resource(api, "handlers", name, {"type": "pipe", "command": recorder_command(path), "timeout": 10, **extra})
    return path


async def post_result(client: httpx.AsyncClient, agent: AgentProcess, check: str, status: int,
                      handlers: list[str], **check_fields: Any) -> None:
    """A check result posted to the agent's local API (it reaches the backend as the agent's event)."""
    body = {"check": {"metadata": {"name": check}, "status": status, "output": f"{check} status {status}",
                      "handlers": handlers, **check_fields}}
    r = await client.post(f"{agent.api_url}/events", json=body, timeout=5.0)
    assert r.status_code in (200, 201, 202), r.text


def handled(path: Path, entity: str, check: str) -> list[dict[str, Any]]:
    return [e for e in read_events(path)
            if e["entity"]["metadata"]["name"] == entity and e["check"]["metadata"]["name"] == check]


def skipped_as_silenced(env: Env, entity: str, check: str) -> int:
    return sum(1 for r in env.backend_records()
               if r.get("msg") == "event is silenced, skipping handler"
               and r.get("entity") == entity and r.get("check") == check)


async def stored_event(api: Api, entity: str, check: str) -> dict[str, Any] | None:
    return await api.get_json(ns_path("events", entity, check))


# --- filters, set handlers, timeouts ----------------------------------------------------------


async def test_first_occurrence_filter_deny_filter_and_set_fan_out(env: Env, api: Api) -> None:
    first = await recorder(api, env, "first-only", filters=["first-occurrence"])
    denied = await recorder(api, env, "denied", filters=["deny-critical"])
    every = await recorder(api, env, "every")
    await put_resource(api, "filters", "first-occurrence", {"action": "allow", "expressions": ["event.check.occurrences == 1"]})
    await put_resource(api, "filters", "deny-critical", {"action": "deny", "expressions": ["event.check.status == 2"]})
    await put_resource(api, "handlers", "fan-out", {"type": "set", "handlers": ["first-only", "denied", "every"]})
    await put_resource(api, "checks", "failing-web", {"command": "echo down; exit 2", "interval": 1, "subscriptions": ["web"],
                                             "publish": True, "handlers": ["fan-out"], "timeout": 5})
    try:
        await wait_until("four failures through the set handler",
                         lambda: len(handled(every, "web-1", "failing-web")) >= 4, env.logs)
    finally:
        await delete(api, "checks", "failing-web")
    runs = handled(every, "web-1", "failing-web")
    assert [e["check"]["occurrences"] for e in sorted(runs, key=lambda e: e["check"]["occurrences"])][:4] == [1, 2, 3, 4]
    firsts = handled(first, "web-1", "failing-web")
    assert len(firsts) == 1 and firsts[0]["check"]["occurrences"] == 1
    assert handled(denied, "web-1", "failing-web") == []
    assert handled(every, "db-1", "failing-web") == []  # db-1 is not subscribed to web


async def test_a_hung_handler_is_killed_at_its_timeout(env: Env, api: Api, client: httpx.AsyncClient) -> None:
    pidfile = env.tmp / "hung.pid"
    await put_resource(api, "handlers", "hangs", {"type": "pipe", "timeout": 2,
                                         "command": f"echo $$ > {pidfile}; exec sleep 600"})
    await post_result(client, env.web, "hang-check", 2, ["hangs"])
    pid = int(await wait_until("the handler to start", lambda: pidfile.exists() and pidfile.read_text().strip(),
                               env.logs))
    started = time.monotonic()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        return False

    await wait_until("the hung handler to be killed", gone, env.logs)
    lived = time.monotonic() - started
    assert lived >= 1.0, f"killed after {lived:.1f} s, before its 2 s timeout"
    await wait_until("the timeout to be logged", lambda: any(
        "timed out" in str(r.get("msg")) and r.get("handler") == "hangs" and r.get("check") == "hang-check"
        and r.get("entity") == "web-1" for r in env.backend_records()), env.logs)


# --- silencing: the seed's five scenarios -------------------------------------------------------

# (entry posted to the classic /silenced API, its id, the silenced (agent, check),
#  an event that must still be handled, how the entry ends)
SCENARIOS = {
    "a client": ({"subscription": "client:web-1"}, "client:web-1:*",
                 ("web", "sil-client"), ("db", "sil-client"), "expire"),
    "a check on a client": ({"subscription": "client:web-1", "check": "sil-cc"}, "client:web-1:sil-cc",
                            ("web", "sil-cc"), ("web", "sil-cc-other"), "clear"),
    "a subscription": ({"subscription": "web"}, "web:*", ("web", "sil-sub"), ("db", "sil-sub"), "clear"),
    "a check on a subscription": ({"subscription": "web", "check": "sil-sc"}, "web:sil-sc",
                                  ("web", "sil-sc"), ("web", "sil-sc-other"), "clear"),
    "a check everywhere": ({"check": "sil-all"}, "*:sil-all", ("db", "sil-all"), ("db", "sil-all-other"), "expire"),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_seed_silencing_scenario(scenario: str, env: Env, api: Api, client: httpx.AsyncClient) -> None:
    body, entry_id, (agent_key, check), (other_agent_key, other_check), ending = SCENARIOS[scenario]
    agent = env.web if agent_key == "web" else env.db
    other = env.web if other_agent_key == "web" else env.db
    handler = f"rec-{check}"
    out = await recorder(api, env, handler)
    if ending == "expire":
        body = {**body, "expire": 3}
    r = await client.post(f"{env.api_node.api_url}/silenced", json=body, auth=ADMIN)
    assert r.status_code == 201, r.text
    listed = (await client.get(f"{env.api_node.api_url}/silenced", auth=ADMIN)).json()
    assert entry_id in [e["id"] for e in listed], listed

    # silenced: marked on the stored event, the handler skipped
    await post_result(client, agent, check, 2, [handler])
    event = await wait_until("the silenced event", lambda: stored_event(api, agent.name, check), env.logs)
    assert event["check"]["is_silenced"] is True
    assert entry_id in event["check"]["silenced"]
    await wait_until("the handler to be skipped", lambda: skipped_as_silenced(env, agent.name, check) >= 1, env.logs)
    # the entry matches nothing else: the control event is handled
    await post_result(client, other, other_check, 2, [handler])
    await wait_until("the unsilenced control event to be handled",
                     lambda: handled(out, other.name, other_check), env.logs)
    assert handled(out, agent.name, check) == []

    if ending == "clear":
        r = await client.post(f"{env.api_node.api_url}/silenced/clear", json={"id": entry_id}, auth=ADMIN)
        assert r.status_code == 204, r.text
    else:  # expire: the entry goes by itself

        async def expired() -> bool:
            entries = (await client.get(f"{env.api_node.api_url}/silenced", auth=ADMIN)).json()
            return entry_id not in [e["id"] for e in entries]

        await wait_until("the entry to expire", expired, env.logs)

    # no longer silenced: the handler runs again
    await post_result(client, agent, check, 2, [handler])
    events = await wait_until("the handler to run once the entry is gone",
                              lambda: handled(out, agent.name, check), env.logs)
    assert events[-1]["check"]["is_silenced"] is False
    assert skipped_as_silenced(env, agent.name, check) == 1


async def test_expire_on_resolve_entry_is_deleted_by_the_ok_result(env: Env, api: Api,
                                                                    client: httpx.AsyncClient) -> None:
    out = await recorder(api, env, "rec-resolve")
    r = await client.post(f"{env.api_node.api_url}/silenced", auth=ADMIN, json={
        "subscription": "client:web-1", "check": "check_ntp", "expire_on_resolve": True})
    assert r.status_code == 201, r.text
    await post_result(client, env.web, "check_ntp", 2, ["rec-resolve"])
    await wait_until("the failure to be skipped as silenced",
                     lambda: skipped_as_silenced(env, "web-1", "check_ntp") >= 1, env.logs)
    await post_result(client, env.web, "check_ntp", 0, ["rec-resolve"])

    async def entry_gone() -> bool:
        entries = (await client.get(f"{env.api_node.api_url}/silenced", auth=ADMIN)).json()
        return "client:web-1:check_ntp" not in [e["id"] for e in entries]

    await wait_until("the expire_on_resolve entry to be deleted", entry_gone, env.logs)
    resolved = await wait_until("the resolution to be handled", lambda: handled(out, "web-1", "check_ntp"), env.logs)
    assert [e["check"]["status"] for e in resolved] == [0]
    assert not resolved[0]["check"]["silenced"]  # removed before the pipeline (is_silenced stays, as in Go)
    assert await api.get_json(ns_path("silenced", "client:web-1:check_ntp")) is None


async def test_a_silence_beginning_later_does_not_silence_yet(env: Env, api: Api, client: httpx.AsyncClient) -> None:
    out = await recorder(api, env, "rec-later")
    await put_resource(api, "silenced", "entity:web-1:later", {"subscription": "entity:web-1", "check": "later",
                                                      "begin": int(time.time()) + 3600, "reason": "maintenance"})
    await post_result(client, env.web, "later", 2, ["rec-later"])
    events = await wait_until("the handler to run", lambda: handled(out, "web-1", "later"), env.logs)
    assert events[0]["check"]["is_silenced"] is False


async def test_a_silenced_event_reaches_a_handler_that_opts_out(env: Env, api: Api, client: httpx.AsyncClient) -> None:
    out = await recorder(api, env, "rec-anyway", handle_silenced=True)
    await put_resource(api, "silenced", "entity:db-1:anyway", {"subscription": "entity:db-1", "check": "anyway"})
    await post_result(client, env.db, "anyway", 2, ["rec-anyway"])
    events = await wait_until("the opted-out handler to run", lambda: handled(out, "db-1", "anyway"), env.logs)
    assert events[0]["check"]["is_silenced"] is True


# --- event state ---------------------------------------------------------------------------------


async def test_a_check_alternating_ok_and_critical_becomes_flapping(env: Env, api: Api,
                                                                    client: httpx.AsyncClient) -> None:
    thresholds = {"low_flap_threshold": 10, "high_flap_threshold": 30}
    states = []
    for i in range(24):  # a flap score needs a full history (21 results)
        status = 2 if i % 2 else 0
        await post_result(client, env.db, "flappy", status, [], output=f"run {i}", **thresholds)

        async def stored(i: int = i) -> dict[str, Any] | None:
            event = await stored_event(api, "db-1", "flappy")
            return event if event and event["check"]["output"] == f"run {i}" else None

        event = await wait_until(f"result {i + 1} to be stored", stored, env.logs)
        states.append(event["check"]["state"])
    assert states[:20] == ["passing", "failing"] * 10, states
    assert states[-1] == "flapping", states
    assert event["check"]["total_state_change"] >= 30


async def test_a_ttl_check_raises_an_event_when_results_stop(env: Env, api: Api, client: httpx.AsyncClient) -> None:
    out = await recorder(api, env, "rec-ttl")
    await post_result(client, env.web, "deadman", 0, ["rec-ttl"], ttl=5, interval=1)
    await wait_until("the OK result", lambda: stored_event(api, "web-1", "deadman"), env.logs)

    async def ttl_failure() -> dict[str, Any] | None:
        event = await stored_event(api, "web-1", "deadman")
        return event if event and event["check"]["status"] == 1 else None

    event = await wait_until("the TTL failure", ttl_failure, env.logs)
    assert event["check"]["output"].startswith("Last check execution was")
    handled_failures = await wait_until("the TTL failure to be handled",
                                        lambda: [e for e in handled(out, "web-1", "deadman")
                                                 if e["check"]["status"] == 1], env.logs)
    assert handled_failures[0]["check"]["output"].startswith("Last check execution was")
    # a fresh result disarms the failure: OK again
    await post_result(client, env.web, "deadman", 0, ["rec-ttl"], ttl=0)

    async def ok_again() -> bool:
        event = await stored_event(api, "web-1", "deadman")
        return bool(event and event["check"]["status"] == 0)

    await wait_until("the OK result after the TTL failure", ok_again, env.logs)


# --- scheduling variants -------------------------------------------------------------------------


async def test_round_robin_runs_on_one_agent_per_run_rotating(env: Env, api: Api) -> None:
    out = await recorder(api, env, "rec-rr")
    await put_resource(api, "checks", "rr-check", {"command": "echo rr; exit 1", "interval": 1, "subscriptions": ["rr"],
                                          "publish": True, "round_robin": True, "handlers": ["rec-rr"]})
    try:
        await wait_until("six round-robin runs", lambda: len(read_events(out)) >= 6, env.logs)
    finally:
        await delete(api, "checks", "rr-check")
    runs = sorted((int(e["check"]["issued"]), e["entity"]["metadata"]["name"]) for e in read_events(out))
    issued = [t for t, _ in runs]
    assert len(issued) == len(set(issued)), f"a run went to more than one agent: {runs}"
    assert {name for _, name in runs} == {"web-1", "db-1"}, runs
    # rotating: consecutive runs alternate between the two agents
    names = [name for _, name in runs[:6]]
    assert all(a != b for a, b in zip(names, names[1:])), names


async def test_proxy_check_runs_once_per_matching_entity(env: Env, api: Api) -> None:
    out = await recorder(api, env, "rec-proxy")
    for name, kind in (("router-1", "router"), ("router-2", "router"), ("printer-1", "printer")):
        await put_resource(api, "entities", name, {"entity_class": "proxy"}, labels={"kind": kind})
    await put_resource(api, "checks", "ping-routers", {
        "command": "echo pinging {{ .name }}; exit 2", "interval": 2, "subscriptions": ["web"], "publish": True,
        "handlers": ["rec-proxy"], "proxy_requests": {"entity_attributes": ["entity.labels.kind == 'router'"],
                                                      "splay": True, "splay_coverage": 50}})
    try:
        await wait_until("a result for each router", lambda: {
            e["entity"]["metadata"]["name"] for e in read_events(out)} >= {"router-1", "router-2"}, env.logs)
    finally:
        await delete(api, "checks", "ping-routers")
    events = read_events(out)
    assert {e["entity"]["metadata"]["name"] for e in events} <= {"router-1", "router-2"}
    for e in events:
        assert e["check"]["output"].strip() == f"pinging {e['entity']['metadata']['name']}"
        assert e["check"]["proxy_entity_name"] == e["entity"]["metadata"]["name"]


async def test_stdin_check_reads_entity_and_check_as_json(env: Env, api: Api) -> None:
    await put_resource(api, "checks", "reads-stdin", {"command": "cat", "interval": 1, "subscriptions": ["entity:web-1"],
                                             "publish": True, "stdin": True})
    try:
        event = await wait_until("the stdin check result", lambda: stored_event(api, "web-1", "reads-stdin"),
                                 env.logs)
    finally:
        await delete(api, "checks", "reads-stdin")
    payload = json.loads(event["check"]["output"])
    assert payload["entity"]["metadata"]["name"] == "web-1"
    assert payload["check"]["metadata"]["name"] == "reads-stdin"


# --- deregistration (agents issue) ---------------------------------------------------------------


async def test_deregistration_handler_runs_once_when_an_ephemeral_agent_leaves(env: Env, api: Api,
                                                                               client: httpx.AsyncClient) -> None:
    out = await recorder(api, env, "dereg")
    node = env.nodes[2]
    agent = AgentProcess(env.tmp, [f"ws://{node.host}:{node.agent_port}"], name="ephemeral-1",
                         subscriptions=("linux",), extra_args=["--deregister"])
    agent.start()
    try:
        await wait_until("the ephemeral agent to register",
                         lambda: stored_event(api, "ephemeral-1", "keepalive"), agent.log, env.logs)
    finally:
        agent.stop()

    async def entity_gone() -> bool:
        return await api.get_json(ns_path("entities", "ephemeral-1")) is None

    await wait_until("the entity to be deregistered", entity_gone, agent.log, env.logs)
    events = await wait_until("the deregistration handler", lambda: read_events(out), agent.log, env.logs)
    await trio.sleep(2)  # room for a duplicate to show up
    assert len(read_events(out)) == 1
    assert events[0]["entity"]["metadata"]["name"] == "ephemeral-1"
    assert events[0]["check"]["metadata"]["name"] == "deregistration"
    assert await stored_event(api, "ephemeral-1", "keepalive") is None
