"""Screenshots of every dashboard view (``make screenshots`` → docs/screenshots/*.png).

Starts a 3-node cluster on 127.0.0.1-3 and one ``sensu-agent`` with the test harness
(tests/harness), gives it something to show (check results through the agent's local
API, a few proxy entities' events, check definitions, a silence, 5,000 events in a
``bulk`` namespace), then drives Debian's chromium through each view. Everything runs
on loopback; every process is stopped at the end.

    python scripts/screenshots.py [OUTPUT_DIR]      # default docs/screenshots
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness.agent import ADMIN, AgentProcess, Api, init_backend, ns_path, wait_until  # noqa: E402
from tests.harness.backend import BackendProcess, make_cluster_nodes  # noqa: E402
from tests.harness.browser import chromium_missing, login, new_page, open_browser  # noqa: E402

AGENT = "app-01"
BULK_NS = "bulk"
BULK_EVENTS = 5000

#: (check, statuses in order, last output) posted through the agent's local API.
AGENT_RESULTS = [
    ("http", [0, 0, 0, 2, 2, 0, 0, 2, 2, 2], "CRITICAL - connection refused on 127.0.0.1:443\n"),
    ("disk", [0, 0, 1, 1, 1], "DISK WARNING - /var is 86% full (threshold 80%)\n"),
    ("log-scan", [0, 2], "ERROR found in access.log: GET /?q=<script>alert(1)</script> HTTP/1.1\n"),
    ("ntp", [0, 0, 0], "NTP OK: offset 0.0021 s\n"),
    ("memory", [0, 0, 0, 0], "MEM OK - 41% used\n"),
]
#: (entity, check, status, output, subscriptions) posted to the REST API as proxy events.
PROXY_EVENTS = [
    ("db-01", "postgres", 0, "POSTGRES OK - 12 connections\n", ["linux", "db"]),
    ("db-01", "disk", 1, "DISK WARNING - /var/lib/postgresql is 83% full\n", ["linux", "db"]),
    ("db-02", "postgres", 2, "POSTGRES CRITICAL - replication lag 412 s\n", ["linux", "db"]),
    ("cache-01", "redis", 3, "UNKNOWN - no reply to PING within 5 s\n", ["linux", "cache"]),
    ("lb-01", "haproxy", 0, "HAPROXY OK - 4/4 backends up\n", ["linux", "lb"]),
]
CHECKS = [
    ("http", "check-http -u https://localhost/", ["web"], 30),
    ("disk", "check-disk -w 80 -c 90", ["linux"], 60),
    ("log-scan", "check-log -f /var/log/nginx/access.log -q ERROR", ["web"], 60),
    ("ntp", "check-ntp -H pool.ntp.org", ["linux"], 300),
    ("memory", "check-memory -w 80 -c 95", ["linux"], 60),
    ("postgres", "check-postgres --replication", ["db"], 60),
    ("redis", "check-redis -H 127.0.0.1", ["cache"], 30),
]


async def seed(nodes: list[BackendProcess], agent: AgentProcess) -> None:
    async with httpx.AsyncClient(timeout=30.0) as client:
        for node in nodes:
            await node.wait_healthy(client, 45.0)
        await init_backend(nodes[0])
        agent.start()
        api = Api(client, nodes[:1])
        logs = (agent.log, nodes[0].log)
        await wait_until("the agent's keepalive", lambda: api.get_json(ns_path("events", AGENT, "keepalive")), *logs)
        for name, command, subscriptions, interval in CHECKS:
            body = {"metadata": {"name": name, "namespace": "default"}, "command": command, "interval": interval,
                    "subscriptions": subscriptions, "publish": False, "timeout": 10, "handlers": ["slack"]}
            r = await api.request("PUT", ns_path("checks", name), json=body)
            assert r is not None and r.status_code in (200, 201), r
        for check, statuses, output in AGENT_RESULTS:
            for i, status in enumerate(statuses):
                text = output if i == len(statuses) - 1 else f"run {i}\n"
                r = await client.post(f"{agent.api_url}/events", json={
                    "check": {"metadata": {"name": check}, "status": status, "output": text, "interval": 60,
                              "command": dict((c[0], c[1]) for c in CHECKS)[check]}})
                assert r.status_code == 202, r.text

                async def stored(n: int = i + 1, check: str = check) -> bool:
                    event = await api.get_json(ns_path("events", AGENT, check))
                    return bool(event) and len(event["check"]["history"]) >= n

                await wait_until(f"result {i} of {check}", stored, *logs)
        for entity, check, status, output, subscriptions in PROXY_EVENTS:
            body = {"entity": {"metadata": {"name": entity, "namespace": "default"}, "entity_class": "proxy",
                               "subscriptions": subscriptions},
                    "check": {"metadata": {"name": check, "namespace": "default"}, "status": status,
                              "output": output, "interval": 60}}
            r = await api.request("POST", ns_path("events"), json=body)
            assert r is not None and r.status_code == 201, r
        silence = {"metadata": {"name": "entity:cache-01:redis", "namespace": "default"},
                   "subscription": "entity:cache-01", "check": "redis", "reason": "Redis 7 upgrade in progress",
                   "expire": 14400, "expire_on_resolve": True}
        r = await api.request("PUT", ns_path("silenced", "entity%3Acache-01%3Aredis"), json=silence)
        assert r is not None and r.status_code == 201, r
        for ns in ("staging", BULK_NS):
            r = await api.request("PUT", f"/api/core/v2/namespaces/{ns}", json={"name": ns})
            assert r is not None and r.status_code in (200, 201), r
        await seed_bulk(client, api)


async def seed_bulk(client: httpx.AsyncClient, api: Api) -> None:
    limit = trio.Semaphore(16)

    async def post(i: int) -> None:
        body = {"entity": {"metadata": {"name": f"node-{i // 10:04d}", "namespace": BULK_NS}, "entity_class": "proxy"},
                "check": {"metadata": {"name": f"check-{i % 10}", "namespace": BULK_NS}, "status": (i * 7) % 4,
                          "output": f"synthetic result {i}\n", "interval": 60}}
        async with limit:
            r = await api.request("POST", f"/api/core/v2/namespaces/{BULK_NS}/events", json=body)
        assert r is not None and r.status_code == 201, r

    with trio.fail_after(300):
        async with trio.open_nursery() as nursery:
            for i in range(BULK_EVENTS):
                nursery.start_soon(post, i)


def shoot(url: str, out: Path) -> list[Path]:
    saved: list[Path] = []
    errors: list[str] = []

    with open_browser() as browser:
        page = new_page(browser, errors=errors)

        def save(name: str, *, full: bool = False) -> None:
            page.mouse.move(0, 0)
            time.sleep(0.3)  # let the last paint settle (no request is pending at this point)
            path = out / f"{name}.png"
            page.screenshot(path=str(path), full_page=full)
            saved.append(path)

        page.goto(url)
        page.get_by_label("Username").fill(ADMIN[0])
        page.get_by_label("Password").fill("not-the-password")
        page.get_by_role("button", name="Log in").click()
        page.get_by_role("alert").wait_for()
        save("login")

        login(page, url, *ADMIN)
        page.locator('tr.event-row[data-check="http"]').wait_for()
        save("events")

        page.locator('tr.event-row[data-entity="app-01"][data-check="disk"]').get_by_role(
            "button", name="Silence app-01/disk").click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_label("Reason").fill("Cleaning up old logs")
        dialog.get_by_label("Clear when the check resolves").check()
        save("silence-dialog")
        dialog.get_by_role("button", name="Silence", exact=True).click()
        page.locator('tr.event-row[data-check="disk"] .marker-silenced').first.wait_for()

        page.locator('tr.event-row[data-entity="app-01"][data-check="http"]').get_by_role("link").click()
        page.locator(".timeline .tick").first.wait_for()
        save("event-detail", full=True)

        for name, marker in (("Entities", 'tr[data-entity="app-01"]'), ("Checks", 'tr[data-check="http"]'),
                             ("Silences", 'tr[data-silence="entity:cache-01:redis"]'),
                             ("Cluster", 'tr[data-member="backend-2"]')):
            page.get_by_role("link", name=name, exact=True).click()
            page.locator(marker).wait_for()
            save(name.lower())

        page.get_by_role("link", name="Events", exact=True).click()
        page.get_by_label("Namespace").select_option(BULK_NS)
        page.get_by_text(f"1–100 of {BULK_EVENTS} events").wait_for()
        page.keyboard.press("n")
        page.get_by_text(f"101–200 of {BULK_EVENTS} events").wait_for()
        save("events-paged")
        page.context.close()
    if errors:
        raise SystemExit(f"errors in the page: {errors}")
    return saved


def main(argv: list[str]) -> int:
    out = Path(argv[1] if len(argv) > 1 else REPO / "docs" / "screenshots").resolve()
    missing = chromium_missing()
    if missing:
        print(f"screenshots: {missing}", file=sys.stderr)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sensu-screens-") as tmp:
        nodes = make_cluster_nodes(Path(tmp), 3)
        for node in nodes:
            node.debug = False
        agent = AgentProcess(Path(tmp), [f"ws://{nodes[0].host}:{nodes[0].agent_port}"], name=AGENT,
                             subscriptions=("linux", "web"))
        try:
            for node in nodes:
                node.start()
            trio.run(seed, nodes, agent)
            saved = shoot(f"http://{nodes[0].host}:{nodes[0].dashboard_port}/", out)
        finally:
            agent.stop()
            for node in nodes:
                node.stop()
    for path in saved:
        print(path.relative_to(REPO) if path.is_relative_to(REPO) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
