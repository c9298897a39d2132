"""End-to-end pipeline throughput: simulated agents -> event processing -> a trivial handler.

Real ``sensu-backend`` processes (one node, or three with ``--nodes 3``), a
``sink`` process (a TCP server standing in for the handler's target) and
``load`` processes holding ``--agents`` simulated agent connections
(runtime.md §1 frames over trio-websocket, spread over every node). The
handler is the trivial one: a ``tcp`` handler named ``sink`` with no filters
and no mutator other than the built-in ``json``, so every stored result is
handed to the pipeline and sent to the sink.

Each result carries its send time in ``check.output``; the sink records the
time each event arrives, so **latency is from result sent by the agent to
the handler delivering it** (p50/p99 over the window). For each offered rate
(``--rates``, events/s over all agents, open loop: the generators send on a
schedule whatever the backend does) the script reports what the sink
received per second, the latency, the backend CPU and RSS, and whether the
rate was *sustained* (at least 97 % of the offered events delivered within
the window plus two seconds, p99 under 250 ms).

``--soak S`` then runs ``--soak-rate`` for S seconds, sampling every node's
RSS every 10 s, to show memory stays flat.

Results alternate OK (status 0) and warning (status 1) per agent, across
``--checks`` check names per agent, so the pipeline sees incidents,
resolutions and OK-after-OK events.

Usage::

    .venv/bin/python bench/pipeline.py --nodes 1 3 --rates 500 1000 2000 3000
    .venv/bin/python bench/pipeline.py --nodes 3 --rates 2000 --soak 600 --soak-rate 2000

Prints one JSON line per measurement and a table at the end.
"""

from __future__ import annotations

import argparse
import base64
import bisect
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from agents import cpu_s, percentile, rss_kb  # noqa: E402  (shared with the agents benchmark)

SUSTAINED_FRACTION = 0.97
P99_TARGET_MS = 250.0


# ---------------------------------------------------------------------------- sink process

def sink_main(args: argparse.Namespace) -> None:
    """A TCP server: one event per connection (what a tcp handler sends); stdin commands.

    A plain ``selectors`` loop rather than trio: it shares the 2 cores with
    the backends it measures, and costs about a third of what a trio server
    did per connection.
    """
    import selectors
    import socket

    arrival_at: list[float] = []  # arrival times, in arrival order (so sorted: windows are bisected)
    latencies: list[float] = []  # latency of each arrival, same index
    slow: list[tuple[float, float, str, str]] = []  # (arrival, latency, entity, check) of arrivals over 1 s
    bad = [0]
    sel = selectors.DefaultSelector()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    print(json.dumps({"listening": listener.getsockname()[1]}), flush=True)
    chunks: dict[socket.socket, list[bytes]] = {}
    stdin_buf = b""

    def finished(conn: socket.socket) -> None:
        sel.unregister(conn)
        conn.close()
        now = time.time()
        try:
            event = json.loads(b"".join(chunks.pop(conn)))
            sent = float(event["check"]["output"].split("sent=", 1)[1].split()[0])
        except (ValueError, KeyError, IndexError):
            bad[0] += 1
            return
        if arrival_at and now < arrival_at[-1]:
            now = arrival_at[-1]  # keep the times sorted if the clock stepped back
        arrival_at.append(now)
        latencies.append(now - sent)
        if now - sent > 1.0:
            slow.append((now, now - sent, event["entity"]["metadata"]["name"], event["check"]["metadata"]["name"]))

    def command(cmd: list[str]) -> bool:
        if cmd[0] == "window":  # window <t0> <t1>: arrivals in [t0, t1) and their latencies
            t0, t1 = float(cmd[1]), float(cmd[2])
            first, end = bisect.bisect_left(arrival_at, t0), bisect.bisect_left(arrival_at, t1)
            lat = latencies[first:end]
            slices: dict[int, list[float]] = {}  # p99 per second of the window: a stall or a backlog?
            for i in range(first, end):
                slices.setdefault(int(arrival_at[i] - t0), []).append(latencies[i])
            slowest = sorted((s for s in slow if t0 <= s[0] < t1), key=lambda s: -s[1])[:10]
            print(json.dumps({"window": {"count": len(lat), "p50_ms": percentile(lat, 50) * 1e3,
                                         "p99_ms": percentile(lat, 99) * 1e3,
                                         "max_ms": max(lat) * 1e3 if lat else None,
                                         "p99_ms_by_second": [round(percentile(v, 99) * 1e3)
                                                              for _, v in sorted(slices.items())],
                                         "over_1s": sum(1 for s in slow if t0 <= s[0] < t1),
                                         "slowest": [[round(at - t0, 2), round(latency, 2), entity, check]
                                                     for at, latency, entity, check in slowest],
                                         "bad": bad[0], "total": len(arrival_at)}}), flush=True)
        elif cmd[0] == "sent_between":  # events *sent* in [t0, t1) that arrived (by latency)
            t0, t1 = float(cmd[1]), float(cmd[2])
            first = bisect.bisect_left(arrival_at, t0)  # sent at or after t0 means arrived at or after t0
            n = sum(1 for i in range(first, len(arrival_at)) if t0 <= arrival_at[i] - latencies[i] < t1)
            print(json.dumps({"sent_between": n}), flush=True)
        elif cmd[0] == "stop":
            return False
        return True

    while True:
        for key, _ in sel.select():
            if key.data == "accept":
                while True:
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(False)
                    chunks[conn] = []
                    sel.register(conn, selectors.EVENT_READ, "conn")
            elif key.data == "stdin":
                data = os.read(sys.stdin.fileno(), 4096)
                if not data:
                    return
                stdin_buf += data
                while b"\n" in stdin_buf:
                    line, stdin_buf = stdin_buf.split(b"\n", 1)
                    if line.strip() and not command(line.decode().split()):
                        return
            else:
                conn = key.fileobj
                assert isinstance(conn, socket.socket)
                try:
                    data = conn.recv(65536)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if data:
                    chunks[conn].append(data)
                else:
                    finished(conn)


