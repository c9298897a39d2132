"""The Ansible deployment in ``ansible/`` against "hosts" on this machine.

Three backends (127.0.0.1, .2, .3) and one agent (127.0.0.5) are inventory hosts
with ``ansible_connection=local``. Each gets its own root prefix
(``sensu_root: <tmp>/hosts/<name>``) for /etc/sensu, /var/lib/sensu, its
virtual environment, units and pidfiles, and free ports picked here. The
services run in ``sensu_service_mode: process`` (a detached process with a
pidfile, started and stopped by the role's control script), because there is no
systemd here; the systemd units are still rendered, and checked with
``systemd-analyze verify`` by the role where that command exists.

The package is a wheel built once per session from a copy of the sources, with
its dependencies in a wheelhouse, so each backend installs it offline
(``sensu_install_source: wheel``, ``--no-index --find-links``). The fourth
backend and the agent use ``sensu_install_source: venv`` pointing at the first
backend's environment, which keeps the run short and covers that mode too.

One scenario, in order, each step a re-run of the playbook with a changed
inventory, as an operator would do it:

1. ``site.yml`` deploys: three healthy members and one leader; the check that
   ``monitoring.yml`` created through ``sensu.sensu_go`` is readable through
   every node; the agent's entity is there.
2. ``site.yml`` again: ``changed=0`` on every host (the json callback's stats).
3. ``log-level`` changes (``backends.yml``, the cluster's own playbook, from here
   on): every backend restarts, one at a time. Meanwhile a
   poller writes and reads checks through the API (rotating over the nodes,
   moving to the next node when one fails) and a monitor samples every node's
   ``/health``: never two nodes down (not answering) at once, every acknowledged
   write readable from every node afterwards. Moments without a leader (when the
   leader itself restarts, the others answer 503 until they elected a new one)
   are counted, not forbidden. The counts are printed and saved as
   ``rolling-restart.json`` in the test's tmp dir.
4. ``backends.yml`` with a fourth host: it joins (member add through the API,
   started with ``etcd-initial-cluster-state: existing``); the others get the
   new member list in ``backend.yml`` without a restart.
5. ``backends.yml`` with that host moved to ``backends_removed``: its process is
   stopped and its member removed; the others keep running.

``ansible-lint`` runs over ``ansible/`` offline in a second test.

Every process the playbook started is stopped in ``finally`` through its
pidfile (its own process group), whatever happened.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tomllib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
import yaml

from tests.harness.backend import REPO, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ANSIBLE_DIR = REPO / "ansible"
DEPLOY_VARS = REPO / "tests" / "ansible" / "deploy_vars.yml"
VENV_BIN = Path(sys.executable).parent
ADMIN = ("admin", "P@ssw0rd!")
CHECK = "deploy-e2e-check"
AGENT = "agent1"
#: One ansible-playbook run (a loaded 2-core machine needs a few minutes for the first).
PLAYBOOK_TIMEOUT_S = 600.0
#: Building the wheel and the wheelhouse.
BUILD_TIMEOUT_S = 300.0
#: The package directories the wheel is built from: pyproject.toml's packages.find, read from
#: it so that a new top-level package cannot be left out of the deployed wheel.
PACKAGE_DIRS = tuple(pattern.rstrip("*") for pattern in tomllib.loads((REPO / "pyproject.toml").read_text())
                     ["tool"]["setuptools"]["packages"]["find"]["include"])


# --------------------------------------------------------------------------- the package


@dataclass(frozen=True)
class Package:
    """A wheel of this repository and a wheelhouse holding it and its dependencies."""

    wheel: Path
    wheelhouse: Path


def _run_build(cmd: list[str], cwd: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="session")
def package(tmp_path_factory: pytest.TempPathFactory) -> Package:
    """Build the wheel once per session, from a copy of the sources.

    The copy keeps ``build/`` and ``*.egg-info`` out of the work tree and takes the
    files as they are now, tracked or not. ``SOURCE_DATE_EPOCH`` makes the wheel's
    bytes reproducible, which the role's install stamp relies on across runs.
    """
    root = tmp_path_factory.mktemp("package")
    src = root / "src"
    src.mkdir()
    for name in PACKAGE_DIRS:
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, src / name)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    dist = root / "dist"
    _run_build([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(src)], root, env)
    wheels = sorted(dist.glob("sensu_py_backend-*.whl"))
    assert len(wheels) == 1, wheels
    wheelhouse = root / "wheelhouse"
    _run_build([sys.executable, "-m", "pip", "wheel", "-q", "-c", str(REPO / "constraints.txt"),
                "-w", str(wheelhouse), str(wheels[0])], root, env)
    return Package(wheels[0], wheelhouse)


# --------------------------------------------------------------------------- the inventory


@dataclass
class Host:
    """One inventory host: a loopback address, free ports and a root prefix."""

    name: str
    address: str
    root: Path
    ports: dict[str, int] = field(default_factory=dict)

    @classmethod
    def backend(cls, name: str, address: str, base: Path) -> Host:
        ports = {key: free_port(address) for key in ("api", "agent", "peer", "dashboard")}
        return cls(name, address, base / "hosts" / name, ports)

    @property
    def api_url(self) -> str:
        return f"http://{self.address}:{self.ports['api']}"

    @property
    def peer_url(self) -> str:
        return f"https://{self.address}:{self.ports['peer']}"  # the role turns peer TLS on by default

    def pidfile(self, service: str) -> Path:
        return self.root / "run" / "sensu" / f"{service}.pid"

    def log(self, service: str) -> str:
        try:
            return (self.root / "var" / "log" / "sensu" / f"{service}.log").read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def backend_vars(self) -> dict[str, Any]:
        return {
            "ansible_host": self.address,
            "sensu_root": str(self.root),
            "sensu_backend_api_port": self.ports["api"],
            "sensu_backend_agent_port": self.ports["agent"],
            "sensu_backend_peer_port": self.ports["peer"],
            "sensu_backend_dashboard_port": self.ports["dashboard"],
            # every "host" shares this machine: bind the host's own address, never [::]
            "sensu_backend_api_listen_host": self.address,
            "sensu_backend_agent_host": self.address,
            "sensu_backend_dashboard_host": self.address,
        }


@dataclass
class Deployment:
    """The inventory the test edits between runs, and what it needs to run the playbook."""

    base: Path
    package: Package
    backends: list[Host]
    agent: Host
    removed: list[Host] = field(default_factory=list)
    log_level: str = "warn"
    venv_hosts: set[str] = field(default_factory=set)
    runs: int = 0

    @property
    def all_hosts(self) -> list[Host]:
        return [*self.backends, *self.removed, self.agent]

    def inventory(self) -> dict[str, Any]:
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        shared_venv = str(self.backends[0].root / "opt" / "sensu" / "venv")

        def host_vars(host: Host, extra: dict[str, Any]) -> dict[str, Any]:
            out = {**extra}
            if host.name in self.venv_hosts:
                out.update(sensu_install_source="venv", sensu_venv_dir=shared_venv)
            return out

        monitoring = yaml.safe_load(DEPLOY_VARS.read_text())
        return {"all": {
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
                "sensu_service_mode": "process",
                # a test must not create system accounts: run as whoever runs pytest
                "sensu_manage_user": False,
                "sensu_user": user,
                "sensu_group": group,
                "sensu_install_source": "wheel",
                "sensu_wheel": str(self.package.wheel),
                "sensu_pip_extra_args": f"--no-index --find-links {self.package.wheelhouse}",
                "sensu_pip_constraints": str(REPO / "constraints.txt"),
                "sensu_python": getattr(sys, "_base_executable", sys.executable),
                "sensu_stop_timeout": 15,
                "sensu_backend_cluster_token": "deploy-e2e-token",
                "sensu_backend_cluster_admin_username": ADMIN[0],
                "sensu_backend_cluster_admin_password": ADMIN[1],
                "sensu_backend_log_level": self.log_level,
                "sensu_backend_health_timeout": 90,
            },
            "children": {
                "backends": {
                    "hosts": {h.name: host_vars(h, h.backend_vars()) for h in self.backends},
                    "vars": monitoring,
                },
                "backends_removed": {"hosts": {h.name: host_vars(h, h.backend_vars()) for h in self.removed}},
                "agents": {"hosts": {self.agent.name: host_vars(self.agent, {
                    "ansible_host": self.agent.address,
                    "sensu_root": str(self.agent.root),
                    "sensu_agent_subscriptions": ["linux", "deploy-e2e"],
                    "sensu_agent_api_host": self.agent.address,
                    "sensu_agent_api_port": self.agent.ports["api"],
                    "sensu_agent_keepalive_interval": 5,
                    "sensu_agent_keepalive_warning_timeout": 30,
                })}},
            },
        }}


# --------------------------------------------------------------------------- running ansible


@dataclass(frozen=True)
class PlaybookRun:
    """A finished ``ansible-playbook`` and its ``ansible.posix.json`` report."""

    label: str
    returncode: int
    stdout: str
    stderr: str
    report: dict[str, Any]
    seconds: float

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        stats: dict[str, dict[str, int]] = self.report.get("stats", {})
        return stats

    def results(self, task_name: str) -> list[tuple[str, dict[str, Any]]]:
        """``(host, result)`` for every run of the task with this name (role tasks are "role : name")."""
        out = []
        for play in self.report.get("plays", []):
            for task in play.get("tasks", []):
                name = task["task"]["name"]
                if name == task_name or name.endswith(f" : {task_name}"):
                    out.extend(task.get("hosts", {}).items())
        return out

    def failures(self) -> str:
        lines = []
        for play in self.report.get("plays", []):
            for task in play.get("tasks", []):
                for host, result in task.get("hosts", {}).items():
                    if result.get("failed") or result.get("unreachable"):
                        msg = result.get("msg", "")
                        lines.append(f"- [{host}] {task['task']['name']}: {msg if isinstance(msg, str) else json.dumps(msg)}"
                                     f"{' stderr: ' + str(result.get('stderr'))[-1500:] if result.get('stderr') else ''}")
        return "\n".join(lines) or f"stderr:\n{self.stderr[-4000:]}\nstdout:\n{self.stdout[-4000:]}"


def _ansible_env(base: Path) -> dict[str, str]:
    """No inherited ANSIBLE_*/SENSU_* settings; ansible's own state under the test's tmp dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "SENSU_"))}
    home = base / "ansible-home"
    for sub in ("local-tmp", "remote-tmp"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "local-tmp"),
        "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_FORKS": "10",
        # ansible-core refuses to start without a UTF-8 locale.
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
    })
    return env


