"""Scheduling in a three-node cluster, end to end (issue: scheduling and pipeline).

* a check published every second runs on every subscribed agent, and each
  failing result reaches a pipe handler that appends the event JSON to a
  file, once per event;
* kill -9 the node scheduling that check: another node takes over, the runs
  go on, and no run is doubled (every ``(entity, issued)`` pair appears once);
* a 5 s check scheduled by the same node skips at most one run across the kill;
* checks are spread over the nodes, not all scheduled by the Raft leader.

Real ``sensu-backend`` and ``sensu-agent`` processes on loopback; every wait is
bounded; every process is killed in ``finally``.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from core.resources.storage import decode_dict
from backend.schedulerd.daemon import owner_key, preferred_member
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
from tests.harness.backend import BackendProcess, Cluster

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]


async def scheduler_of(client: httpx.AsyncClient, nodes: list[BackendProcess], check: str) -> str | None:
    """The node name in the check's ownership key, read through any live node's debug API."""
    for node in nodes:
        if not node.running:
            continue
        try:
            r = await client.get(f"{node.debug_url}/debug/store/kv", params={"key": owner_key("default", check)})
        except httpx.HTTPError:
            continue
        if r.status_code == 200:
            return str(decode_dict(base64.b64decode(r.json()["value_b64"])).get("node") or "") or None
        if r.status_code == 404:
            return None
    return None


async def test_check_runs_everywhere_and_survives_killing_its_scheduler(
        cluster3: Cluster, client: httpx.AsyncClient, tmp_path: Path) -> None:
    nodes = cluster3.nodes
    await init_backend(nodes[0])
    api = Api(client, nodes)
    out = tmp_path / "handled.jsonl"
    await put_resource(api, "handlers", "record", {"type": "pipe", "command": recorder_command(out), "timeout": 10})
    await put_resource(api, "checks", "every-second", {
        "command": "echo failing; exit 2", "interval": 1, "subscriptions": ["linux"], "publish": True,
        "handlers": ["record"], "timeout": 5})
    # spare checks nobody subscribes to: only to see where the scheduler puts them
    for i in range(6):
        await put_resource(api, "checks", f"spread-{i}", {"command": "true", "interval": 60, "subscriptions": ["nobody"],
                                                 "publish": True})

    owner = await wait_until("a node to schedule the check", lambda: scheduler_of(client, nodes, "every-second"),
                             cluster3.logs)
    victim = next(n for n in nodes if n.name == owner)
    survivors = [n for n in nodes if n is not victim]
    # a 5 s check scheduled by the same node: after the kill, at most one of its runs may be skipped
    out5 = tmp_path / "handled-5s.jsonl"
    await put_resource(api, "handlers", "record-5s", {"type": "pipe", "command": recorder_command(out5), "timeout": 10})
    members = [f"{n.host}:{n.peer_port}" for n in nodes]
    five = next(f"every-five-{i}" for i in range(1000)
                if preferred_member("default", f"every-five-{i}", members) == f"{victim.host}:{victim.peer_port}")
    await put_resource(api, "checks", five, {"command": "echo failing; exit 2", "interval": 5, "subscriptions": ["linux"],
                                    "publish": True, "handlers": ["record-5s"], "timeout": 5})
    assert await wait_until(f"a node to schedule {five}", lambda: scheduler_of(client, nodes, five),
                            cluster3.logs) == victim.name
    # agents sit on the surviving nodes, so what the kill tests is scheduling, not agent failover
    agents = [AgentProcess(tmp_path, [f"ws://{n.host}:{n.agent_port}"], name=f"linux-{i}", subscriptions=("linux",))
              for i, n in enumerate(survivors)]
    async with running_agent(agents[0]), running_agent(agents[1]):
        logs = (agents[0].log, agents[1].log, cluster3.logs)

        def handled_per_entity() -> Counter[str]:
            return Counter(e["entity"]["metadata"]["name"] for e in read_events(out))

        await wait_until("three handled failures from each agent",
                         lambda: all(handled_per_entity()[a.name] >= 3 for a in agents), *logs)

        spread = {await wait_until(f"an owner for spread-{i}", lambda i=i: scheduler_of(client, nodes, f"spread-{i}"),
                                   *logs) for i in range(6)}
        assert len(spread) >= 2, f"every check scheduled by one node: {spread}"

        await wait_until(f"a run of {five} on each agent before the kill",
                         lambda: {e["entity"]["metadata"]["name"] for e in read_events(out5)} >= {a.name for a in agents},
                         *logs)
        killed_at = time.time()
        victim.kill()

        async def taken_over() -> str | None:
            name = await scheduler_of(client, survivors, "every-second")
            return name if name and name != victim.name else None

        new_owner = await wait_until("another node to take the check over", taken_over, *logs)
        took_over_after = time.time() - killed_at

        def runs_after_kill() -> dict[str, list[int]]:
            runs: dict[str, list[int]] = {a.name: [] for a in agents}
            for e in read_events(out):
                issued = int(e["check"]["issued"])
                if issued > killed_at:
                    runs[e["entity"]["metadata"]["name"]].append(issued)
            return runs

        await wait_until("five runs on each agent after the kill",
                         lambda: all(len(v) >= 5 for v in runs_after_kill().values()), *logs)

        def five_second_runs() -> dict[str, list[int]]:
            runs: dict[str, list[int]] = {a.name: [] for a in agents}
            for e in read_events(out5):
                runs[e["entity"]["metadata"]["name"]].append(int(e["check"]["issued"]))
            return {k: sorted(v) for k, v in runs.items()}

        await wait_until(f"two runs of {five} after the kill", lambda: all(
            len([t for t in v if t > killed_at]) >= 2 for v in five_second_runs().values()), *logs)
        for agent_name, issued in five_second_runs().items():
            gaps = [b - a for a, b in zip(issued, issued[1:])]
            print(f"{five} on {agent_name}: runs {issued}, gaps {gaps}")
            assert issued and issued[0] < killed_at, f"{five} never ran on {agent_name} before the kill"
            assert max(gaps) <= 2 * 5 + 1, f"more than one run of {five} skipped on {agent_name}: {gaps}"
            assert len(issued) == len(set(issued)), f"a run of {five} doubled on {agent_name}"
        first_after = min(min(v) for v in runs_after_kill().values())
        print(f"scheduler {victim.name} killed; {new_owner} owned the check {took_over_after:.1f} s later;"
              f" first run after the kill {first_after - killed_at:.1f} s later")

    events = read_events(out)  # complete lines only; a handler still writing adds nothing that could hide a double
    per_run = Counter((e["entity"]["metadata"]["name"], int(e["check"]["issued"])) for e in events)
    doubled = {k: v for k, v in per_run.items() if v > 1}
    assert not doubled, f"runs doubled: {doubled}"
    ids = Counter(e["id"] for e in events)
    assert all(v == 1 for v in ids.values()), "an event was handled twice"
    assert all(e["check"]["status"] == 2 and e["check"]["output"].strip() == "failing" for e in events)
    # no run skipped for more than the takeover: consecutive issued times per agent
    for agent in agents:
        issued = sorted(t for (name, t) in per_run if name == agent.name)
        gaps = [b - a for a, b in zip(issued, issued[1:])]
        print(agent.name, "runs", len(issued), "largest gap", max(gaps), "s")
