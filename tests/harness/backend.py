"""Start, wait for, kill and restart real ``sensu-backend`` processes.

Each node gets its own loopback address (127.0.0.1, .2, .3 ... as separate
hosts), free ports and a state dir under the test's ``tmp_path``. Everything
waits on conditions under a deadline; nothing sleeps to "let things settle".
A process's log is attached to the failure when a wait times out.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import httpx
import trio

REPO = Path(__file__).resolve().parents[2]


async def run_store_script(script: str, *args: str, timeout: float = 120.0) -> Any:
    """Run ``script`` (real stores, in a child process as in a node) and return its last JSON line.

    For store tests that need pysyncobj's own process-wide state (its tick
    thread, its module patches, forked dump writers) kept out of the test
    process. ``timeout`` is a hang guard; a non-zero exit fails with stderr.
    """
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with trio.fail_after(timeout):
        proc = await trio.run_process([sys.executable, "-c", script, *args], capture_stdout=True,
                                      capture_stderr=True, check=False, cwd=str(REPO), env=env)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-5000:]
    return json.loads(proc.stdout.decode().strip().splitlines()[-1])


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


_handed_out: set[tuple[str, int]] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, for a process to bind soon.

    Picked below the kernel's ephemeral range: outgoing connections (Raft
    peers, agents, clients) take their source ports from that range, so one
    of them could otherwise take the port between this check and the bind,
    and the process would fail to start. A port is handed out once per test
    process.
    """
    low = _ephemeral_low()
    for _ in range(500):
        port = random.randrange(max(1024, low - 12_000), low)
        if (host, port) in _handed_out:
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _handed_out.add((host, port))
        return port
    with socket.socket() as s:  # the low range is crowded: any free port
        s.bind((host, 0))
        return int(s.getsockname()[1])


