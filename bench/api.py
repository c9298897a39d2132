"""Benchmark of the REST API: GET and PUT of one check, 1/16/64 concurrent clients, 1 and 3 nodes.

Who runs where (three kinds of process, none shared):

* **backends**: real ``sensu-backend start`` processes, started with the test harness
  (``tests.harness.backend``), seeded with ``sensu-backend init``;
* **this driver**: starts the backends, logs in, creates the check, starts the load
  generators, merges their latencies and prints the results;
* **load generators**: ``python bench/api.py worker ...`` processes, each a trio loop
  with one ``httpx.AsyncClient`` running its share of the clients (each client is a task
  doing one request at a time on a keep-alive connection). ``--workers`` sets how many;
  with more than one, clients are dealt round-robin over them.

Every measurement is bounded by ``--seconds`` (after a short warm-up). Clients are dealt
round-robin over the nodes' API URLs, so "3 nodes" means the load is spread over the
whole cluster. Writes are PUTs of the same check (a full replacement: one Raft entry
per PUT, group-committed when concurrent). One JSON line per measurement, then a table.

    python bench/api.py                                   # 1 and 3 nodes, GET and PUT, 1/16/64 clients
    python bench/api.py --nodes 1 --ops GET --clients 64 --seconds 10 --workers 2

CPU columns: seconds of CPU used per second of wall time by all backends together
("server") and by all load generators together ("client"); on the 2-core standard
machine their sum cannot exceed 2.0, which is how to tell who saturates first.
"CPU ms/req" divides CPU time (less the backends' idle baseline, measured first) by
answered requests: it changes least when other processes share the machine, and
1000 / (server CPU ms/req) is the one-core ceiling.
``--ops VERSION`` (``GET /version``: no auth, no store, no RBAC) measures the HTTP
stack alone, so the difference to ``GET`` is what our handler path costs.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

CHECK_NAME = "bench-check"
CHECK_PATH = f"/api/core/v2/namespaces/default/checks/{CHECK_NAME}"
ADMIN = ("admin", "P@ssw0rd!")
OPS = ["GET", "PUT", "VERSION"]


def check_body(n: int) -> dict[str, Any]:
    """The PUT body; ``n`` varies the command so every PUT is a real change."""
    return {"metadata": {"name": CHECK_NAME, "namespace": "default"}, "command": f"check-cpu.sh -w {n % 100}",
            "interval": 60, "subscriptions": ["bench"], "publish": False, "handlers": []}


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


# ---------------------------------------------------------------------------- load generator process

def worker_main(args: argparse.Namespace) -> None:
    """One load-generator process: ``clients`` tasks, warm-up, wait for "go" on stdin, run, report."""
    import httpx
    import trio

    urls: list[str] = args.urls.split(",")
    headers = {"Authorization": f"Bearer {args.token}"}

    async def main() -> None:
        limits = httpx.Limits(max_connections=args.clients, max_keepalive_connections=args.clients)
        async with httpx.AsyncClient(limits=limits, timeout=30.0, headers=headers) as client:
            async def one(i: int, n: int) -> tuple[float, int]:
                base = urls[i % len(urls)]
                started = time.perf_counter()
                if args.op == "VERSION":
                    r = await client.get(base + "/version")
                elif args.op == "GET":
                    r = await client.get(base + CHECK_PATH)
                else:
                    r = await client.put(base + CHECK_PATH, json=check_body(n))
                await r.aread()
                return time.perf_counter() - started, r.status_code

            # Warm-up: open every connection and let the server settle.
            async with trio.open_nursery() as nursery:
                for i in range(args.clients):
                    async def warm(i: int = i) -> None:
                        for n in range(args.warmup):
                            await one(i, n)
                    nursery.start_soon(warm)
            print(json.dumps({"ready": True}), flush=True)
            await trio.to_thread.run_sync(sys.stdin.readline)  # "go" from the driver: all start together

            latencies: list[float] = []
            errors: dict[str, int] = {}
            deadline = time.perf_counter() + args.seconds
            cpu0 = time.process_time()
            t0 = time.perf_counter()

            async def client_task(i: int) -> None:
                n = 0
                while time.perf_counter() < deadline and (args.max_requests <= 0 or len(latencies) < args.max_requests):
                    n += 1
                    try:
                        seconds, status = await one(i, n)
                    except httpx.HTTPError as exc:
                        errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                        continue
                    if 200 <= status < 300:
                        latencies.append(seconds)
                    else:
                        errors[str(status)] = errors.get(str(status), 0) + 1

            async with trio.open_nursery() as nursery:
                for i in range(args.clients):
                    nursery.start_soon(client_task, args.first_client + i)
            elapsed = time.perf_counter() - t0
            print(json.dumps({"latencies": [round(x, 6) for x in latencies], "errors": errors,
                              "elapsed": elapsed, "cpu": time.process_time() - cpu0}), flush=True)

    trio.run(main)


# ---------------------------------------------------------------------------- driver

def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (and its reaped children) from /proc, in seconds."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    # fields[0] is state (field 3); utime, stime are fields 14, 15 -> indexes 11, 12
    return (int(fields[11]) + int(fields[12])) / ticks


def start_backends(count: int, root: Path) -> list[Any]:
    """Start ``count`` nodes with the harness, wait for health, run init once; returns the nodes."""
    import httpx
    import trio

    from tests.harness.backend import BackendProcess, make_cluster_nodes

    if count == 1:
        (root / "node").mkdir(parents=True, exist_ok=True)
        nodes = [BackendProcess("default", "127.0.0.1", root / "node" / "state", debug=False)]
    else:
        nodes = make_cluster_nodes(root, count)
        for n in nodes:
            n.debug = False
    for n in nodes:
        n.start()

    async def wait() -> None:
        async with httpx.AsyncClient(timeout=10.0) as client:
            for n in nodes:
                await n.wait_healthy(client, 60.0)

    try:
        trio.run(wait)
        init = subprocess.run(
            [sys.executable, "-m", "backend.cli", "init", "--api-url", nodes[0].api_url, "--timeout", "30s",
             "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]],
            capture_output=True, text=True, timeout=90, cwd=str(REPO),
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if init.returncode != 0:
            raise SystemExit(f"sensu-backend init failed: {init.stderr}")
    except BaseException:
        for n in nodes:
            n.stop()
        raise
    return nodes


def login_and_seed(nodes: list[Any]) -> str:
    """A fresh access token (5 minute lifetime, so one per measurement) and the check to hit."""
    import httpx

    with httpx.Client(timeout=30.0) as client:
        r = client.get(f"{nodes[0].api_url}/auth", auth=ADMIN)
        r.raise_for_status()
        token: str = r.json()["access_token"]
        r = client.put(nodes[0].api_url + CHECK_PATH, json=check_body(0), headers={"Authorization": f"Bearer {token}"})
        if r.status_code not in (200, 201):
            raise SystemExit(f"PUT {CHECK_PATH}: {r.status_code} {r.text}")
        # The check must be readable on every node before GETs are spread over them.
        deadline = time.monotonic() + 30
        for n in nodes:
            while client.get(n.api_url + CHECK_PATH, headers={"Authorization": f"Bearer {token}"}).status_code != 200:
                if time.monotonic() > deadline:
                    raise SystemExit(f"{CHECK_PATH} not replicated to {n.name}")
                time.sleep(0.05)
    return token


def idle_server_cpu(nodes: list[Any], seconds: float = 3.0) -> float:
    """CPU seconds per second the backends burn with no client (Raft ticks, timers), to subtract."""
    before = sum(proc_cpu_seconds(n.proc.pid) for n in nodes)
    time.sleep(seconds)
    return (sum(proc_cpu_seconds(n.proc.pid) for n in nodes) - before) / seconds


def measure(nodes: list[Any], op: str, clients: int, workers: int, args: argparse.Namespace,
            idle_cpu: float = 0.0) -> dict[str, Any]:
    token = login_and_seed(nodes)
    urls = ",".join(n.api_url for n in nodes)
    workers = max(1, min(workers, clients))
    shares = [clients // workers + (1 if i < clients % workers else 0) for i in range(workers)]
    procs: list[subprocess.Popen[str]] = []
    first = 0
    try:
        for share in shares:
            procs.append(subprocess.Popen(
                [sys.executable, str(Path(__file__).resolve()), "worker", "--urls", urls, "--token", token,
                 "--op", op, "--clients", str(share), "--first-client", str(first), "--seconds", str(args.seconds),
                 "--warmup", str(args.warmup), "--max-requests", str(args.max_requests)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=str(REPO)))
            first += share
        for p in procs:
            line = p.stdout.readline() if p.stdout else ""
            if not line or not json.loads(line).get("ready"):
                raise SystemExit(f"load generator failed to start (exit {p.poll()})")
        server0 = sum(proc_cpu_seconds(n.proc.pid) for n in nodes)
        wall0 = time.perf_counter()
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = []
        for p in procs:
            out, _ = p.communicate(timeout=args.seconds + 120)
            results.append(json.loads(out.strip().splitlines()[-1]))
        wall = time.perf_counter() - wall0
        server_cpu = sum(proc_cpu_seconds(n.proc.pid) for n in nodes) - server0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
    latencies = [x for r in results for x in r["latencies"]]
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r["errors"].items():
            errors[k] = errors.get(k, 0) + v
    elapsed = max(r["elapsed"] for r in results)
    return {
        "bench": "api", "nodes": len(nodes), "op": op, "clients": clients, "workers": workers,
        "requests": len(latencies), "errors": errors, "seconds": round(elapsed, 3),
        "rps": round(len(latencies) / elapsed, 1) if elapsed else 0.0,
        "p50_ms": round(percentile(latencies, 50) * 1000, 2), "p99_ms": round(percentile(latencies, 99) * 1000, 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2) if latencies else float("nan"),
        "server_cpu": round(server_cpu / wall, 2), "client_cpu": round(sum(r["cpu"] for r in results) / wall, 2),
        # CPU per request is what a busy machine changes least: 1000 / this = a one-core ceiling.
        # Net of the idle baseline, so a three-node cluster's Raft heartbeats are not billed to requests.
        "server_idle_cpu": round(idle_cpu, 3),
        "server_cpu_ms_per_req": round(max(0.0, server_cpu - idle_cpu * wall) * 1000 / len(latencies), 3)
        if latencies else float("nan"),
        "client_cpu_ms_per_req": round(sum(r["cpu"] for r in results) * 1000 / len(latencies), 3)
        if latencies else float("nan"),
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print()
    print("| nodes | op | clients | workers | req/s | p50 ms | p99 ms | errors | server CPU | client CPU "
          "| server CPU ms/req | client CPU ms/req |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        errs = sum(r["errors"].values())
        print(f"| {r['nodes']} | {r['op']} | {r['clients']} | {r['workers']} | {r['rps']:,.0f} | {r['p50_ms']:.2f} "
              f"| {r['p99_ms']:.2f} | {errs} | {r['server_cpu']:.2f} | {r['client_cpu']:.2f} "
              f"| {r['server_cpu_ms_per_req']:.2f} | {r['client_cpu_ms_per_req']:.2f} |")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "worker":
        p = argparse.ArgumentParser()
        p.add_argument("worker")
        p.add_argument("--urls", required=True)
        p.add_argument("--token", required=True)
        p.add_argument("--op", choices=OPS, required=True)
        p.add_argument("--clients", type=int, required=True)
        p.add_argument("--first-client", type=int, default=0)
        p.add_argument("--seconds", type=float, required=True)
        p.add_argument("--warmup", type=int, default=5)
        p.add_argument("--max-requests", type=int, default=0)
        worker_main(p.parse_args())
        return

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, nargs="*", default=[1, 3], help="cluster sizes to measure")
    p.add_argument("--ops", nargs="*", default=["GET", "PUT"], choices=OPS,
                   help="VERSION (GET /version: no auth, no store) shows the HTTP stack's own ceiling")
    p.add_argument("--clients", type=int, nargs="*", default=[1, 16, 64])
    p.add_argument("--workers", type=int, default=1, help="load-generator processes per measurement")
    p.add_argument("--seconds", type=float, default=5.0, help="duration of each measurement")
    p.add_argument("--warmup", type=int, default=5, help="warm-up requests per client")
    p.add_argument("--max-requests", type=int, default=0, help="also stop a worker after this many (0: no cap)")
    args = p.parse_args()

    rows: list[dict[str, Any]] = []
    for count in args.nodes:
        with tempfile.TemporaryDirectory(prefix=f"bench-api-{count}-") as tmp:
            nodes = start_backends(count, Path(tmp))
            try:
                login_and_seed(nodes)
                idle = idle_server_cpu(nodes)
                for op in args.ops:
                    for clients in args.clients:
                        row = measure(nodes, op, clients, args.workers, args, idle)
                        print(json.dumps(row), flush=True)
                        rows.append(row)
            finally:
                for n in nodes:
                    n.stop()
    print_table(rows)


if __name__ == "__main__":
    main()