async def run_playbook(deployment: Deployment, playbook: str, label: str) -> PlaybookRun:
    """Write the inventory as it is now and run ``playbook``; killed after PLAYBOOK_TIMEOUT_S."""
    deployment.runs += 1
    inventory = deployment.base / f"inventory-{deployment.runs}-{label}.yml"
    inventory.write_text(yaml.safe_dump(deployment.inventory(), sort_keys=False))
    cmd = [str(VENV_BIN / "ansible-playbook"), "-i", str(inventory), str(ANSIBLE_DIR / playbook)]
    started = trio.current_time()
    try:
        with trio.fail_after(PLAYBOOK_TIMEOUT_S):
            proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False,
                                          env=_ansible_env(deployment.base), cwd=str(deployment.base))
    except trio.TooSlowError:
        raise AssertionError(f"ansible-playbook {label} did not finish in {PLAYBOOK_TIMEOUT_S}s\n"
                             f"{_logs(deployment)}") from None
    stdout = proc.stdout.decode(errors="replace")
    (deployment.base / f"ansible-{deployment.runs}-{label}.json").write_text(stdout)
    start = stdout.find("{")
    try:
        report = json.loads(stdout[start:]) if start >= 0 else {}
    except ValueError:
        report = {}
    return PlaybookRun(label, proc.returncode, stdout, proc.stderr.decode(errors="replace"), report,
                       trio.current_time() - started)


