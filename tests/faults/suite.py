"""A fault suite: concurrent REST clients against a three-member cluster while a nemesis breaks it.

Three ``sensu-backend`` members run in network namespaces of their own
(:mod:`tests.faults.netns`). Clients in the test's namespace read, write and
compare-and-set a few keys (mutator resources; the value is the mutator's
``command``) through the REST API of random members, and record every call
with its start and end time and its outcome. A nemesis, one fault at a time:

* ``kill``: ``kill -9`` of the leader, restarted after the hold;
* ``pause``: ``SIGSTOP`` of the leader, ``SIGCONT`` after the hold;
* ``isolate-leader``: the leader cut off from both followers (clients still
  reach it, so a leader that does not know it lost its quorum is exposed);
* ``isolate-follower``: the majority keeps the leader, one follower is alone;
* ``leader-mute``: the leader's packets to the followers are dropped, not theirs to it;
* ``leader-deaf``: the followers' packets to the leader are dropped, not its to them.

Afterwards everything is healed, every key is read from every member, and
the history is checked per key for linearizability
(:mod:`tests.faults.checker`), for stale reads and for lost acknowledged
writes. Unavailability is the time from a fault's start until the first
write that began after it was acknowledged.

Outcomes: a 2xx is a success; a definite ``412``/``404`` answer to a
compare-and-set is a definite failure (a claim that the value was not the
expected one, or absent); anything else (a timeout, a reset connection, a 5xx)
is unknown for a write, which may then have happened or not, and is dropped
for a read.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import random
import signal
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import httpx
import trio

from tests.harness.agent import run_init
from tests.harness.backend import BackendProcess, Cluster
from tests.harness.certs import issue_member_certificates, peer_tls_args

from .checker import KeyResult, Op, check_history, lost_writes, stale_reads
from .netns import Network, open_network

__all__ = ["FAULTS", "SuiteReport", "run_suite"]

logger = logging.getLogger(__name__)

FAULTS = ("kill", "pause", "isolate-leader", "isolate-follower", "leader-mute", "leader-deaf")
ADMIN = ("admin", "P@ssw0rd!")
#: Sensu's default ports: every member has a host (namespace) of its own.
PORTS = (8080, 2380, 8081, 6060, 3000)
REQUEST_TIMEOUT_S = 5.0


@dataclass
class FaultRecord:
    kind: str
    target: str
    start: float
    end: float = 0.0
    #: seconds from the fault's start to the first acknowledged write that began after it
    unavailable_s: float | None = None


@dataclass
class SuiteReport:
    seconds: float
    ops: int
    ok_ops: int
    unknown_writes: int
    keys: list[KeyResult]
    stale: list[tuple[Op, Op]]
    lost: list[Op]
    faults: list[FaultRecord] = field(default_factory=list)

    @property
    def anomalies(self) -> int:
        bad = sum(1 for k in self.keys if k.linearizable is not True)
        return bad + len(self.stale) + len(self.lost)

    def unavailability(self) -> dict[str, tuple[float, float]]:
        """fault kind -> (median, max) seconds of unavailability."""
        out: dict[str, tuple[float, float]] = {}
        for kind in sorted({f.kind for f in self.faults}):
            values = [f.unavailable_s for f in self.faults if f.kind == kind and f.unavailable_s is not None]
            if values:
                out[kind] = (statistics.median(values), max(values))
        return out

    def summary(self) -> dict[str, Any]:
        return {
            "seconds": round(self.seconds, 1), "ops": self.ops, "ok_ops": self.ok_ops,
            "unknown_writes": self.unknown_writes, "faults": len(self.faults),
            "non_linearizable_keys": [k.key for k in self.keys if k.linearizable is False],
            "undecided_keys": [k.key for k in self.keys if k.linearizable is None],
            "explanations": [k.explanation for k in self.keys if k.linearizable is not True],
            "stale_reads": len(self.stale), "lost_writes": len(self.lost), "anomalies": self.anomalies,
            "unavailability_s": {k: {"median": round(m, 2), "max": round(x, 2)}
                                 for k, (m, x) in self.unavailability().items()},
        }


class History:
    """Every call of every client, by key, with times from one clock."""

    def __init__(self) -> None:
        self.ops: dict[str, list[Op]] = {}
        self.writes_ok: list[tuple[float, float]] = []  # (call, ret) of acknowledged writes
        self.count = 0
        self.ok = 0

    def add(self, key: str, op: Op) -> None:
        self.ops.setdefault(key, []).append(op)
        self.count += 1
        if op.ret is not None and (op.kind == "read" or op.ok):
            self.ok += 1
        if op.kind in ("write", "cas") and op.ok and op.ret is not None:
            self.writes_ok.append((op.call, op.ret))


class Clients:
    """REST calls against the members, recorded in a :class:`History`."""

    def __init__(self, http: httpx.AsyncClient, nodes: Sequence[BackendProcess], key: str) -> None:
        self.http = http
        self.nodes = nodes
        self.headers = {"Authorization": f"Key {key}"}
        self.history = History()
        self.values = itertools.count(1)

    @staticmethod
    def path(name: str) -> str:
        return f"/api/core/v2/namespaces/default/mutators/{name}"

    @staticmethod
    def body(name: str, value: str) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "default"}, "command": value}

    async def _request(self, node: BackendProcess, method: str, path: str, **kw: Any) -> httpx.Response | None:
        try:
            return await self.http.request(method, node.api_url + path, timeout=REQUEST_TIMEOUT_S,
                                           headers={**self.headers, **kw.pop("headers", {})}, **kw)
        except httpx.HTTPError:
            return None

    async def read(self, client: int, node: BackendProcess, key: str) -> tuple[str | None, str | None] | None:
        """A recorded GET: (value, etag), or None when the outcome is unknown."""
        call = trio.current_time()
        r = await self._request(node, "GET", self.path(key))
        ret = trio.current_time()
        if r is None or r.status_code not in (200, 404):
            return None
        value = r.json()["command"] if r.status_code == 200 else None
        self.history.add(key, Op(client, "read", call, ret, value=value))
        return value, r.headers.get("ETag")

    async def write(self, client: int, node: BackendProcess, key: str) -> None:
        value = f"v{next(self.values)}"
        call = trio.current_time()
        r = await self._request(node, "PUT", self.path(key), json=self.body(key, value))
        ret = trio.current_time()
        ok = r is not None and r.status_code in (200, 201)
        self.history.add(key, Op(client, "write", call, ret if ok else None, value=value, ok=True if ok else None))

    async def cas(self, client: int, node: BackendProcess, key: str, read_from: BackendProcess) -> None:
        """Read from ``read_from``, then a merge patch through ``node`` under ``If-Match`` of the ETag read.

        Two members, as clients spread over a cluster do: the patch may reach
        one that is behind the member the ETag came from (one just restarted).
        """
        seen = await self.read(client, read_from, key)
        if seen is None or seen[1] is None:
            return
        expected, etag = seen
        value = f"v{next(self.values)}"
        call = trio.current_time()
        r = await self._request(node, "PATCH", self.path(key), content=json.dumps({"command": value}).encode(),
                                headers={"If-Match": etag, "Content-Type": "application/merge-patch+json"})
        ret = trio.current_time()
        status = r.status_code if r is not None else None
        if status == 200:
            op = Op(client, "cas", call, ret, value=value, expected=expected, ok=True)
        elif status in (404, 412):
            op = Op(client, "cas", call, ret, value=value, expected=expected, ok=False)
        else:
            op = Op(client, "cas", call, None, value=value, expected=expected, ok=None)
        self.history.add(key, op)


async def _client_loop(clients: Clients, client: int, keys: Sequence[str], rng: random.Random,
                       stop: trio.Event) -> None:
    while not stop.is_set():
        node = rng.choice(clients.nodes)
        if not node.running:
            await trio.sleep(0.01)
            continue
        key = rng.choice(keys)
        kind = rng.random()
        if kind < 0.4:
            await clients.read(client, node, key)
        elif kind < 0.7:
            await clients.write(client, node, key)
        else:
            await clients.cas(client, node, key, rng.choice(clients.nodes))


async def _leader(cluster: Cluster) -> BackendProcess:
    return await cluster.leader(timeout=30.0)


async def _inject(kind: str, cluster: Cluster, network: Network, rng: random.Random) -> tuple[str, Any]:
    leader = await _leader(cluster)
    followers = [n for n in cluster.nodes if n is not leader]
    if kind == "kill":
        leader.kill()
    elif kind == "pause":
        assert leader.proc is not None
        leader.proc.send_signal(signal.SIGSTOP)
    elif kind == "isolate-leader":
        network.isolate(leader.name)
    elif kind == "isolate-follower":
        target = rng.choice(followers)
        network.isolate(target.name)
        return target.name, target
    elif kind == "leader-mute":
        for f in followers:
            network.cut(leader.name, f.name)
    elif kind == "leader-deaf":
        for f in followers:
            network.cut(f.name, leader.name)
    else:
        raise ValueError(kind)
    return leader.name, leader


def _repair(kind: str, node: BackendProcess, network: Network) -> None:
    if kind == "kill":
        node.start()
    elif kind == "pause":
        assert node.proc is not None
        node.proc.send_signal(signal.SIGCONT)
    else:
        network.heal()


async def _nemesis(cluster: Cluster, network: Network, faults: Sequence[str], rng: random.Random,
                   records: list[FaultRecord], *, hold: tuple[float, float], rest: tuple[float, float],
                   deadline: float) -> None:
    for kind in itertools.cycle(faults):
        if trio.current_time() >= deadline:
            return
        await cluster.wait_healthy(60.0)
        target_name, node = await _inject(kind, cluster, network, rng)
        record = FaultRecord(kind, target_name, trio.current_time())
        records.append(record)
        try:
            await trio.sleep(rng.uniform(*hold))
        finally:
            _repair(kind, node, network)
            record.end = trio.current_time()
        await trio.sleep(rng.uniform(*rest))


def _unavailability(records: list[FaultRecord], history: History) -> None:
    for record in records:
        after = [ret for call, ret in history.writes_ok if call >= record.start]
        record.unavailable_s = (min(after) - record.start) if after else None


async def _bootstrap(http: httpx.AsyncClient, node: BackendProcess, keys: Sequence[str]) -> str:
    """Seed the cluster, make an API key, create the keys; returns the API key."""
    result = await trio.to_thread.run_sync(lambda: run_init(  # init is taken only from the node's own host
        f"http://127.0.0.1:{PORTS[0]}", "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1],
        command_prefix=node.command_prefix))
    assert result.returncode == 0, result.stderr
    r = await http.get(f"{node.api_url}/auth", auth=ADMIN, timeout=10.0)
    assert r.status_code == 200, r.text
    bearer = {"Authorization": f"Bearer {r.json()['access_token']}"}
    r = await http.post(f"{node.api_url}/api/core/v2/apikeys", json={"username": ADMIN[0]}, headers=bearer,
                        timeout=10.0)
    assert r.status_code == 201, r.text
    api_key = r.headers["Location"].rsplit("/", 1)[-1]
    for key in keys:
        r = await http.put(f"{node.api_url}{Clients.path(key)}", json=Clients.body(key, "v0"), headers=bearer,
                           timeout=10.0)
        assert r.status_code in (200, 201), r.text
    return api_key


async def run_suite(workdir: Path, *, seconds: float, faults: Sequence[str] = FAULTS, clients: int = 12,
                    keys: int = 3, seed: int | None = None, hold: tuple[float, float] = (3.0, 8.0),
                    rest: tuple[float, float] = (2.0, 4.0), log: Any = None, peer_tls: bool = False) -> SuiteReport:
    """Run the workload and the nemesis for ``seconds``, heal, read back, check; the cluster is stopped after.

    With ``peer_tls`` the members talk TLS with client certificates (``--etcd-peer-*``).
    """
    seed = seed if seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    names = [f"backend-{i}" for i in range(3)]
    key_names = [f"k{i}" for i in range(keys)]
    with open_network(names) as network:
        # the API also listens on the host's loopback, where sensu-backend init is accepted
        certs = (issue_member_certificates(workdir / "certs", {h.name: h.address for h in network.hosts})
                 if peer_tls else {})
        nodes = [BackendProcess(h.name, h.address, workdir / h.name, ports=PORTS, command_prefix=h.exec_prefix,
                                extra_args=["--api-listen-address", f"0.0.0.0:{PORTS[0]}",
                                            *(peer_tls_args(certs, h.name) if peer_tls else [])],
                                peer_scheme="https" if peer_tls else "http")
                 for h in network.hosts]
        initial = ",".join(f"{n.name}={n.peer_url}" for n in nodes)
        for n in nodes:
            n.initial_cluster = initial
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=4 * clients)) as http:
            cluster = Cluster(nodes, http)
            try:
                for n in nodes:
                    n.start()
                await cluster.wait_healthy(90.0)
                api_key = await _bootstrap(http, nodes[0], key_names)
                workload = Clients(http, nodes, api_key)
                records: list[FaultRecord] = []
                started = trio.current_time()
                stop = trio.Event()
                async with trio.open_nursery() as nursery:
                    for c in range(clients):
                        nursery.start_soon(_client_loop, workload, c, key_names, random.Random(rng.random()), stop)
                    await _nemesis(cluster, network, faults, rng, records, hold=hold, rest=rest,
                                   deadline=started + seconds)
                    await trio.sleep(2.0)
                    stop.set()
                network.heal()
                await cluster.wait_healthy(90.0)
                # every key from every member, after everything else: the final state
                for key in key_names:
                    for i, n in enumerate(nodes):
                        got = None
                        with trio.move_on_after(30.0):
                            while got is None:
                                got = await workload.read(clients + i, n, key)
                        assert got is not None, f"{n.name} never answered a read of {key}"
                elapsed = trio.current_time() - started
            except BaseException:
                if log is not None:
                    log(cluster.logs())
                raise
            finally:
                for n in nodes:
                    if n.proc is not None and n.proc.poll() is None:
                        try:
                            n.proc.send_signal(signal.SIGCONT)
                        except ProcessLookupError:
                            pass
                cluster.stop()
    history = workload.history
    results = await trio.to_thread.run_sync(
        lambda: check_history(history.ops, {k: "v0" for k in key_names}))
    stale = [pair for ops in history.ops.values() for pair in stale_reads(ops, initial="v0")]
    lost = []
    for key, ops in history.ops.items():
        finals = [op for op in ops if op.client >= clients]
        if finals and len({op.value for op in finals}) == 1:
            lost += lost_writes(ops, finals[0].value)
    _unavailability(records, history)
    report = SuiteReport(elapsed, history.count, history.ok, sum(
        1 for ops in history.ops.values() for op in ops if op.kind != "read" and op.ret is None),
        results, stale, lost, records)
    if log is not None:
        log(f"seed {seed} pid {os.getpid()}")
    return report
