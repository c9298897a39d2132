"""How fast real ``sensu-backend`` processes start, form a cluster and come back with state.

Every figure is wall time from spawning the process(es) to a condition seen on
the REST API, polled every 10 ms:

* ``1 node, fresh``: an empty state dir until ``/health`` answers 200;
* ``init``: ``sensu-backend init`` (creates the first admin) from spawn to exit;
* ``3 nodes, fresh``: three empty state dirs started together until every node
  answers 200 and, on every node, every member is ``Healthy`` (the whole mesh);
* ``restart after SIGTERM`` / ``restart after kill -9``: one node holding
  ``--keys`` keys of ``--value-bytes`` each, from spawn until ``/health`` is 200
  and the last key written is readable (the dump and the journal are read);
* RSS of a fresh idle node once healthy.

    python bench/startup.py                     # 5 rounds, 20,000 keys of 1 KB
    python bench/startup.py --rounds 3 --keys 50000
    python bench/startup.py --cases fresh --repo ../other-checkout   # another tree's code

``--repo`` runs the processes from another checkout (its harness, its code),
so two versions can be compared in one run, interleaved.

Prints one JSON line per sample and a table of median / min / max.
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

import httpx

REPO = Path(__file__).resolve().parents[1]
if "--repo" in sys.argv:  # the tree whose harness and code run, before anything imports them
    REPO = Path(sys.argv[sys.argv.index("--repo") + 1]).resolve()
sys.path.insert(0, str(REPO))

from tests.harness.backend import BackendProcess, make_cluster_nodes  # noqa: E402

POLL_S = 0.01
ADMIN = ("admin", "P@ssw0rd!")


def emit(row: dict[str, Any]) -> None:
    print(json.dumps(row), flush=True)


def wait(predicate: Any, what: str, timeout: float = 120.0) -> float:
    """Seconds until ``predicate()`` is true (polled every 10 ms); fails after ``timeout``."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def healthy(client: httpx.Client, node: BackendProcess, *, whole_mesh: bool = False) -> bool:
    if node.proc is not None and node.proc.poll() is not None:
        raise SystemExit(f"{node.name} exited with {node.proc.returncode}:\n{node.log()}")
    try:
        r = client.get(f"{node.api_url}/health", timeout=2.0)
    except httpx.HTTPError:
        return False
    if r.status_code != 200:
        return False
    return not whole_mesh or all(m["Healthy"] for m in r.json()["ClusterHealth"])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def one_fresh(root: Path, client: httpx.Client, round_no: int) -> list[dict[str, Any]]:
    node = BackendProcess("default", "127.0.0.1", root / f"one-{round_no}" / "state", debug=False)
    node.state_dir.parent.mkdir(parents=True)
    t0 = time.monotonic()
    node.start()
    try:
        wait(lambda: healthy(client, node), "a fresh node")
        started = time.monotonic() - t0
        t1 = time.monotonic()
        init = subprocess.run(
            [sys.executable, "-m", "backend.cli", "init", "--api-url", node.api_url, "--timeout", "30s",
             "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]],
            capture_output=True, text=True, timeout=90, cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        if init.returncode != 0:
            raise SystemExit(f"sensu-backend init failed: {init.stderr}")
        init_s = time.monotonic() - t1
        time.sleep(1.0)
        rss = rss_mb(node.proc.pid)  # type: ignore[union-attr]
    finally:
        node.stop()
    return [
        {"case": "1 node, fresh: spawn -> /health 200", "seconds": started},
        {"case": "init (first admin): spawn -> exit", "seconds": init_s},
        {"case": "1 node, fresh: RSS 1 s after healthy (MB)", "value": rss},
    ]


def three_fresh(root: Path, client: httpx.Client, round_no: int) -> list[dict[str, Any]]:
    base = root / f"three-{round_no}"
    base.mkdir(parents=True)
    nodes = make_cluster_nodes(base, 3)
    for n in nodes:
        n.debug = False
    t0 = time.monotonic()
    for n in nodes:
        n.start()
    try:
        wait(lambda: all(healthy(client, n) for n in nodes), "three fresh nodes with quorum")
        quorum = time.monotonic() - t0
        wait(lambda: all(healthy(client, n, whole_mesh=True) for n in nodes), "the whole mesh")
        mesh = time.monotonic() - t0
    finally:
        for n in nodes:
            n.stop()
    return [
        {"case": "3 nodes, fresh: spawn -> every node /health 200", "seconds": quorum},
        {"case": "3 nodes, fresh: spawn -> every member Healthy on every node", "seconds": mesh},
    ]


def fill(node: BackendProcess, keys: int, value_bytes: int) -> None:
    """Write ``keys`` keys through the node's debug store API, 64 requests in flight."""
    import trio

    value = ("x" * value_bytes).encode()

    async def writer(http: httpx.AsyncClient, start: int, step: int) -> None:
        for i in range(start, keys, step):
            r = await http.put(f"{node.debug_url}/debug/store/kv", params={"key": f"/bench/{i:08}"}, content=value)
            r.raise_for_status()

    async def main() -> None:
        async with httpx.AsyncClient(timeout=30.0) as http, trio.open_nursery() as nursery:
            for w in range(64):
                nursery.start_soon(writer, http, w, 64)

    trio.run(main)


def restarts(root: Path, client: httpx.Client, args: argparse.Namespace) -> list[dict[str, Any]]:
    node = BackendProcess("default", "127.0.0.1", root / "restart" / "state")
    node.state_dir.parent.mkdir(parents=True)
    node.start()
    rows: list[dict[str, Any]] = []
    last_key = f"/bench/{args.keys - 1:08}"

    def ready() -> bool:
        if not healthy(client, node):
            return False
        try:
            r = client.get(f"{node.debug_url}/debug/store/kv", params={"key": last_key}, timeout=2.0)
        except httpx.HTTPError:
            return False
        return r.status_code == 200

    try:
        wait(lambda: healthy(client, node), "the node to fill")
        t0 = time.monotonic()
        fill(node, args.keys, args.value_bytes)
        emit({"filled_keys": args.keys, "value_bytes": args.value_bytes, "seconds": time.monotonic() - t0})
        for round_no in range(args.rounds):
            for how in ("SIGTERM", "kill -9"):
                if how == "SIGTERM":
                    node.stop()
                else:
                    node.kill()
                files = {p.name: p.stat().st_size for p in (node.state_dir / "raft").glob("raft.*")}
                t1 = time.monotonic()
                node.start()
                wait(ready, f"restart after {how}")
                row = {"case": f"restart after {how}, {args.keys:,} keys of {args.value_bytes} B: "
                               "spawn -> /health 200 and last key readable",
                       "seconds": time.monotonic() - t1, "round": round_no, "state_files_bytes": files,
                       "repo": str(REPO)}
                emit(row)
                rows.append(row)
                time.sleep(1.0)
    finally:
        node.stop()
    return rows


def summarize(rows: list[dict[str, Any]]) -> None:
    by_case: dict[str, list[float]] = {}
    for row in rows:
        by_case.setdefault(row["case"], []).append(row.get("seconds", row.get("value")))
    print()
    print("| case | samples | median | min | max |")
    print("|---|---|---|---|---|")
    for case, values in by_case.items():
        def fmt(v: float, mb: bool = "MB" in case) -> str:
            return f"{v:.0f}" if mb else f"{v:.2f} s"

        print(f"| {case} | {len(values)} | {fmt(statistics.median(values))} | {fmt(min(values))} | {fmt(max(values))} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="samples of each case")
    parser.add_argument("--keys", type=int, default=20_000, help="keys held by the restarted node")
    parser.add_argument("--value-bytes", type=int, default=1024)
    parser.add_argument("--cases", nargs="+", choices=("fresh", "restart"), default=["fresh", "restart"])
    parser.add_argument("--repo", default=str(REPO), help="checkout whose code runs (default: this one)")
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="sensu-startup-") as tmp, httpx.Client() as client:
        root = Path(tmp)
        for round_no in range(args.rounds if "fresh" in args.cases else 0):
            for case in (one_fresh, three_fresh):
                for row in case(root, client, round_no):
                    row["round"] = round_no
                    row["repo"] = str(REPO)
                    emit(row)
                    rows.append(row)
        if "restart" in args.cases:
            rows += restarts(root, client, args)
    summarize(rows)


if __name__ == "__main__":
    main()