class BackendProcess:
    """One ``sensu-backend start`` process."""

    def __init__(self, name: str, host: str, state_dir: Path, *, initial_cluster: str | None = None,
                 token: str = "test-cluster", extra_args: Iterable[str] = (), debug: bool = True,
                 env: dict[str, str] | None = None, command_prefix: Iterable[str] = (),
                 ports: Sequence[int] | None = None, peer_scheme: str = "http") -> None:
        self.name = name
        self.peer_scheme = peer_scheme  # https with peer TLS
        #: run the node under this command (e.g. ``strace -f -o FILE``)
        self.command_prefix = list(command_prefix)
        self.host = host
        self.state_dir = state_dir
        # a host of its own (a network namespace) has every port free: it passes Sensu's defaults
        self.api_port, self.peer_port, self.agent_port, self.debug_port, self.dashboard_port = (
            ports if ports is not None else [free_port(host) for _ in range(5)])
        self.initial_cluster = initial_cluster or f"{name}={self.peer_url}"
        self.token = token
        self.extra_args = list(extra_args)
        self.debug = debug
        self.env = env or {}
        self.proc: subprocess.Popen[bytes] | None = None
        self.stopped = False  # by the test (kill or stop), as opposed to exiting by itself
        self.log_path = state_dir.parent / f"{name}.log"
        self.state_arg: str = "new"

    @property
    def peer_url(self) -> str:
        return f"{self.peer_scheme}://{self.host}:{self.peer_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def debug_url(self) -> str:
        return f"http://{self.host}:{self.debug_port}"

    def args(self) -> list[str]:
        args = [
            sys.executable, "-m", "backend.cli", "start",
            "--state-dir", str(self.state_dir),
            "--etcd-name", self.name,
            "--etcd-initial-cluster", self.initial_cluster,
            "--etcd-initial-cluster-token", self.token,
            "--etcd-initial-cluster-state", self.state_arg,
            "--etcd-listen-peer-urls", self.peer_url,
            "--etcd-initial-advertise-peer-urls", self.peer_url,
            "--api-listen-address", f"{self.host}:{self.api_port}",
            "--agent-host", self.host,
            "--agent-port", str(self.agent_port),
            "--dashboard-host", self.host,
            "--dashboard-port", str(self.dashboard_port),
            "--log-level", "info",
        ]
        if self.debug:
            args += ["--debug", "--debug-listen-address", f"{self.host}:{self.debug_port}"]
        return args + self.extra_args

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.stopped = False
        env = {**os.environ, "PYTHONPATH": str(REPO), **self.env}
        env.pop("SENSU_BACKEND_CONFIG_FILE", None)
        log = open(self.log_path, "ab")
        log.write(f"\n===== start {' '.join(self.args()[3:])}\n".encode())
        log.flush()
        self.proc = subprocess.Popen([*self.command_prefix, *self.args()], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
        log.close()

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        self.stopped = True
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not stop in time."""
        self.stopped = True
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

    async def _debug_answers(self, client: httpx.AsyncClient) -> bool:
        try:
            await client.get(f"{self.debug_url}/", timeout=2.0)
        except httpx.HTTPError:
            return False
        return True

    async def health(self, client: httpx.AsyncClient) -> tuple[int, dict[str, Any]] | None:
        try:
            r = await client.get(f"{self.api_url}/health", timeout=2.0)
        except httpx.HTTPError:
            return None
        return r.status_code, r.json()

    async def wait_healthy(self, client: httpx.AsyncClient, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until /health answers 200 (this node sees a leader and a quorum), and, with
        ``--debug``, until the debug listener answers too: the node starts it after the API, so
        a test going straight to the debug store could otherwise meet a refused connection."""
        try:
            with trio.fail_after(timeout):
                while True:
                    if self.proc is not None and self.proc.poll() is not None:
                        raise AssertionError(f"{self.name} exited with {self.proc.returncode}:\n{self.log()}")
                    got = await self.health(client)
                    if got is not None and got[0] == 200 and (not self.debug or await self._debug_answers(client)):
                        return got[1]
                    await trio.sleep(0.05)
        except trio.TooSlowError:
            raise AssertionError(f"{self.name} not healthy within {timeout}s:\n{self.log()}") from None


@dataclass
class Cluster:
    nodes: list[BackendProcess]
    client: httpx.AsyncClient
    extra: dict[str, Any] = field(default_factory=dict)

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        """Every started node that the test did not stop is healthy; one that exited fails with its log."""
        for node in self.nodes:
            if node.proc is not None and not node.stopped:
                await node.wait_healthy(self.client, timeout)

    async def leader(self, timeout: float = 15.0) -> BackendProcess:
        """The node every running node agrees leads."""
        with trio.fail_after(timeout):
            while True:
                names = set()
                for node in self.nodes:
                    if not node.running:
                        continue
                    got = await node.health(self.client)
                    names.add(got[1].get("Leader") if got and got[0] == 200 else None)
                running = {n.name for n in self.nodes if n.running}
                if len(names) == 1 and None not in names and names <= running:
                    name = names.pop()
                    return next(n for n in self.nodes if n.name == name)
                await trio.sleep(0.05)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def logs(self) -> str:
        return "\n".join(f"----- {n.name}\n{n.log()}" for n in self.nodes)


def make_cluster_nodes(tmp_path: Path, count: int = 3, *, token: str = "test-cluster",
                       extra_args: Iterable[str] = (), peer_scheme: str = "http") -> list[BackendProcess]:
    nodes = [
        BackendProcess(f"backend-{i}", f"127.0.0.{i + 1}", tmp_path / f"backend-{i}", token=token,
                       extra_args=extra_args, peer_scheme=peer_scheme)
        for i in range(count)
    ]
    initial = ",".join(f"{n.name}={n.peer_url}" for n in nodes)
    for n in nodes:
        n.initial_cluster = initial
    return nodes


async def start_cluster(tmp_path: Path, client: httpx.AsyncClient, count: int = 3, **kw: Any) -> Cluster:
    nodes = make_cluster_nodes(tmp_path, count, **kw)
    for n in nodes:
        n.start()
    cluster = Cluster(nodes, client)
    await cluster.wait_healthy(45.0)
    return cluster