def _logs(deployment: Deployment) -> str:
    parts = [f"----- {h.name} sensu-backend.log\n{h.log('sensu-backend')}" for h in [*deployment.backends, *deployment.removed]]
    parts.append(f"----- {deployment.agent.name} sensu-agent.log\n{deployment.agent.log('sensu-agent')}")
    return "\n".join(parts)[-12000:]


def assert_succeeded(run: PlaybookRun, deployment: Deployment) -> None:
    ok = run.returncode == 0 and run.stats and not any(
        s.get("failures") or s.get("unreachable") for s in run.stats.values())
    assert ok, f"ansible-playbook {run.label} failed (rc={run.returncode}):\n{run.failures()}\n\n{_logs(deployment)}"


# --------------------------------------------------------------------------- the cluster, seen from outside


async def get_token(client: httpx.AsyncClient, hosts: list[Host]) -> str:
    """An admin access token from the first node that answers."""
    errors = []
    for host in hosts:
        try:
            r = await client.get(f"{host.api_url}/auth", auth=ADMIN)
        except httpx.HTTPError as exc:
            errors.append(f"{host.name}: {exc!r}")
            continue
        if r.status_code == 200:
            token: str = r.json()["access_token"]
            return token
        errors.append(f"{host.name}: {r.status_code} {r.text[:200]}")
    raise AssertionError(f"no node gave a token: {errors}")


