"""Load test of the backend's agent side: connections, keepalives, check results.

Real ``sensu-backend`` processes (one node, or a cluster with ``--nodes 3``)
and separate load-generator processes (``python bench/agents.py load ...``),
each holding a share of N simulated agents over trio-websocket and speaking
runtime.md §1 (JSON frames, Basic auth as user ``agent``).

Phases, per N:

1. **connect**: every agent completes the handshake and receives its first
   ``entity_config``; no keepalives yet. Reports the handshake rate (the
   bcrypt cache makes the storm cheap), **memory per idle connection**
   = (backend RSS after - before) / connections, and the connections (fds)
   each node holds.
2. **register**: every agent sends its first keepalive at once (a reconnect
   storm: entity creation, deadline lease and keepalive event per agent),
   then one every ``--interval`` s. Reports the time until every agent's
   deadline is armed and how many keepalives the backend dropped because
   the worker buffers stayed full for ``agent-write-timeout`` (each is
   logged; the agent's next keepalive registers it).
3. **steady** (``--steady`` s): keepalives every ``--interval`` (20 s, random
   phase) and one check result per agent every ``--event-interval`` s (60);
   ``--probes`` agents (named ``probe-*``) send one every
   ``--probe-event-interval`` s (5) with their send time in the output, and a
   poller reading their events every 100 ms (in a second window of
   ``--steady`` s, so its reads do not count in the CPU figures) gives **sent -> readable in the
   store** (p50/p99; high by up to the poll period). Keepalives/s and
   events/s ingested come from the stored events themselves: each stored
   OK result adds one to its event's ``check.occurrences``, so the sum over
   all events counts exactly what was stored. Also the backend's CPU (user +
   system) per stored message and the machine's load average.
4. **burst** (``--burst`` s): every agent sends results back to back; the
   ingest rate is the events/s stored during the window.

Usage::

    .venv/bin/python bench/agents.py --agents 1000 5000
    .venv/bin/python bench/agents.py --agents 5000 --nodes 3 --procs 4

The driver raises its soft open-files limit to the hard limit (the backend
and generators inherit it). It prints one JSON line per measurement and a
table at the end.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def raise_nofile() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------------------- load generator process

def load_main(args: argparse.Namespace) -> None:
    import trio
    from trio_websocket import ConnectionClosed, HandshakeError, open_websocket

    raise_nofile()
    endpoints = [(h, int(p)) for h, p in (e.rsplit(":", 1) for e in args.endpoints.split(","))]
    token = base64.b64encode(b"agent:P@ssw0rd!")
    state = {"connected": 0, "failed": 0, "keepalives": 0, "events": 0, "received": 0, "closed": 0}
    phase = {"register": trio.Event(), "steady": trio.Event(), "burst": trio.Event(), "stop": trio.Event()}
    burst_until = [0.0]

    def emit(obj: dict[str, Any]) -> None:
        print(json.dumps(obj), flush=True)

    def entity(name: str, ts: int) -> dict[str, Any]:
        return {"metadata": {"name": name, "namespace": "default"}, "entity_class": "agent",
                "subscriptions": ["bench"], "system": {"hostname": name, "os": "linux", "arch": "amd64"},
                "last_seen": ts, "user": "agent", "sensu_agent_version": "6.12.0"}

    def keepalive(name: str, seq: int) -> bytes:
        ts = int(time.time())
        return b"keepalive\n" + json.dumps({
            "metadata": {"namespace": "default"}, "id": str(uuid.uuid4()), "sequence": seq, "timestamp": ts,
            "entity": entity(name, ts),
            "check": {"metadata": {"name": "keepalive", "namespace": "default"}, "interval": max(1, int(args.interval)),
                      "timeout": args.warning, "ttl": 0, "executed": ts, "issued": ts}}).encode()

    def result(name: str) -> bytes:
        now = time.time()
        ts = int(now)
        return b"event\n" + json.dumps({
            "metadata": {"namespace": "default"}, "id": str(uuid.uuid4()), "timestamp": ts,
            "entity": entity(name, ts),
            "check": {"metadata": {"name": "bench", "namespace": "default"}, "command": "true",
                      "interval": max(1, int(args.event_interval)), "subscriptions": ["bench"], "handlers": [],
                      "status": 0, "output": f"sent={now:.6f}", "executed": ts, "issued": ts,
                      "duration": 0.001}}).encode()

    async def agent(i: int, limiter: trio.CapacityLimiter) -> None:
        name = f"probe-{i:06d}" if args.probe_every and i % args.probe_every == 0 else f"{args.prefix}-{i:06d}"
        host, port = endpoints[i % len(endpoints)]
        headers = [(b"Sensu-Namespace", b"default"), (b"Sensu-AgentName", name.encode()),
                   (b"Sensu-Subscriptions", b"bench"), (b"Accept", b"application/json"),
                   (b"Sensu-User", b"agent"), (b"Authorization", b"Basic " + token)]
        await limiter.acquire()  # bounds handshakes in flight, released once this one is done
        handshaking = True
        try:
            async with open_websocket(host, port, "/", use_ssl=False, extra_headers=headers,
                                      connect_timeout=60) as ws:
                await ws.get_message()  # first entity_config
                limiter.release()
                handshaking = False
                state["connected"] += 1
                try:
                    await serve(ws, name)
                except* ConnectionClosed as group:
                    state["closed"] += 1
                    emit({"error": f"{name}: closed by the backend: {group.exceptions[0]}"})
        except (OSError, HandshakeError) as exc:
            state["failed" if handshaking else "closed"] += 1
            emit({"error": f"{name}: {exc!r}"})
        except ConnectionClosed as exc:
            state["failed" if handshaking else "closed"] += 1
            emit({"error": f"{name}: closed by the backend: {exc.reason}"})
        finally:
            if handshaking:
                limiter.release()

    async def serve(ws: Any, name: str) -> None:
        async with trio.open_nursery() as nursery:
            async def drain() -> None:
                while True:
                    await ws.get_message()
                    state["received"] += 1

            nursery.start_soon(drain)
            await phase["register"].wait()

            async def keepalives() -> None:
                # like an agent: one keepalive at once (all agents together: a reconnect storm),
                # then every interval; the first pause is jittered so the storm does not repeat
                await ws.send_message(keepalive(name, 1))
                state["keepalives"] += 1
                await trio.sleep(random.uniform(0.5, 1.5) * args.interval)
                seq = 2
                while True:
                    await ws.send_message(keepalive(name, seq))
                    state["keepalives"] += 1
                    seq += 1
                    await trio.sleep(args.interval)

            nursery.start_soon(keepalives)
            await phase["steady"].wait()

            async def results() -> None:
                every = args.probe_event_interval if name.startswith("probe-") else args.event_interval
                await trio.sleep(random.uniform(0, every))
                while not phase["burst"].is_set():
                    await ws.send_message(result(name))
                    state["events"] += 1
                    with trio.move_on_after(every):
                        await phase["burst"].wait()
                while time.time() < burst_until[0]:
                    await ws.send_message(result(name))
                    state["events"] += 1

            nursery.start_soon(results)
            await phase["stop"].wait()
            nursery.cancel_scope.cancel()

    async def commands(nursery: trio.Nursery) -> None:
        stdin = trio.lowlevel.FdStream(os.dup(0))
        buf = b""
        while True:
            chunk = await stdin.receive_some(4096)
            if not chunk:
                phase["stop"].set()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                cmd = line.decode().split()
                if cmd[0] == "burst":
                    burst_until[0] = time.time() + float(cmd[1])
                if cmd[0] == "stats":
                    emit({"stats": state})
                    continue
                phase[cmd[0]].set()
                if cmd[0] == "stop":
                    emit({"stats": state})
                    return

    async def main() -> None:
        limiter = trio.CapacityLimiter(args.concurrency)
        started = time.perf_counter()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(commands, nursery)
            for i in range(args.first, args.first + args.count):
                nursery.start_soon(agent, i, limiter)
            while state["connected"] + state["failed"] < args.count:
                await trio.sleep(0.05)
            emit({"connected": state["connected"], "failed": state["failed"],
                  "seconds": time.perf_counter() - started})
            await phase["stop"].wait()
            with trio.move_on_after(10):
                while state["connected"] > 0 and nursery.child_tasks and len(nursery.child_tasks) > 1:
                    await trio.sleep(0.1)
            nursery.cancel_scope.cancel()

    trio.run(main)


# ---------------------------------------------------------------------------- driver

def store_totals(debug_url: str) -> tuple[int, int, float]:
    """(keepalives, results) ingested so far, summed from the stored events; and the read's seconds.

    Every keepalive and every (always OK) result increments its event's
    ``check.occurrences`` by one (runtime.md §5.2: an OK streak), so the sum
    over all events counts what the backend has stored, exactly, without
    following every write.
    """
    import httpx
    import msgpack

    t0 = time.perf_counter()
    r = httpx.get(f"{debug_url}/debug/store/range", params={"prefix": "/sensu.io/events/default/"}, timeout=120)
    r.raise_for_status()
    keepalives = results = 0
    for item in r.json()["items"]:
        event = msgpack.unpackb(base64.b64decode(item["value_b64"]), raw=False)
        occurrences = int((event.get("check") or {}).get("occurrences") or 0)
        if item["key"].endswith("/keepalive"):
            keepalives += occurrences
        else:
            results += occurrences
    return keepalives, results, time.perf_counter() - t0


def store_registered(debug_url: str) -> int:
    """Agents whose keepalive deadline is armed (counted from the small deadline keys)."""
    import httpx

    r = httpx.get(f"{debug_url}/debug/store/range", params={"prefix": "/sensu.io/_internal/keepalives/default/"},
                  timeout=120)
    r.raise_for_status()
    return len(r.json()["items"])


class ProbePoller:
    """Measures sent -> readable in the store for the results of the probe agents (a thread).

    Probe agents (every ``--probe-every``-th agent, named ``probe-*``) carry
    their send time in the check output; one range read of their events every
    :attr:`PERIOD` seconds finds new results. The figure is therefore high by
    up to one period (half on average).
    """

    SENT = re.compile(r"sent=(\d+\.\d+)")
    PERIOD = 0.1

    def __init__(self, debug_url: str) -> None:
        self.url = debug_url
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.seen: dict[str, float] = {}
        self.errors = 0
        self.stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        import httpx
        import msgpack

        with httpx.Client(timeout=10) as client:
            while not self.stop:
                time.sleep(self.PERIOD)
                try:
                    r = client.get(f"{self.url}/debug/store/range",
                                   params={"prefix": "/sensu.io/events/default/probe-"})
                    items = r.json()["items"]
                except Exception:  # the node is busy or going away: try again
                    self.errors += 1
                    continue
                now = time.time()
                for item in items:
                    if item["key"].endswith("/keepalive"):
                        continue
                    event = msgpack.unpackb(base64.b64decode(item["value_b64"]), raw=False)
                    m = self.SENT.search(str((event.get("check") or {}).get("output") or ""))
                    if not m:
                        continue
                    sent = float(m.group(1))
                    if self.seen.get(item["key"]) != sent:
                        first = item["key"] not in self.seen
                        self.seen[item["key"]] = sent
                        if not first:  # the first sighting may be an old result
                            with self.lock:
                                self.latencies.append(now - sent)

    def take(self) -> list[float]:
        with self.lock:
            lat, self.latencies = self.latencies, []
            return lat


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


class Generator:
    def __init__(self, endpoints: str, first: int, count: int, args: argparse.Namespace, prefix: str) -> None:
        cmd = [sys.executable, str(Path(__file__).resolve()), "load", "--endpoints", endpoints,
               "--first", str(first), "--count", str(count), "--prefix", prefix,
               "--interval", str(args.interval), "--event-interval", str(args.event_interval),
               "--warning", str(args.warning), "--concurrency", str(args.concurrency),
               "--probe-every", str(max(1, args.probe_every_n)),
               "--probe-event-interval", str(args.probe_event_interval)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
                                     cwd=str(REPO))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self, key: str, timeout: float = 600) -> dict[str, Any]:
        assert self.proc.stdout is not None
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"load generator exited ({self.proc.poll()})")
            item = json.loads(line)
            if key in item:
                return item
            if "error" in item:
                print(json.dumps(item), flush=True)
        raise TimeoutError(key)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def run_case(n: int, args: argparse.Namespace) -> dict[str, Any]:
    args.probe_every_n = max(1, n // max(1, args.probes))
    import httpx
    import trio

    from tests.e2e.test_init import run_init
    from tests.harness.backend import BackendProcess, Cluster, make_cluster_nodes

    tmp = Path(tempfile.mkdtemp(prefix="bench-agents-"))
    nodes: list[BackendProcess]
    if args.nodes == 1:
        nodes = [BackendProcess("default", "127.0.0.1", tmp / "node", extra_args=["--log-level", "warn"])]
    else:
        nodes = make_cluster_nodes(tmp, args.nodes, extra_args=["--log-level", "warn"])
    generators: list[Generator] = []
    out: dict[str, Any] = {"agents": n, "nodes": args.nodes, "procs": args.procs, "interval_s": args.interval,
                           "event_interval_s": args.event_interval}
    try:
        for node in nodes:
            node.start()

        async def healthy() -> None:
            async with httpx.AsyncClient() as client:
                await Cluster(nodes, client).wait_healthy(60)

        trio.run(healthy)
        init = run_init(nodes[0].api_url, "--cluster-admin-username", "admin", "--cluster-admin-password", "P@ssw0rd!")
        assert init.returncode == 0, init.stderr
        pids = [n.proc.pid for n in nodes if n.proc]
        debug = nodes[0].debug_url
        time.sleep(2.0)  # let the freshly started processes finish their start-up allocations
        rss0 = [rss_kb(p) for p in pids]
        fd0 = [fds(p) for p in pids]

        # 1. connect
        endpoints = ",".join(f"{node.host}:{node.agent_port}" for node in nodes)
        per = [n // args.procs + (1 if i < n % args.procs else 0) for i in range(args.procs)]
        first = 0
        t0 = time.perf_counter()
        for count in per:
            generators.append(Generator(endpoints, first, count, args, "agent"))
            first += count
        connected = sum(g.read("connected")["connected"] for g in generators)
        connect_s = time.perf_counter() - t0
        time.sleep(3.0)
        rss1 = [rss_kb(p) for p in pids]
        fd1 = [fds(p) for p in pids]
        out.update({
            "connected": connected,
            "connect_s": round(connect_s, 2),
            "handshakes_per_s": round(connected / connect_s, 1),
            "connections_per_node": [f - f0 for f, f0 in zip(fd1, fd0)],
            "idle_kb_per_connection": [round((r1 - r0) / max(1, c), 1) for r1, r0, c in
                                       zip(rss1, rss0, [f - f0 for f, f0 in zip(fd1, fd0)])],
            "rss_mb_before": [round(r / 1024, 1) for r in rss0],
            "rss_mb_idle": [round(r / 1024, 1) for r in rss1],
        })
        print(json.dumps({"phase": "connect", **out}), flush=True)

        # 2. register: the first keepalive of every agent at once (a reconnect storm)
        t0 = time.perf_counter()
        for g in generators:
            g.send("register")
        deadline = time.time() + args.register_timeout
        registered = 0
        while time.time() < deadline:
            registered = store_registered(debug)
            if registered >= connected:
                break
            time.sleep(1.0)
        register_s = time.perf_counter() - t0
        busy = sum(node.log().count("not accepted within agent-write-timeout") for node in nodes)
        out.update({"register_s": round(register_s, 2), "registered": registered,
                    "register_per_s": round(registered / register_s, 1), "busy_drops_during_storm": busy})
        print(json.dumps({"phase": "register", **{k: out[k] for k in (
            "register_s", "registered", "register_per_s", "busy_drops_during_storm")}}), flush=True)

        # 3. steady state: rates and CPU with nothing else reading, then latency with the poller
        for g in generators:
            g.send("steady")
        time.sleep(max(args.interval, min(args.interval * 1.5, args.event_interval)))  # let the phases spread
        ka0, ev0, _ = store_totals(debug)
        cpu0 = [cpu_s(p) for p in pids]
        t0 = time.perf_counter()
        time.sleep(args.steady)
        cpu1 = [cpu_s(p) for p in pids]
        dt = time.perf_counter() - t0
        ka1, ev1, read_s = store_totals(debug)
        rss2 = [rss_kb(p) for p in pids]
        messages = max(1, (ka1 - ka0) + (ev1 - ev0))
        probes = len(range(0, connected, max(1, args.probe_every_n)))
        poller = ProbePoller(debug)
        time.sleep(args.steady)
        lat = poller.take()
        poller.stop = True
        out.update({
            "steady_s": round(dt, 1),
            "keepalives_per_s": round((ka1 - ka0) / dt, 1),
            "expected_keepalives_per_s": round(connected / args.interval, 1),
            "events_per_s": round((ev1 - ev0) / dt, 1),
            "expected_events_per_s": round((connected - probes) / args.event_interval
                                           + probes / args.probe_event_interval, 1),
            "latency_p50_ms": round(percentile(lat, 50) * 1e3, 1),
            "latency_p99_ms": round(percentile(lat, 99) * 1e3, 1),
            "latency_max_ms": round(max(lat) * 1e3, 1) if lat else None,
            "latency_samples": len(lat),
            "probe_poll_errors": poller.errors,
            "rss_mb_steady": [round(r / 1024, 1) for r in rss2],
            "kb_per_agent_steady": [round((r2 - r0) / max(1, connected / len(pids)), 1) for r2, r0 in zip(rss2, rss0)],
            "backend_cpu_pct": [round((c1 - c0) / dt * 100, 1) for c1, c0 in zip(cpu1, cpu0)],
            "backend_cpu_ms_per_message": round(sum(c1 - c0 for c1, c0 in zip(cpu1, cpu0)) / messages * 1e3, 2),
            "loadavg_1m": round(os.getloadavg()[0], 1),
            "totals_read_s": round(read_s, 2),
        })
        print(json.dumps({"phase": "steady", **{k: out[k] for k in (
            "keepalives_per_s", "events_per_s", "latency_p50_ms", "latency_p99_ms", "latency_samples",
            "rss_mb_steady", "backend_cpu_pct", "backend_cpu_ms_per_message", "loadavg_1m")}}), flush=True)

        # 4. burst: every agent sends results back to back
        if args.burst > 0:
            _, ev0, _ = store_totals(debug)
            cpu0 = [cpu_s(p) for p in pids]
            t0 = time.perf_counter()
            for g in generators:
                g.send(f"burst {args.burst}")
            time.sleep(args.burst)
            cpu1 = [cpu_s(p) for p in pids]
            _, ev1, _ = store_totals(debug)
            dt = time.perf_counter() - t0
            out.update({"burst_events_per_s": round((ev1 - ev0) / dt, 1),
                        "burst_backend_cpu_pct": [round((c1 - c0) / dt * 100, 1) for c1, c0 in zip(cpu1, cpu0)]})
            print(json.dumps({"phase": "burst", "events_per_s": out["burst_events_per_s"],
                              "backend_cpu_pct": out["burst_backend_cpu_pct"]}), flush=True)
        for g in generators:
            g.send("stats")
        stats = [g.read("stats")["stats"] for g in generators]
        out["client_closed"] = sum(s["closed"] for s in stats)
        out["client_failed"] = sum(s["failed"] for s in stats)
        alive = [node.running for node in nodes]
        out["nodes_alive"] = all(alive)
        return out
    finally:
        for g in generators:
            try:
                g.send("stop")
            except (BrokenPipeError, OSError):
                pass
        for g in generators:
            g.close()
        for node in nodes:
            node.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def driver_main(args: argparse.Namespace) -> None:
    limit = raise_nofile()
    print(json.dumps({"nofile": limit, "cpus": os.cpu_count()}), flush=True)
    results = [run_case(n, args) for n in args.agents]
    print()
    cols = ["agents", "nodes", "connections_per_node", "handshakes_per_s", "idle_kb_per_connection",
            "register_s", "busy_drops_during_storm", "keepalives_per_s", "events_per_s", "latency_p50_ms", "latency_p99_ms",
            "backend_cpu_pct", "backend_cpu_ms_per_message", "burst_events_per_s", "rss_mb_steady", "loadavg_1m"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in results:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    print(json.dumps({"results": results}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    load = sub.add_parser("load", help="(internal) one load-generator process")
    load.add_argument("--endpoints", required=True)
    load.add_argument("--first", type=int, required=True)
    load.add_argument("--count", type=int, required=True)
    load.add_argument("--prefix", default="agent")
    load.add_argument("--interval", type=float, default=20)
    load.add_argument("--event-interval", type=float, default=10)
    load.add_argument("--warning", type=int, default=120)
    load.add_argument("--concurrency", type=int, default=100)
    load.add_argument("--probe-every", type=int, default=0)
    load.add_argument("--probe-event-interval", type=float, default=5)
    parser.add_argument("--agents", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--procs", type=int, default=4, help="load generator processes")
    parser.add_argument("--interval", type=float, default=20, help="keepalive interval (s)")
    parser.add_argument("--event-interval", type=float, default=60, help="seconds between results per agent")
    parser.add_argument("--warning", type=int, default=120, help="keepalive warning timeout (s)")
    parser.add_argument("--steady", type=float, default=60, help="steady-state measurement (s)")
    parser.add_argument("--burst", type=float, default=0,
                        help="back-to-back results (s); 0 = skip (on a shared 2-core machine the generators then "
                             "take the CPU the backend needs)")
    parser.add_argument("--register-timeout", type=float, default=300, help="longest wait for the storm (s)")
    parser.add_argument("--concurrency", type=int, default=100, help="handshakes in flight per generator")
    parser.add_argument("--probes", type=int, default=20, help="agents whose results are timed")
    parser.add_argument("--probe-event-interval", type=float, default=5, help="seconds between probe results")
    parser.add_argument("--keep", action="store_true", help="keep the state dirs and logs")
    args = parser.parse_args()
    if args.cmd == "load":
        load_main(args)
    else:
        driver_main(args)


if __name__ == "__main__":
    main()
