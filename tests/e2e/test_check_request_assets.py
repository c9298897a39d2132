"""Check requests carry assets as Sensu Go builds them (issue 17, point 3).

A real backend, a simulated agent (trio-websocket) that reads the
``check_request`` it is sent: ``runtime_assets`` entries select every asset
whose name starts with them, each hook gets its own asset list in
``hook_assets``, and an entry that selects nothing is logged.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.harness.agent import Api, init_backend, ns_path, put_resource, wait_until
from tests.harness.backend import BackendProcess

from .test_agents_backend import connect, keepalive_frame, next_message

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SHA = "a" * 128


async def put_asset(api: Api, name: str) -> None:
    body = {"metadata": {"name": name, "namespace": "default"}, "url": f"http://127.0.0.1:9/{name}.tar.gz",
            "sha512": SHA}
    r = await api.request("PUT", ns_path("assets", quote(name, safe="")), json=body)
    assert r is not None and r.status_code in (200, 201), r.text if r is not None else "no answer"


async def test_check_request_selects_assets_by_prefix_and_carries_hook_assets(
        single_node: BackendProcess, client: httpx.AsyncClient) -> None:
    node = single_node
    await init_backend(node)
    api = Api(client, [node])
    for name in ("sensu/slack-handler", "sensu/check-disk", "other-tools", "unrelated"):
        await put_asset(api, name)
    await put_resource(api, "hooks", "collect-ps", {"command": "ps aux", "timeout": 5,
                                                    "runtime_assets": ["other", "ghost-hook-asset"]})
    await put_resource(api, "hooks", "plain-hook", {"command": "true", "timeout": 5})
    await put_resource(api, "checks", "asset-check", {
        "command": "check-disk", "subscriptions": ["linux"], "interval": 60, "publish": False,
        "runtime_assets": ["sensu/", "ghost-asset"],
        "check_hooks": [{"critical": ["collect-ps", "plain-hook"]}],
    })
    async with connect(node, "asset-agent") as ws:
        await next_message(ws, "entity_config")
        await ws.send_message(keepalive_frame("asset-agent", 1))
        r = await api.request("POST", ns_path("checks", "asset-check", "execute"), json={"check": "asset-check"})
        assert r is not None and r.status_code == 202, r.text if r is not None else "no answer"
        request: dict[str, Any] = await next_message(ws, "check_request", timeout=30)
    assert [a["metadata"]["name"] for a in request["assets"]] == ["sensu/check-disk", "sensu/slack-handler"]
    assert sorted(h["metadata"]["name"] for h in request["hooks"]) == ["collect-ps", "plain-hook"]
    assert set(request["hook_assets"]) == {"collect-ps"}
    assert [a["metadata"]["name"] for a in request["hook_assets"]["collect-ps"]["assets"]] == ["other-tools"]
    await wait_until("the unmatched entries logged",
                     lambda: "'ghost-asset' selects no asset" in node.log()
                     and "'ghost-hook-asset' selects no asset" in node.log(), node.log)