# ---------------------------------------------------------------------------- load process

def load_main(args: argparse.Namespace) -> None:
    """``--count`` agents; sends results at the aggregate rate set with ``rate R`` on stdin."""
    import trio
    from trio_websocket import ConnectionClosed, HandshakeError, open_websocket

    endpoints = [(h, int(p)) for h, p in (e.rsplit(":", 1) for e in args.endpoints.split(","))]
    token = base64.b64encode(b"agent:P@ssw0rd!")
    state = {"connected": 0, "failed": 0, "sent": 0, "closed": 0}
    rate = [0.0]
    changed = [trio.Event()]

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
            "check": {"metadata": {"name": "keepalive", "namespace": "default"}, "interval": 20,
                      "timeout": 120, "ttl": 0, "executed": ts, "issued": ts}}).encode()

    def result(name: str, check: str, status: int) -> bytes:
        now = time.time()
        ts = int(now)
        return b"event\n" + json.dumps({
            "metadata": {"namespace": "default"}, "id": str(uuid.uuid4()), "timestamp": ts,
            "entity": entity(name, ts),
            "check": {"metadata": {"name": check, "namespace": "default"}, "command": "true",
                      "interval": 10, "subscriptions": ["bench"], "handlers": ["sink"],
                      "status": status, "output": f"sent={now:.6f} status {status}", "executed": ts, "issued": ts,
                      "duration": 0.001}}).encode()

    async def agent(i: int) -> None:
        name = f"{args.prefix}-{i:05d}"
        host, port = endpoints[i % len(endpoints)]
        headers = [(b"Sensu-Namespace", b"default"), (b"Sensu-AgentName", name.encode()),
                   (b"Sensu-Subscriptions", b"bench"), (b"Accept", b"application/json"),
                   (b"Sensu-User", b"agent"), (b"Authorization", b"Basic " + token)]
        try:
            async with open_websocket(host, port, "/", use_ssl=False, extra_headers=headers,
                                      connect_timeout=60) as ws:
                await ws.get_message()  # entity_config
                state["connected"] += 1
                await ws.send_message(keepalive(name, 1))
                async with trio.open_nursery() as nursery:
                    async def drain() -> None:
                        while True:
                            await ws.get_message()

                    async def keepalives() -> None:
                        seq = 2
                        while True:
                            await trio.sleep(20)
                            await ws.send_message(keepalive(name, seq))
                            seq += 1

                    nursery.start_soon(drain)
                    nursery.start_soon(keepalives)
                    run = 0
                    while True:
                        if rate[0] <= 0:
                            await changed[0].wait()
                            continue
                        every = args.count / rate[0]
                        # open loop on a fixed schedule with a random phase per agent
                        await trio.sleep(random.uniform(0, every))
                        next_at = trio.current_time()
                        current = rate[0]
                        while rate[0] == current:
                            check = f"bench-{run % args.checks}"
                            status = (run // args.checks) % 2
                            await ws.send_message(result(name, check, status))
                            state["sent"] += 1
                            run += 1
                            next_at += every
                            with trio.move_on_at(next_at):
                                await changed[0].wait()
        except (OSError, HandshakeError, ConnectionClosed) as exc:
            state["failed" if not state["connected"] else "closed"] += 1
            emit({"error": f"{name}: {exc!r}"})

    async def commands(nursery: trio.Nursery) -> None:
        stdin = trio.lowlevel.FdStream(os.dup(0))
        buf = b""
        while True:
            chunk = await stdin.receive_some(4096)
            if not chunk:
                nursery.cancel_scope.cancel()
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                cmd = line.decode().split()
                if cmd[0] == "rate":
                    rate[0] = float(cmd[1])
                    changed[0].set()
                    changed[0] = trio.Event()
                elif cmd[0] == "stats":
                    emit({"stats": state})
                elif cmd[0] == "stop":
                    nursery.cancel_scope.cancel()
                    return

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(commands, nursery)
            for i in range(args.first, args.first + args.count):
                nursery.start_soon(agent, i)
                await trio.sleep(0.002)
            while state["connected"] + state["failed"] < args.count:
                await trio.sleep(0.05)
            emit({"connected": state["connected"], "failed": state["failed"]})

    trio.run(main)


# ---------------------------------------------------------------------------- driver

class Child:
    def __init__(self, argv: list[str]) -> None:
        self.proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *argv], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, bufsize=1, cwd=str(REPO))

    def send(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def read(self, key: str, timeout: float = 300) -> Any:
        assert self.proc.stdout is not None
        deadline = time.time() + timeout
        while time.time() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                raise RuntimeError(f"child exited ({self.proc.poll()})")
            item = json.loads(line)
            if key in item:
                return item[key]
            if "error" in item:
                print(json.dumps(item), flush=True)
        raise TimeoutError(key)

    def close(self) -> None:
        try:
            self.send("stop")
        except OSError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def rss_mb(pid: int) -> float:
    return rss_kb(pid) / 1024


def run_cluster(count: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    import httpx
    import trio

    from tests.harness.agent import run_init
    from tests.harness.backend import BackendProcess, Cluster, make_cluster_nodes

    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    extra = ["--log-level", "warn"]
    nodes = ([BackendProcess("default", "127.0.0.1", tmp / "node", extra_args=extra)] if count == 1
             else make_cluster_nodes(tmp, count, extra_args=extra))
    children: list[Child] = []
    rows: list[dict[str, Any]] = []
    try:
        for node in nodes:
            node.start()

        async def healthy() -> None:
            async with httpx.AsyncClient() as client:
                await Cluster(nodes, client).wait_healthy(60)

        trio.run(healthy)
        init = run_init(nodes[0].api_url, "--cluster-admin-username", "admin", "--cluster-admin-password", "P@ssw0rd!")
        assert init.returncode == 0, init.stderr
        sink = Child(["sink", "--port", "0"])
        children.append(sink)
        port = sink.read("listening")
        with httpx.Client(timeout=10) as http:
            token = http.get(f"{nodes[0].api_url}/auth", auth=("admin", "P@ssw0rd!")).json()["access_token"]
            r = http.put(f"{nodes[0].api_url}/api/core/v2/namespaces/default/handlers/sink",
                         headers={"Authorization": f"Bearer {token}"},
                         json={"metadata": {"name": "sink", "namespace": "default"}, "type": "tcp",
                               "socket": {"host": "127.0.0.1", "port": port}, "timeout": 10})
            r.raise_for_status()
        endpoints = ",".join(f"{n.host}:{n.agent_port}" for n in nodes)
        per = [args.agents // args.procs + (1 if i < args.agents % args.procs else 0) for i in range(args.procs)]
        first = 0
        loads = []
        for n in per:
            loads.append(Child(["load", "--endpoints", endpoints, "--first", str(first), "--count", str(n),
                                "--checks", str(args.checks), "--prefix", "bench"]))
            first += n
        children.extend(loads)
        connected = sum(g.read("connected") for g in loads)
        pids = [n.proc.pid for n in nodes if n.proc]
        print(json.dumps({"nodes": count, "agents_connected": connected}), flush=True)

        def store_stats() -> tuple[int, int]:
            """Raft proposals (batches) and the operations in them, over every node."""
            batches = ops = 0
            with httpx.Client(timeout=5) as http:
                for n in nodes:
                    st = http.get(f"{n.debug_url}/debug/raft").json()["store"]
                    batches += st["batches"]
                    ops += st["ops"]
            return batches, ops

        def measure(rate: float, seconds: float, label: str) -> dict[str, Any]:
            for g in loads:
                g.send(f"rate {rate / len(loads)}")
            time.sleep(min(5.0, seconds / 3))  # warm up at this rate
            cpu0 = [cpu_s(p) for p in pids]
            gen0 = [cpu_s(g.proc.pid) for g in loads]
            sink0 = cpu_s(sink.proc.pid)
            b0, o0 = store_stats()
            t0 = time.time()
            time.sleep(seconds)
            t1 = time.time()
            cpu1 = [cpu_s(p) for p in pids]
            gen1 = [cpu_s(g.proc.pid) for g in loads]
            sink1 = cpu_s(sink.proc.pid)
            b1, o1 = store_stats()
            time.sleep(2.0)  # let events sent inside the window arrive
            sink.send(f"window {t0} {t1}")
            window = sink.read("window")
            sink.send(f"sent_between {t0} {t1}")
            delivered = sink.read("sent_between")
            dt = t1 - t0
            offered = rate * dt
            row = {
                "nodes": count, "phase": label, "offered_per_s": rate,
                "handled_per_s": round(window["count"] / dt, 1),
                "delivered_fraction": round(delivered / max(1.0, offered), 3),
                "p50_ms": round(window["p50_ms"], 1), "p99_ms": round(window["p99_ms"], 1),
                "p99_ms_by_second": window["p99_ms_by_second"], "over_1s": window["over_1s"],
                "slowest": window["slowest"][:5],
                "backend_cpu_pct": [round((c1 - c0) / dt * 100) for c1, c0 in zip(cpu1, cpu0)],
                "generator_cpu_pct": round(sum(c1 - c0 for c1, c0 in zip(gen1, gen0)) / dt * 100),
                "sink_cpu_pct": round((sink1 - sink0) / dt * 100),
                "raft_ops_per_event": round((o1 - o0) / max(1, window["count"]), 2),
                "ops_per_proposal": round((o1 - o0) / max(1, b1 - b0), 1),
                "backend_cpu_ms_per_event": round(sum(c1 - c0 for c1, c0 in zip(cpu1, cpu0)) / max(1, window["count"]) * 1e3, 2),
                "rss_mb": [round(rss_mb(p), 1) for p in pids],
                "loadavg_1m": round(os.getloadavg()[0], 1),
            }
            row["sustained"] = row["delivered_fraction"] >= SUSTAINED_FRACTION and row["p99_ms"] < P99_TARGET_MS
            print(json.dumps(row), flush=True)
            return row

        for rate in args.rates:
            rows.append(measure(rate, args.seconds, "rate"))
        if args.soak:
            samples = []
            for g in loads:
                g.send(f"rate {args.soak_rate / len(loads)}")
            t_end = time.time() + args.soak
            t_start = time.time()
            minutes: list[dict[str, Any]] = []  # latency of each minute of the soak, from the sink
            minute_start = t_start
            cpu_start = [cpu_s(p) for p in pids]
            while time.time() < t_end:
                samples.append({"t": round(time.time() - t_start), "rss_mb": [round(rss_mb(p), 1) for p in pids]})
                print(json.dumps({"soak": samples[-1]}), flush=True)
                time.sleep(10)
                if time.time() - minute_start >= 60:
                    now = time.time()
                    sink.send(f"window {minute_start} {now}")
                    w = sink.read("window")
                    minutes.append({"t": round(now - t_start), "handled_per_s": round(w["count"] / (now - minute_start), 1),
                                    "p50_ms": round(w["p50_ms"], 1), "p99_ms": round(w["p99_ms"], 1),
                                    "max_ms": round(w["max_ms"] or 0, 1), "over_1s": w["over_1s"],
                                    "slowest": w["slowest"][:5]})
                    print(json.dumps({"soak_minute": minutes[-1]}), flush=True)
                    minute_start = now
            soak_cpu = sum(cpu_s(p) for p in pids) - sum(cpu_start)
            soak_elapsed = time.time() - t_start
            time.sleep(2.0)
            sink.send(f"sent_between {t_start} {t_start + args.soak}")
            soak_delivered = sink.read("sent_between") / max(1.0, args.soak_rate * args.soak)
            row = measure(args.soak_rate, min(30.0, args.seconds), "soak-end")
            row["soak_delivered_fraction"] = round(soak_delivered, 4)
            row["soak_backend_cpu_pct"] = round(soak_cpu / soak_elapsed * 100)
            row["soak_minutes"] = minutes
            first_rss = samples[min(3, len(samples) - 1)]["rss_mb"]  # after the first 30 s of warm-up
            row["soak_s"] = args.soak
            row["soak_rss_mb_at_30s"] = first_rss
            row["soak_rss_mb_end"] = samples[-1]["rss_mb"]
            rows.append(row)
        for g in loads:
            g.send("stats")
            print(json.dumps({"generator": g.read("stats")}), flush=True)
        return rows
    finally:
        for child in children:
            child.close()
        for node in nodes:
            node.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd")
    s = sub.add_parser("sink", help="(internal) the handler's TCP target")
    s.add_argument("--port", type=int, default=0)
    ld = sub.add_parser("load", help="(internal) one load-generator process")
    ld.add_argument("--endpoints", required=True)
    ld.add_argument("--first", type=int, default=0)
    ld.add_argument("--count", type=int, default=100)
    ld.add_argument("--checks", type=int, default=5)
    ld.add_argument("--prefix", default="bench")
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--checks", type=int, default=5, help="check names per agent")
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes")
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per rate")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds at --soak-rate sampling RSS")
    parser.add_argument("--soak-rate", type=float, default=1000.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directories")
    args = parser.parse_args()
    if args.cmd == "sink":
        sink_main(args)
        return
    if args.cmd == "load":
        load_main(args)
        return
    print(json.dumps({"cpus": os.cpu_count()}), flush=True)
    rows = [row for count in args.nodes for row in run_cluster(count, args)]
    print()
    cols = ["nodes", "phase", "offered_per_s", "handled_per_s", "delivered_fraction", "p50_ms", "p99_ms",
            "sustained", "backend_cpu_pct", "backend_cpu_ms_per_event", "raft_ops_per_event", "ops_per_proposal",
            "generator_cpu_pct", "sink_cpu_pct", "rss_mb", "loadavg_1m"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    print(json.dumps({"results": rows}))


if __name__ == "__main__":
    main()