class AdminToken:
    """An admin access token, fetched again when it is a minute old (they live five minutes)."""

    def __init__(self, client: httpx.AsyncClient, hosts: list[Host]) -> None:
        self.client = client
        self.hosts = hosts
        self._token = ""
        self._fetched = -1e9

    async def get(self, *, fresh: bool = False) -> str:
        if fresh or trio.current_time() - self._fetched > 60:
            self._token = await get_token(self.client, self.hosts)
            self._fetched = trio.current_time()
        return self._token


async def health(client: httpx.AsyncClient, host: Host) -> tuple[int, dict[str, Any]] | None:
    try:
        r = await client.get(f"{host.api_url}/health", timeout=2.0)
    except httpx.HTTPError:
        return None
    return r.status_code, r.json()


async def wait_cluster(client: httpx.AsyncClient, hosts: list[Host], timeout: float = 60.0) -> dict[str, Any]:
    """Every host answers /health 200, lists exactly ``hosts``, all healthy, and all agree on one leader."""
    expected = sorted(h.name for h in hosts)
    last: dict[str, Any] = {}
    try:
        with trio.fail_after(timeout):
            while True:
                reports = {h.name: await health(client, h) for h in hosts}
                last = {k: v for k, v in reports.items()}
                if all(r is not None and r[0] == 200 for r in reports.values()):
                    bodies = [r[1] for r in reports.values() if r is not None]
                    leaders = {b["Leader"] for b in bodies}
                    views_ok = all(
                        sorted(m["Name"] for m in b["ClusterHealth"]) == expected
                        and all(m["Healthy"] for m in b["ClusterHealth"])
                        and sum(1 for m in b["ClusterHealth"] if m["IsLeader"]) == 1
                        for b in bodies)
                    if views_ok and len(leaders) == 1 and leaders <= set(expected):
                        return bodies[0]
                await trio.sleep(0.1)
    except trio.TooSlowError:
        raise AssertionError(f"cluster of {expected} not healthy within {timeout}s; last /health: {last}") from None


async def wait_readable(client: httpx.AsyncClient, hosts: list[Host], admin: AdminToken, path: str,
                        timeout: float = 60.0) -> None:
    """GET ``path`` answers 200 on every host (waiting, e.g., for an agent to register)."""
    missing = [h.name for h in hosts]
    last: dict[str, str] = {}
    try:
        with trio.fail_after(timeout):
            while missing:
                headers = {"Authorization": f"Bearer {await admin.get()}"}
                for host in [h for h in hosts if h.name in missing]:
                    try:
                        r = await client.get(f"{host.api_url}{path}", headers=headers)
                    except httpx.HTTPError as exc:
                        last[host.name] = repr(exc)
                        continue
                    if r.status_code == 200:
                        missing.remove(host.name)
                    last[host.name] = f"{r.status_code} {r.text[:200]}"
                if missing:
                    await trio.sleep(0.2)
    except trio.TooSlowError:
        raise AssertionError(f"{path} not readable on {missing} within {timeout}s; last answers: {last}") from None


