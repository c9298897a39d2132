"""``event-log-file`` (issue 17, point 4): every processed event is one JSON line; SIGHUP reopens.

A real backend writes the log; the test moves the file away as logrotate
would, sends SIGHUP, and the next events land in a fresh file.
"""

from __future__ import annotations

import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.harness.agent import Api, initialized_node, ns_path, wait_until
from tests.harness.backend import BackendProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
async def node(tmp_path: Path, client: httpx.AsyncClient) -> AsyncIterator[BackendProcess]:
    async with initialized_node(tmp_path, client, ["--event-log-file", str(tmp_path / "events.log"),
                                                   "--event-log-buffer-wait", "5ms"]) as proc:
        yield proc


def lines(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines()]


def checks_in(path: Path) -> set[str]:
    return {e["check"]["metadata"]["name"] for e in lines(path) if e.get("check")}


async def post(api: Api, check: str, status: int) -> None:
    body = {"entity": {"metadata": {"name": "log-entity", "namespace": "default"}, "entity_class": "proxy"},
            "check": {"metadata": {"name": check, "namespace": "default"}, "status": status,
                      "output": f"{check} says {status}", "interval": 60}}
    r = await api.request("PUT", ns_path("events", "log-entity", check), json=body)
    assert r is not None and r.status_code in (200, 201), r.text if r is not None else "no answer"


async def test_events_are_logged_as_json_lines_and_sighup_reopens_the_file(
        tmp_path: Path, node: BackendProcess, client: httpx.AsyncClient) -> None:
    api = Api(client, [node])
    log = tmp_path / "events.log"
    for i in range(3):
        await post(api, f"before-{i}", 1)
    await wait_until("three events in the log", lambda: {"before-0", "before-1", "before-2"} <= checks_in(log),
                     node.log)
    entry = next(e for e in lines(log) if e.get("check", {}).get("metadata", {}).get("name") == "before-1")
    assert entry["entity"]["metadata"]["name"] == "log-entity"
    assert entry["check"]["status"] == 1 and entry["check"]["output"] == "before-1 says 1"
    assert entry["check"]["history"]  # the processed (merged) event, not the raw input

    rotated = tmp_path / "events.log.1"
    log.rename(rotated)  # logrotate's move; the backend still holds the old file open
    assert node.proc is not None
    node.proc.send_signal(signal.SIGHUP)
    await wait_until("the SIGHUP handled", lambda: "reopening the event log" in node.log(), node.log)
    for i in range(2):
        await post(api, f"after-{i}", 0)
    await wait_until("the new file written", lambda: {"after-0", "after-1"} <= checks_in(log), node.log)
    assert checks_in(rotated) == {"before-0", "before-1", "before-2"}
    assert not checks_in(log) & checks_in(rotated)
    assert node.running  # SIGHUP does not stop the backend
