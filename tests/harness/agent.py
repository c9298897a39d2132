"""A real ``sensu-agent`` process for end-to-end tests, plus the small helpers
every agent test needs: polling with a deadline, ``sensu-backend init``, and an
admin REST client that fails over between nodes.

Every wait polls under ``trio.fail_after``; every process is killed in ``finally``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Sequence

import httpx
import trio

from tests.harness.backend import REPO, BackendProcess, free_port

ADMIN = ("admin", "P@ssw0rd!")
AGENT = "agent-e2e"
WAIT = 60.0


def run_init(api_url: str, *args: str, env: dict[str, str] | None = None,
             command_prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """``sensu-backend init`` against ``api_url`` (run under ``command_prefix``); returns the finished process."""
    return subprocess.run(
        [*command_prefix, sys.executable, "-m", "backend.cli", "init", "--api-url", api_url, "--timeout", "20s",
         *args],
        capture_output=True, text=True, timeout=60, cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
    )


class AgentProcess:
    """One ``python -m agent.cli start`` process with its own cache-dir, API port and log file."""

    def __init__(self, tmp_path: Path, backend_urls: list[str], *, name: str = AGENT,
                 subscriptions: tuple[str, ...] = ("e2e",), extra_args: list[str] | None = None) -> None:
        self.name = name
        self.subscriptions = subscriptions
        self.api_port = free_port()
        self.cache_dir = tmp_path / f"{name}-cache"
        self.log_path = tmp_path / f"{name}.log"
        self.backend_urls = backend_urls
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def args(self) -> list[str]:
        args = [sys.executable, "-m", "agent.cli", "start", "--name", self.name,
                "--cache-dir", str(self.cache_dir), "--api-port", str(self.api_port),
                "--subscriptions", ",".join(self.subscriptions), "--log-level", "debug",
                "--retry-min", "100ms", "--retry-max", "1s", "--backend-heartbeat-interval", "1",
                "--backend-heartbeat-timeout", "3"]
        for url in self.backend_urls:
            args += ["--backend-url", url]
        return args + self.extra_args

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("SENSU_CONFIG_FILE", None)
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== start {' '.join(self.args()[3:])}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.args(), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-20000:]
        except OSError:
            return ""

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    pass
        return records

    def connected_backend(self) -> str | None:
        """The backend URL of the last ``connected to backend`` log line."""
        urls = [r.get("backend") for r in self.log_records() if r.get("msg") == "connected to backend"]
        return urls[-1] if urls else None

    def connection_count(self) -> int:
        return sum(1 for r in self.log_records() if r.get("msg") == "connected to backend")

    async def get(self, client: httpx.AsyncClient, path: str) -> httpx.Response | None:
        try:
            return await client.get(f"{self.api_url}{path}", timeout=2.0)
        except httpx.HTTPError:
            return None


@asynccontextmanager
async def running_agent(agent: AgentProcess) -> AsyncIterator[AgentProcess]:
    agent.start()
    try:
        yield agent
    finally:
        agent.stop()


async def wait_until(what: str, check: Callable[[], Any], *logs: Callable[[], str], timeout: float = WAIT) -> Any:
    """Poll the async or sync ``check`` until it returns something truthy; fail with the logs attached."""
    try:
        with trio.fail_after(timeout):
            while True:
                result = check()
                if hasattr(result, "__await__"):
                    result = await result
                if result:
                    return result
                await trio.sleep(0.1)
    except trio.TooSlowError:
        raise AssertionError(f"timed out waiting for {what}\n" + "\n".join(log() for log in logs)) from None


async def init_backend(node: BackendProcess) -> None:
    result = await trio.to_thread.run_sync(lambda: run_init(
        node.api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
    assert result.returncode == 0, result.stderr


@asynccontextmanager
async def initialized_node(tmp_path: Path, client: httpx.AsyncClient,
                           extra_args: Sequence[str] = ()) -> AsyncIterator[BackendProcess]:
    """One ``sensu-backend start`` on 127.0.0.1, healthy and initialized; stopped on exit."""
    proc = BackendProcess("default", "127.0.0.1", tmp_path / "node", extra_args=list(extra_args))
    proc.start()
    try:
        await proc.wait_healthy(client)
        await init_backend(proc)
        yield proc
    finally:
        proc.stop()


class Api:
    """The REST API of one or more nodes with an admin token; tries each node in turn."""

    def __init__(self, client: httpx.AsyncClient, nodes: list[BackendProcess]) -> None:
        self.client = client
        self.nodes = nodes
        self.tokens: dict[str, str] = {}

    async def _token(self, node: BackendProcess) -> str:
        if node.name not in self.tokens:
            r = await self.client.get(f"{node.api_url}/auth", auth=ADMIN)
            r.raise_for_status()
            self.tokens[node.name] = r.json()["access_token"]
        return self.tokens[node.name]

    async def request(self, method: str, path: str, **kw: Any) -> httpx.Response | None:
        for node in self.nodes:
            if not node.running:
                continue
            try:
                headers = {"Authorization": f"Bearer {await self._token(node)}"}
                return await self.client.request(method, f"{node.api_url}{path}", headers=headers, timeout=5.0, **kw)
            except httpx.HTTPError:
                continue
        return None

    async def get_json(self, path: str) -> dict[str, Any] | None:
        r = await self.request("GET", path)
        return r.json() if r is not None and r.status_code == 200 else None


def ns_path(*parts: str) -> str:
    return "/api/core/v2/namespaces/default/" + "/".join(parts)


async def put_resource(api: Api, kind: str, name: str, body: dict[str, Any],
                       labels: dict[str, str] | None = None) -> None:
    """PUT a namespaced core/v2 resource in ``default``; fails the test unless it is stored."""
    body = {"metadata": {"name": name, "namespace": "default", "labels": labels or {}}, **body}
    r = await api.request("PUT", ns_path(kind, name), json=body)
    assert r is not None and r.status_code in (200, 201), (kind, name, r.text if r is not None else "no node answered")


def recorder_command(path: Path) -> str:
    """A pipe handler command appending the event JSON as one line (flock keeps lines whole)."""
    return f"flock {path}.lock -c 'cat >> {path}; echo >> {path}'"


def read_events(path: Path) -> list[dict[str, Any]]:
    """The events a :func:`recorder_command` handler wrote; a line still being written is left out."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line.strip()]
