"""The web dashboard on a real backend with a real agent, in headless Chromium.

One backend and one ``sensu-agent`` serve the whole module. The agent's events come
from its local API (``POST /events``), which makes them deterministic (one of them
carries markup in its output). Browser tests are plain sync tests driving
Playwright's sync API against Debian's ``chromium``; every Playwright wait is bounded
(tests/harness/browser.py) and every test has a pytest-timeout. The last tests
check the dashboard listener without a browser: assets, headers, forwarding to the
REST API, TLS and a busy port.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.harness.agent import ADMIN, AgentProcess, Api, init_backend, ns_path, wait_until
from tests.harness.backend import REPO, BackendProcess, free_port
from tests.harness.browser import chromium_missing, login, new_page, open_browser

pytestmark = pytest.mark.e2e

AGENT_NAME = "dash-agent"
XSS_CHECK = "dash-markup"
XSS_OUTPUT = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2"><b>bold</b> DISK CRITICAL'
BULK_NS = "bulk"
BULK_EVENTS = 5000


@dataclass
class Stack:
    node: BackendProcess
    agent: AgentProcess

    @property
    def url(self) -> str:
        return f"http://{self.node.host}:{self.node.dashboard_port}/"

    def logs(self) -> str:
        return f"----- backend\n{self.node.log()}\n----- agent\n{self.agent.log()}"

    # -- sync REST helpers for the browser tests -------------------------------------------------

    def token(self) -> str:
        r = httpx.get(f"{self.node.api_url}/auth", auth=ADMIN, timeout=10)
        r.raise_for_status()
        return str(r.json()["access_token"])

    def api(self, method: str, path: str, **kw: Any) -> httpx.Response:
        return httpx.request(method, f"{self.node.api_url}{path}", timeout=10,
                             headers={"Authorization": f"Bearer {self.token()}"}, **kw)

    def post_result(self, check: str, status: int, output: str) -> None:
        """A check result through the agent's local API (it reaches the backend over the agent's session)."""
        r = httpx.post(f"{self.agent.api_url}/events", timeout=10,
                       json={"check": {"metadata": {"name": check}, "status": status, "output": output}})
        assert r.status_code == 202, r.text

    def wait_event(self, check: str, ok: Callable[[dict[str, Any]], bool] = lambda e: True,
                   timeout: float = 30.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            r = self.api("GET", ns_path("events", AGENT_NAME, check))
            if r.status_code == 200 and ok(r.json()):
                return dict(r.json())
            time.sleep(0.1)
        raise AssertionError(f"event {AGENT_NAME}/{check} not stored as expected\n{self.logs()}")


async def _prepare(stack: Stack) -> None:
    async with httpx.AsyncClient(timeout=10.0) as client:
        await stack.node.wait_healthy(client)
        await init_backend(stack.node)
        stack.agent.start()
        api = Api(client, [stack.node])
        logs = (stack.agent.log, stack.node.log)
        await wait_until("the agent's keepalive", lambda: api.get_json(ns_path("events", AGENT_NAME, "keepalive")), *logs)
        r = await client.post(f"{stack.agent.api_url}/events", json={
            "check": {"metadata": {"name": XSS_CHECK}, "status": 2, "output": XSS_OUTPUT}})
        assert r.status_code == 202, r.text
        await wait_until("the agent's markup event", lambda: api.get_json(ns_path("events", AGENT_NAME, XSS_CHECK)), *logs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("dashboard")
    node = BackendProcess("default", "127.0.0.1", tmp / "node", debug=False)
    agent = AgentProcess(tmp, [f"ws://{node.host}:{node.agent_port}"], name=AGENT_NAME,
                         subscriptions=("linux", "dashboard"))
    stack = Stack(node, agent)
    node.start()
    try:
        trio.run(_prepare, stack)
        yield stack
    finally:
        agent.stop()
        node.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    missing = chromium_missing()
    if missing:
        pytest.fail(missing)
    with open_browser() as b:
        yield b


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    errors: list[str] = []
    p = new_page(browser, errors=errors)
    try:
        yield p
    finally:
        p.context.close()
    assert errors == [], f"uncaught errors in the page: {errors}"


def event_row(page: Any, entity: str, check: str) -> Any:
    return page.locator(f'tr.event-row[data-entity="{entity}"][data-check="{check}"]')


# ---- browser ------------------------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_wrong_password_shows_an_error(stack: Stack, page: Any) -> None:
    page.goto(stack.url)
    page.get_by_label("Username").fill(ADMIN[0])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "Wrong username or password."
    assert page.get_by_label("Password").input_value() == ""  # the typed password is not kept
    assert page.locator("#logout").count() == 0


@pytest.mark.timeout(120)
def test_agent_event_silence_clear_and_logout(stack: Stack, page: Any) -> None:
    login(page, stack.url, *ADMIN)
    row = event_row(page, AGENT_NAME, XSS_CHECK)
    row.wait_for()
    # the agent's output is shown as text: no element from it, no script run
    output = row.locator("td.output")
    assert output.inner_text() == XSS_OUTPUT
    assert output.locator("script, img, b").count() == 0
    assert page.evaluate("window.__xss") is None
    assert row.locator(".badge").inner_text() == "Critical"
    assert row.locator(".marker-silenced").count() == 0

    # silence the entity+check with a reason, an expiry and expire-on-resolve
    row.get_by_role("button", name=f"Silence {AGENT_NAME}/{XSS_CHECK}").click()
    dialog = page.get_by_role("dialog")
    assert dialog.get_by_label(f"Entity {AGENT_NAME} and check {XSS_CHECK}").is_checked()
    dialog.get_by_label("Reason").fill("disk swap <b>tonight</b>")
    dialog.get_by_label("Expires after").select_option(label="4 hours")
    dialog.get_by_label("Clear when the check resolves").check()
    dialog.get_by_role("button", name="Silence", exact=True).click()
    row.locator(".marker-silenced").wait_for()
    name = f"entity:{AGENT_NAME}:{XSS_CHECK}"
    stored = stack.api("GET", ns_path("silenced", name.replace(":", "%3A"))).json()
    assert (stored["subscription"], stored["check"], stored["reason"]) == (
        f"entity:{AGENT_NAME}", XSS_CHECK, "disk swap <b>tonight</b>")
    assert (stored["expire"], stored["expire_on_resolve"], stored["creator"]) == (14400, True, ADMIN[0])

    # the silences view lists it, the reason as text
    page.get_by_role("link", name="Silences", exact=True).click()
    listed = page.locator(f'tr[data-silence="{name}"]')
    listed.wait_for()
    assert "disk swap <b>tonight</b>" in listed.inner_text()
    page.get_by_role("link", name="Events", exact=True).click()

    # filter silenced events, then clear the silence from the row
    page.get_by_label("Silenced", exact=True).select_option(label="Silenced")
    row.wait_for()
    row.get_by_role("button", name=f"Clear silence of {AGENT_NAME}/{XSS_CHECK}").click()
    confirm = page.get_by_role("dialog")
    assert name in confirm.inner_text()
    confirm.get_by_role("button", name="Clear silence", exact=True).click()
    row.wait_for(state="detached")  # no longer silenced: filtered out
    page.get_by_label("Silenced", exact=True).select_option(label="All")
    row.wait_for()
    assert row.locator(".marker-silenced").count() == 0
    assert stack.api("GET", ns_path("silenced", name.replace(":", "%3A"))).status_code == 404

    # nothing of the session is stored in the browser
    assert page.evaluate("[localStorage.length, sessionStorage.length, document.cookie]") == [0, 0, ""]
    page.get_by_role("button", name="Log out").click()
    page.get_by_role("button", name="Log in").wait_for()
    assert page.get_by_role("status").inner_text() == "You are logged out."
    assert page.locator("#logout").count() == 0


@pytest.mark.timeout(120)
def test_events_refresh_live_without_reload(stack: Stack, page: Any) -> None:
    login(page, stack.url, *ADMIN)
    event_row(page, AGENT_NAME, XSS_CHECK).wait_for()
    page.evaluate("window.__sameDocument = true")
    stack.post_result("dash-live", 1, "WARNING: appeared while watching")
    row = event_row(page, AGENT_NAME, "dash-live")
    row.wait_for()
    assert row.locator(".badge").inner_text() == "Warning"
    stack.post_result("dash-live", 2, "CRITICAL: got worse")
    page.wait_for_function(
        """() => document.querySelector('tr.event-row[data-check="dash-live"] .badge')?.textContent === 'Critical'""")
    # worst first: the critical rows come before any warning or OK row
    ranks = page.locator("tr.event-row .badge").all_inner_texts()
    order = {"Critical": 0, "Warning": 1, "OK": 3}
    assert [order.get(r, 2) for r in ranks] == sorted(order.get(r, 2) for r in ranks)
    assert page.evaluate("window.__sameDocument") is True


@pytest.mark.timeout(120)
def test_event_detail_shows_the_history_timeline(stack: Stack, page: Any) -> None:
    for i, status in enumerate((0, 2, 1)):
        stack.post_result("dash-history", status, f"run {i}")
        stack.wait_event("dash-history", lambda e, n=i + 1: len(e["check"]["history"]) == n)
    login(page, stack.url, *ADMIN)
    row = event_row(page, AGENT_NAME, "dash-history")
    row.get_by_role("link", name=AGENT_NAME).click()
    page.get_by_role("heading", name=f"{AGENT_NAME} / dash-history").wait_for()
    ticks = page.locator(".timeline .tick")
    ticks.first.wait_for()
    assert [t.get_attribute("class") for t in ticks.all()] == [
        "tick status-ok", "tick status-critical", "tick status-warning"]
    assert page.locator("pre.output-full").inner_text() == "run 2"
    assert re.search(r"/events/dash-agent/dash-history$", page.url)
    page.get_by_role("link", name="← All events").click()
    page.locator("#filter-entity").wait_for()


@pytest.mark.timeout(120)
def test_entities_checks_cluster_views_and_namespace_switcher(stack: Stack, page: Any) -> None:
    check = {"metadata": {"name": "dash-disk", "namespace": "default"}, "command": "check-disk -w 80 -c 90",
             "subscriptions": ["linux"], "interval": 60, "publish": False, "timeout": 10, "handlers": []}
    assert stack.api("PUT", ns_path("checks", "dash-disk"), json=check).status_code in (200, 201)
    assert stack.api("PUT", "/api/core/v2/namespaces/staging", json={"name": "staging"}).status_code in (200, 201)
    login(page, stack.url, *ADMIN)
    # the events view is where login lands; only then go elsewhere (a click during the landing
    # could be overtaken by it, and event rows also carry data-entity)
    page.get_by_role("heading", name="Events", exact=True).wait_for()

    page.get_by_role("link", name="Entities", exact=True).click()
    page.get_by_role("heading", name="Entities", exact=True).wait_for()
    entity = page.locator(f'tr[data-entity="{AGENT_NAME}"]:not(.event-row)')
    entity.wait_for()
    text = entity.inner_text()
    assert "linux, dashboard" in text and "agent" in text
    assert entity.locator(".badge").inner_text() == "OK"  # keepalive

    page.get_by_role("link", name="Checks", exact=True).click()
    row = page.locator('tr[data-check="dash-disk"]')
    row.wait_for()
    assert "check-disk -w 80 -c 90" in row.inner_text() and "every 60 s" in row.inner_text()

    page.get_by_role("link", name="Cluster", exact=True).click()
    member = page.locator('tr[data-member="default"]')
    member.wait_for()
    assert "Healthy" in member.inner_text() and "Leader" in member.inner_text()
    assert stack.node.peer_url in member.inner_text()

    page.get_by_role("link", name="Events", exact=True).click()
    event_row(page, AGENT_NAME, XSS_CHECK).wait_for()
    page.get_by_label("Namespace").select_option("staging")
    page.get_by_text("No events in this namespace.").wait_for()
    page.get_by_label("Namespace").select_option("default")
    event_row(page, AGENT_NAME, XSS_CHECK).wait_for()


@pytest.mark.timeout(120)
def test_keyboard_navigation(stack: Stack, page: Any) -> None:
    login(page, stack.url, *ADMIN)
    event_row(page, AGENT_NAME, XSS_CHECK).wait_for()
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "filter-entity"
    page.keyboard.type(AGENT_NAME)
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    assert page.evaluate("document.activeElement.classList.contains('row-link')")
    page.keyboard.press("Enter")
    page.locator(".timeline, .notice").first.wait_for()
    assert "/events/dash-agent/" in page.url
    page.keyboard.press("2")
    page.get_by_role("heading", name="Entities", exact=True).wait_for()
    page.keyboard.press("5")
    page.get_by_role("heading", name="Cluster", exact=True).wait_for()
    page.keyboard.press("1")
    # a dialog opened from the keyboard traps focus, closes with Escape and gives focus back
    silence = event_row(page, AGENT_NAME, XSS_CHECK).get_by_role("button", name=f"Silence {AGENT_NAME}/{XSS_CHECK}")
    silence.focus()
    page.keyboard.press("Enter")
    page.get_by_role("dialog").wait_for()
    assert page.evaluate("document.activeElement.closest('dialog') !== null")
    page.keyboard.press("Escape")
    page.get_by_role("dialog").wait_for(state="detached")
    page.wait_for_function("document.activeElement?.dataset.focusKey === 'silence:' + "
                           f"'{AGENT_NAME}/{XSS_CHECK}'")
    # every control the events view offers is reachable with Tab and shows where focus is
    page.locator("#filter-status").focus()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "filter-entity"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")


async def _post_bulk(stack: Stack, count: int) -> None:
    async with httpx.AsyncClient(timeout=30.0) as client:
        token = (await client.get(f"{stack.node.api_url}/auth", auth=ADMIN)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        r = await client.put(f"{stack.node.api_url}/api/core/v2/namespaces/{BULK_NS}", json={"name": BULK_NS},
                             headers=headers)
        assert r.status_code in (200, 201), r.text
        limit = trio.Semaphore(16)

        async def post(i: int) -> None:
            body = {"entity": {"metadata": {"name": f"host-{i // 10:04d}", "namespace": BULK_NS},
                               "entity_class": "proxy"},
                    "check": {"metadata": {"name": f"check-{i % 10}", "namespace": BULK_NS}, "status": i % 4,
                              "output": f"output of {i}", "interval": 60}}
            async with limit:
                r = await client.post(f"{stack.node.api_url}/api/core/v2/namespaces/{BULK_NS}/events", json=body,
                                      headers=headers)
            assert r.status_code == 201, r.text

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for i in range(count):
                    nursery.start_soon(post, i)


@pytest.mark.timeout(240)
def test_five_thousand_events_are_paged(stack: Stack, page: Any) -> None:
    trio.run(_post_bulk, stack, BULK_EVENTS)
    login(page, stack.url, *ADMIN)
    page.get_by_label("Namespace").select_option(BULK_NS)
    started = time.monotonic()
    page.get_by_text(f"1–100 of {BULK_EVENTS} events").wait_for()
    shown = time.monotonic() - started
    assert page.locator("tr.event-row").count() == 100
    # worst first across all 5,000: the first page is all critical (status 2: i % 4 == 2)
    assert set(page.locator("tr.event-row .badge").all_inner_texts()) == {"Critical"}
    page.keyboard.press("n")
    page.get_by_text(f"101–200 of {BULK_EVENTS} events").wait_for()
    page.get_by_label("Status", exact=True).select_option(label="Warning")
    page.get_by_text(f"1–100 of {BULK_EVENTS // 4} events").wait_for()
    page.keyboard.press("/")
    page.keyboard.type("host-0042")
    page.get_by_text("1–3 of 3 events").wait_for()  # host-0042 has checks 0-9; i % 4 == 1 for three of them
    print(f"\n5,000 events: first page shown {shown:.2f} s after switching namespace")


# ---- the listener without a browser --------------------------------------------------------------


async def test_assets_and_security_headers(stack: Stack, client: httpx.AsyncClient) -> None:
    base = stack.url.rstrip("/")
    index = await client.get(f"{base}/")
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    csp = index.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
    assert index.headers["x-content-type-options"] == "nosniff"
    assert index.headers["x-frame-options"] == "DENY"
    # every asset the page names is served here (no other origin)
    refs = re.findall(r'(?:src|href)="([^"]+)"', index.text)
    assert refs and all(ref.startswith("/static/") for ref in refs)
    for ref in refs:
        r = await client.get(f"{base}{ref}")
        assert r.status_code == 200, ref
    script = await client.get(f"{base}/static/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    again = await client.get(f"{base}/static/app.js", headers={"If-None-Match": script.headers["etag"]})
    assert again.status_code == 304
    for path in ("/nope", "/static/", "/static/../api/dashboard/__init__.py", "/index.html"):
        r = await client.get(f"{base}{path}")
        assert r.status_code == 404, path
        assert r.headers["x-frame-options"] == "DENY"
    assert (await client.post(f"{base}/", content=b"x")).status_code == 405


async def test_rest_api_is_forwarded(stack: Stack, client: httpx.AsyncClient) -> None:
    base = stack.url.rstrip("/")
    bad = await client.get(f"{base}/auth", auth=(ADMIN[0], "wrong"))
    assert bad.status_code == 401 and "www-authenticate" not in bad.headers
    auth = await client.get(f"{base}/auth", auth=ADMIN)
    assert auth.status_code == 200 and auth.headers["cache-control"] == "no-store"
    tokens = auth.json()
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    # a token from the dashboard port works on the API port and the other way round
    direct = await client.get(f"{stack.node.api_url}{ns_path('events', AGENT_NAME, XSS_CHECK)}", headers=headers)
    via = await client.get(f"{base}{ns_path('events', AGENT_NAME, XSS_CHECK)}", headers=headers)
    assert direct.status_code == via.status_code == 200 and via.json() == direct.json()
    assert via.headers.get("etag") == direct.headers.get("etag")
    assert (await client.get(f"{base}/api/core/v2/namespaces/default/events")).status_code == 401
    # percent-encoded names reach the router undecoded (api.md §1.1)
    silence = {"metadata": {"name": "dash:sub", "namespace": "default"}, "subscription": "dash", "check": "sub",
               "expire": 60}
    put = await client.put(f"{base}{ns_path('silenced', 'dash%3Asub')}", json=silence, headers=headers)
    assert put.status_code == 201, put.text
    got = await client.get(f"{stack.node.api_url}{ns_path('silenced', 'dash%3Asub')}", headers=headers)
    assert got.status_code == 200 and got.json()["subscription"] == "dash"
    assert (await client.delete(f"{base}{ns_path('silenced', 'dash%3Asub')}", headers=headers)).status_code == 204
    health = await client.get(f"{base}/health")
    assert health.status_code == 200 and health.json()["Leader"] == "default"
    assert (await client.get(f"{base}/version")).json()["sensu_backend"]
    refreshed = await client.post(f"{base}/auth/token", json={"refresh_token": tokens["refresh_token"]},
                                  headers=headers)
    assert refreshed.status_code == 200
    new = refreshed.json()
    out = await client.post(f"{base}/auth/logout", json={"refresh_token": new["refresh_token"]},
                            headers={"Authorization": f"Bearer {new['access_token']}"})
    assert out.status_code == 200


async def test_dashboard_over_tls(tmp_path: Path) -> None:
    from .test_api_tls import make_certificates

    import ssl

    host = "127.0.0.1"
    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = await make_certificates(certs, host)
    node = BackendProcess("default", host, tmp_path / "node", debug=False,
                          extra_args=["--dashboard-cert-file", str(cert), "--dashboard-key-file", str(key)])
    node.start()
    try:
        async with httpx.AsyncClient(timeout=10.0) as plain:
            await node.wait_healthy(plain)  # the API stays plain HTTP
        async with httpx.AsyncClient(timeout=10.0, verify=ssl.create_default_context(cafile=str(ca))) as tls:
            r = await tls.get(f"https://{host}:{node.dashboard_port}/")
            assert r.status_code == 200 and r.headers["x-frame-options"] == "DENY"
            assert (await tls.get(f"https://{host}:{node.dashboard_port}/health")).status_code == 200
    finally:
        node.stop()


async def test_dashboard_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = [sys.executable, "-m", "backend.cli", "start", "--state-dir", str(tmp_path / "s"),
                "--agent-host", "127.0.0.1", "--agent-port", str(free_port()),
                "--api-listen-address", f"127.0.0.1:{free_port()}",
                "--dashboard-host", "127.0.0.1", "--dashboard-port", str(port),
                "--etcd-initial-cluster", f"default=http://127.0.0.1:{free_port()}"]
        result = await trio.to_thread.run_sync(lambda: subprocess.run(
            args, capture_output=True, text=True, timeout=60, cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)}))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith(f"sensu-backend: dashboard-port: cannot listen on 127.0.0.1:{port}"), result.stderr
    assert "Traceback" not in result.stderr
