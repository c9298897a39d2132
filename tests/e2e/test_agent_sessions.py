"""Agent sessions survive bad input, and big outputs get through (issue 17, point 5).

A simulated agent (a few lines of trio-websocket) sends messages the backend
cannot use; each is logged and dropped, and the same connection keeps
working. A real ``sensu-agent`` runs a check whose output is 2 MB, and the
whole output is stored.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from core.resources import keys
from tests.harness.agent import AgentProcess, Api, init_backend, put_resource, running_agent, wait_until
from tests.harness.backend import BackendProcess, Cluster

from .test_agents_backend import _last_seen_is, _logged, connect, keepalive_frame, next_message, wait_for
from .test_api_auth import init_cluster

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


async def test_unknown_and_invalid_messages_do_not_close_the_session(single_node: BackendProcess,
                                                                     client: httpx.AsyncClient) -> None:
    node = single_node
    await init_cluster(Cluster([node], client))
    entity_key = keys.key_for("entities", "default", "web-01")
    bad_inputs: list[tuple[bytes, str]] = [
        (b"teleport\n{}", "unknown message type 'teleport'"),
        (b"garbage-without-newline", "no newline"),
        (b"event\n{not json", "invalid JSON"),
        (b'event\n{"check": {"metadata": {"name": "disk"}}}', "invalid event"),
    ]
    async with connect(node, "web-01") as ws:
        await next_message(ws, "entity_config")
        await ws.send_message(keepalive_frame("web-01", 1, ts=1_700_000_001))
        await wait_for(lambda: _last_seen_is(client, node, entity_key, 1_700_000_001))
        for seq, (frame, reason) in enumerate(bad_inputs, start=2):
            await ws.send_message(frame)
            # the same connection still carries keepalives after each bad message
            await ws.send_message(keepalive_frame("web-01", seq, ts=1_700_000_000 + seq))
            await wait_for(lambda: _last_seen_is(client, node, entity_key, 1_700_000_000 + seq), what=reason)
            await wait_for(lambda: _logged(node, "dropping invalid message from agent", "web-01"), what=reason)
            assert any(reason in line and "dropping invalid message" in line and '"agent": "web-01"' in line
                       for line in node.log().splitlines()), reason
        assert ws.closed is None
    assert "closing agent connection" not in node.log()
    assert '"type": "teleport"' in node.log()


async def test_a_2mb_check_output_is_stored_whole(tmp_path: Path, single_node: BackendProcess,
                                                 client: httpx.AsyncClient) -> None:
    node = single_node
    await init_backend(node)
    api = Api(client, [node])
    size = 2_000_000
    await put_resource(api, "checks", "big-output", {
        "command": f"head -c {size} /dev/zero | tr '\\0' x", "subscriptions": ["big"], "interval": 2,
        "publish": True, "timeout": 20,
    })
    agent = AgentProcess(tmp_path, [f"ws://{node.host}:{node.agent_port}"], name="big-agent",
                         subscriptions=("big",))
    async with running_agent(agent):
        async def stored() -> dict | None:
            event = await api.get_json("/api/core/v2/namespaces/default/events/big-agent/big-output")
            return event if event and event["check"].get("output") else None

        event = await wait_until("the 2 MB result stored", stored, node.log, agent.log)
        assert len(event["check"]["output"]) == size
        assert set(event["check"]["output"]) == {"x"}
        assert "sensu.io/output_truncated_bytes" not in (event["metadata"].get("labels") or {})
    assert "closing agent connection" not in node.log()