def read_pid(host: Host, service: str) -> int | None:
    try:
        return int(host.pidfile(service).read_text().strip())
    except (OSError, ValueError):
        return None


def process_alive(pid: int) -> bool:
    """True for a live process (a zombie, whose parent has not reaped it yet, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def our_pids(deployment: Deployment) -> Iterator[tuple[Host, int]]:
    """Processes started by the playbook for this test: pidfile present and the command line is ours."""
    for host in deployment.all_hosts:
        for service in ("sensu-backend", "sensu-agent"):
            pid = read_pid(host, service)
            if pid is None:
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(host.root) in cmdline:
                yield host, pid


async def stop_everything(deployment: Deployment) -> None:
    """SIGTERM each process group the playbook started, SIGKILL what is left after a grace period."""
    pids = [pid for _, pid in our_pids(deployment)]
    for pid in pids:
        try:
            os.killpg(pid, signal.SIGTERM)  # started with setsid: the pid is its process group
        except ProcessLookupError:
            pass
    with trio.move_on_after(15):
        while any(process_alive(p) for p in pids):
            await trio.sleep(0.05)
    for pid in pids:
        if process_alive(pid):
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


# --------------------------------------------------------------------------- load during the rolling restart


def _check_body(name: str, i: int) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"deploy-e2e": "poller"}},
        "command": f"echo {i}",
        "interval": 3600,
        "publish": False,
        "subscriptions": ["deploy-e2e-poller"],
    }


@dataclass
class PollerStats:
    """What the background client saw. An *attempt* is one HTTP request to one node; an
    *operation* fails only when every node failed it in turn."""

    writes_acknowledged: list[str] = field(default_factory=list)
    write_attempts_failed: Counter[str] = field(default_factory=Counter)
    writes_failed_everywhere: int = 0
    reads_ok: int = 0
    read_attempts_failed: Counter[str] = field(default_factory=Counter)
    reads_failed_everywhere: int = 0
    reads_missing: list[str] = field(default_factory=list)
    token_refreshes: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "writes_acknowledged": len(self.writes_acknowledged),
            "write_attempts_failed": dict(self.write_attempts_failed),
            "writes_failed_everywhere": self.writes_failed_everywhere,
            "reads_ok": self.reads_ok,
            "read_attempts_failed": dict(self.read_attempts_failed),
            "reads_failed_everywhere": self.reads_failed_everywhere,
            "reads_missing_acknowledged_write": len(self.reads_missing),
            "token_refreshes": self.token_refreshes,
        }


class Poller:
    """Writes a check, then reads back an earlier one, through the nodes in turn, until stopped.

    A request that fails on one node (refused, timed out, 5xx) is counted and retried on the
    next node, as a client with every backend's URL would. Bounded: paced at most ~20
    operations a second and at most ``max_ops`` in all.
    """

    def __init__(self, client: httpx.AsyncClient, hosts: list[Host], admin: AdminToken, *, max_ops: int = 20000) -> None:
        self.client = client
        self.hosts = hosts
        self.admin = admin
        self.max_ops = max_ops
        self.stats = PollerStats()
        self._turn = 0

    def _next_hosts(self) -> list[Host]:
        self._turn += 1
        i = self._turn % len(self.hosts)
        return self.hosts[i:] + self.hosts[:i]

    async def _request(self, method: str, host: Host, path: str, body: dict[str, Any] | None) -> httpx.Response:
        fresh = False
        for _ in range(2):
            token = await self.admin.get(fresh=fresh)
            r = await self.client.request(method, f"{host.api_url}{path}", json=body, timeout=5.0,
                                          headers={"Authorization": f"Bearer {token}"})
            if r.status_code != 401:
                return r
            fresh = True
            self.stats.token_refreshes += 1
        return r

    async def _write(self, i: int) -> None:
        name = f"poll-{i:05d}"
        path = f"/api/core/v2/namespaces/default/checks/{name}"
        for host in self._next_hosts():
            try:
                r = await self._request("PUT", host, path, _check_body(name, i))
            except httpx.HTTPError as exc:
                self.stats.write_attempts_failed[type(exc).__name__] += 1
                continue
            if r.status_code in (200, 201):
                self.stats.writes_acknowledged.append(name)
                return
            self.stats.write_attempts_failed[f"HTTP {r.status_code}"] += 1
        self.stats.writes_failed_everywhere += 1

    async def _read(self) -> None:
        if not self.stats.writes_acknowledged:
            return
        acked = self.stats.writes_acknowledged
        name = acked[(self._turn * 7919) % len(acked)]
        for host in self._next_hosts():
            try:
                r = await self._request("GET", host, f"/api/core/v2/namespaces/default/checks/{name}", None)
            except httpx.HTTPError as exc:
                self.stats.read_attempts_failed[type(exc).__name__] += 1
                continue
            if r.status_code == 200:
                self.stats.reads_ok += 1
                return
            if r.status_code == 404:
                self.stats.reads_missing.append(f"{name}@{host.name}")
                return
            self.stats.read_attempts_failed[f"HTTP {r.status_code}"] += 1
        self.stats.reads_failed_everywhere += 1

    async def run(self, stop: trio.Event) -> None:
        for i in range(self.max_ops):
            if stop.is_set():
                return
            await self._write(i)
            await self._read()
            await trio.sleep(0.05)


@dataclass
class HealthMonitor:
    """Samples every node's /health in rounds.

    A node is *down* when it does not answer at all (its process is stopped or starting),
    and *leaderless* when it answers 503: while the leader itself restarts, the others
    answer 503 for the moment of the election. The rolling restart must never have two
    nodes down at once; leaderless moments are counted, not forbidden.
    """

    client: httpx.AsyncClient
    hosts: list[Host]
    rounds: int = 0
    most_down_at_once: int = 0
    rounds_with_a_majority_down: int = 0
    rounds_without_leader: int = 0
    down_spans: dict[str, list[list[float]]] = field(default_factory=dict)

    async def run(self, stop: trio.Event) -> None:
        start = trio.current_time()
        down_since: dict[str, float] = {}
        while not stop.is_set():
            now = trio.current_time() - start
            down, leaderless = [], []
            for host in self.hosts:
                got = await health(self.client, host)
                if got is None:
                    down.append(host.name)
                    down_since.setdefault(host.name, now)
                    continue
                if host.name in down_since:
                    self.down_spans.setdefault(host.name, []).append([round(down_since.pop(host.name), 2), round(now, 2)])
                if got[0] != 200:
                    leaderless.append(host.name)
            self.rounds += 1
            self.most_down_at_once = max(self.most_down_at_once, len(down))
            if len(down) > len(self.hosts) // 2:
                self.rounds_with_a_majority_down += 1
            if len(down) + len(leaderless) == len(self.hosts):
                self.rounds_without_leader += 1
            await trio.sleep(0.05)
        for name, since in down_since.items():
            self.down_spans.setdefault(name, []).append([round(since, 2), -1.0])


async def read_all_checks(client: httpx.AsyncClient, host: Host, admin: AdminToken) -> set[str]:
    r = await client.get(f"{host.api_url}/api/core/v2/namespaces/default/checks",
                         headers={"Authorization": f"Bearer {await admin.get()}"}, timeout=30.0)
    assert r.status_code == 200, f"{host.name}: {r.status_code} {r.text[:300]}"
    return {c["metadata"]["name"] for c in r.json()}


# --------------------------------------------------------------------------- the tests


@pytest.mark.timeout(3600)
async def test_playbook_deploys_rolls_joins_and_removes(tmp_path: Path, package: Package) -> None:
    backends = [Host.backend(f"backend{i}", f"127.0.0.{i}", tmp_path) for i in (1, 2, 3)]
    agent = Host(AGENT, "127.0.0.5", tmp_path / "hosts" / AGENT, {"api": free_port("127.0.0.5")})
    deployment = Deployment(tmp_path, package, backends, agent, venv_hosts={AGENT})
    timings: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=10.0) as client:
        try:
            # 1. deploy --------------------------------------------------------------------
            first = await run_playbook(deployment, "site.yml", "deploy")
            assert_succeeded(first, deployment)
            timings["deploy"] = first.seconds
            await wait_cluster(client, backends)
            admin = AdminToken(client, backends)
            await wait_readable(client, backends, admin, f"/api/core/v2/namespaces/default/checks/{CHECK}")
            await wait_readable(client, backends, admin, f"/api/core/v2/namespaces/default/entities/{AGENT}")
            for host in backends:
                unit = host.root / "etc" / "systemd" / "system" / "sensu-backend.service"
                assert f"ExecStart={host.root}/opt/sensu/venv/bin/sensu-backend start" in unit.read_text()
                config = yaml.safe_load((host.root / "etc" / "sensu" / "backend.yml").read_text())
                assert config["etcd-name"] == host.name
                assert config["etcd-initial-cluster-state"] == "new"
                assert config["etcd-initial-cluster"] == ",".join(f"{h.name}={h.peer_url}" for h in backends)
                # TLS between members, with a certificate the playbook issued from its own CA
                assert config["etcd-peer-client-cert-auth"] is True
                for key in ("etcd-peer-cert-file", "etcd-peer-key-file", "etcd-peer-trusted-ca-file"):
                    assert Path(config[key]).is_file(), (key, config[key])
            verified = first.results("Verify the new unit with systemd-analyze (where it is installed)")
            assert {h for h, r in verified if not r.get("skipped")} >= {h.name for h in backends}
            if shutil.which("systemd-analyze") is None:
                assert first.results("Say why the unit was not verified"), "the skipped verification was not reported"
            # init ran once and initialized (its output is hidden: no_log)
            assert [r.get("changed") for _, r in first.results("Initialize the cluster")] == [True]

            # 2. the same inventory again: nothing to do --------------------------------------
            again = await run_playbook(deployment, "site.yml", "rerun")
            assert_succeeded(again, deployment)
            timings["rerun"] = again.seconds
            changed = {host: s["changed"] for host, s in again.stats.items() if s["changed"]}
            assert changed == {}, f"a re-run changed something: {changed}\n" + "\n".join(
                f"- {t['task']['name']} [{h}]" for p in again.report["plays"] for t in p["tasks"]
                for h, r in t["hosts"].items() if r.get("changed"))
            assert [r.get("changed") for _, r in again.results("Initialize the cluster")] == [False]

            # 3. a changed setting: one member at a time, the API keeps answering ------------
            pids_before = {h.name: read_pid(h, "sensu-backend") for h in backends}
            deployment.log_level = "info"
            poller = Poller(client, backends, admin)
            monitor = HealthMonitor(client, backends)
            stop = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(poller.run, stop)
                nursery.start_soon(monitor.run, stop)
                try:
                    rolling = await run_playbook(deployment, "backends.yml", "log-level")
                finally:
                    stop.set()
            assert_succeeded(rolling, deployment)
            timings["rolling"] = rolling.seconds
            pids_after = {h.name: read_pid(h, "sensu-backend") for h in backends}
            assert all(pids_after[n] != pids_before[n] for n in pids_before), (pids_before, pids_after)
            for host in backends:
                assert "log-level: \"info\"" in (host.root / "etc" / "sensu" / "backend.yml").read_text()
            await wait_cluster(client, backends)
            acknowledged = set(poller.stats.writes_acknowledged)
            for host in backends:
                missing = acknowledged - await read_all_checks(client, host, admin)
                assert not missing, f"{len(missing)} acknowledged writes are not readable on {host.name}: {sorted(missing)[:10]}"
            report = {
                "playbook_seconds": round(rolling.seconds, 1),
                "poller": poller.stats.summary(),
                "health_rounds": monitor.rounds,
                "most_nodes_down_at_once": monitor.most_down_at_once,
                "rounds_with_a_majority_down": monitor.rounds_with_a_majority_down,
                "rounds_without_leader": monitor.rounds_without_leader,
                "down_spans_s": monitor.down_spans,
            }
            (tmp_path / "rolling-restart.json").write_text(json.dumps(report, indent=2))
            print(f"\nrolling restart under load: {json.dumps(report)}")
            assert poller.stats.writes_acknowledged, "the poller never got a write through"
            assert monitor.most_down_at_once <= 1, f"more than one member was down at once: {report}"
            assert monitor.rounds_with_a_majority_down == 0, report
            assert poller.stats.reads_missing == [], f"reads missed acknowledged writes: {poller.stats.reads_missing[:10]}"

            # 4. a fourth host joins ----------------------------------------------------------
            fourth = Host.backend("backend4", "127.0.0.4", tmp_path)
            originals = list(deployment.backends)
            pids_before = {h.name: read_pid(h, "sensu-backend") for h in originals}
            deployment.backends.append(fourth)
            deployment.venv_hosts.add(fourth.name)
            join = await run_playbook(deployment, "backends.yml", "join")
            assert_succeeded(join, deployment)
            timings["join"] = join.seconds
            assert [h for h, r in join.results("Add this host as a cluster member") if r.get("changed")] == ["backend4"]
            body = await wait_cluster(client, deployment.backends)
            assert len(body["ClusterHealth"]) == 4
            config = yaml.safe_load((fourth.root / "etc" / "sensu" / "backend.yml").read_text())
            assert config["etcd-initial-cluster-state"] == "existing"
            # the others list the new member in their file, but keep running (the Raft log has it)
            four = ",".join(f"{h.name}={h.peer_url}" for h in deployment.backends)
            for host in originals:
                assert yaml.safe_load((host.root / "etc" / "sensu" / "backend.yml").read_text())["etcd-initial-cluster"] == four
            assert {h.name: read_pid(h, "sensu-backend") for h in originals} == pids_before
            await wait_readable(client, [fourth], admin, f"/api/core/v2/namespaces/default/checks/{CHECK}")
            missing = acknowledged - await read_all_checks(client, fourth, admin)
            assert not missing, f"the new member lacks {len(missing)} earlier writes: {sorted(missing)[:10]}"

            # 5. ... and leaves ----------------------------------------------------------------
            fourth_pid = read_pid(fourth, "sensu-backend")
            assert fourth_pid is not None and process_alive(fourth_pid)
            deployment.backends.remove(fourth)
            deployment.removed.append(fourth)
            pids_before = {h.name: read_pid(h, "sensu-backend") for h in deployment.backends}
            leave = await run_playbook(deployment, "backends.yml", "remove")
            assert_succeeded(leave, deployment)
            timings["remove"] = leave.seconds
            assert [h for h, r in leave.results("Remove this host's member") if r.get("changed")] == ["backend4"]
            await wait_cluster(client, deployment.backends)
            assert not process_alive(fourth_pid), "the removed member's process still runs"
            assert {h.name: read_pid(h, "sensu-backend") for h in deployment.backends} == pids_before
            print(f"playbook seconds: {json.dumps({k: round(v, 1) for k, v in timings.items()})}")
        finally:
            with trio.CancelScope(shield=True):
                await stop_everything(deployment)


async def test_ansible_lint_passes_offline(tmp_path: Path) -> None:
    """``ansible-lint ansible/`` with the default rules, offline: no galaxy, no schema download."""
    home = tmp_path / "ansible-home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update({
        "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        "ANSIBLE_HOME": str(home),
        "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
        "ANSIBLE_LINT_SKIP_SCHEMA_UPDATE": "1",
        "NO_COLOR": "1",
        "LC_ALL": "C.UTF-8",
        "LANG": "C.UTF-8",
    })
    cmd = [str(VENV_BIN / "ansible-lint"), "--offline", "--nocolor", "ansible/"]
    try:
        with trio.fail_after(300):
            proc = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False,
                                          env=env, cwd=str(REPO))
    except trio.TooSlowError:
        raise AssertionError("ansible-lint did not finish in 300s") from None
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, out[-8000:]
    assert "Passed" in out, out[-4000:]
