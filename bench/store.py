"""Benchmark of the replicated store with all its layers (bridge, msgpack, revisions, watches).

Each store node is a separate process (``python bench/store.py node ...``)
running the real ``cluster.store`` on loopback; the workload runs inside one
node's process so the figures are the store's, not an HTTP client's. The
driver prints one JSON line per measurement and a table at the end.

    python bench/store.py                 # 1 node and 3 nodes, every workload
    python bench/store.py --nodes 3 --seq 3000 --concurrent 64 --per-writer 500

Workloads: (a) one sequential writer, (b) N concurrent writers (group
commit), memory per 100k keys, and time from kill -9 of the leader to the
first acknowledged write through a survivor (median of several kills).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    k = min(len(values) - 1, max(0, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


# ---------------------------------------------------------------------------- node process

def node_main(args: argparse.Namespace) -> None:
    import trio

    from cluster.membership import Member, PeerTLS, RaftSettings
    from cluster.store import open_store

    members = tuple(Member(n, u) for n, u in (m.split("=", 1) for m in args.members.split(",")))
    own = next(m for m in members if m.name == args.name)
    tls = None
    if args.tls_dir:
        tls = PeerTLS(os.path.join(args.tls_dir, f"{args.name}.pem"), os.path.join(args.tls_dir, f"{args.name}.key"),
                      os.path.join(args.tls_dir, "ca.pem"), client_cert_auth=True)
    settings = RaftSettings(name=args.name, advertise_url=own.peer_url, listen_url=own.peer_url, members=members,
                            token="bench", state_dir=args.state_dir, fsync=not args.no_fsync, tls=tls)

    def emit(obj: dict) -> None:
        print(json.dumps(obj), flush=True)

    async def main() -> None:
        async with open_store(settings) as store:
            await store.wait_leader(30)
            emit({"ready": args.name, "leader": store.is_leader()})
            # commands from the driver on stdin, one JSON per line
            stdin = trio.lowlevel.FdStream(os.dup(0))
            buf = b""
            while True:
                chunk = await stdin.receive_some(65536)
                if not chunk:
                    return
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    cmd = json.loads(line)
                    emit(await run_cmd(store, cmd))

    async def run_cmd(store, cmd: dict) -> dict:  # type: ignore[no-untyped-def]
        kind = cmd["cmd"]
        value = b"x" * cmd.get("value_size", 100)
        if kind == "status":
            return {"status": store.is_leader(), "keys": store.count("/")}
        if kind == "seq":
            lat = []
            t0 = time.perf_counter()
            for i in range(cmd["n"]):
                t = time.perf_counter()
                await store.put(f"/seq/{args.name}/{i:08}", value)
                lat.append(time.perf_counter() - t)
            dt = time.perf_counter() - t0
            return {"workload": "sequential", "n": cmd["n"], "ops_s": cmd["n"] / dt,
                    "p50_ms": percentile(lat, 50) * 1e3, "p99_ms": percentile(lat, 99) * 1e3}
        if kind == "concurrent":
            lat: list[float] = []
            writers, per = cmd["writers"], cmd["per_writer"]

            async def writer(w: int) -> None:
                for i in range(per):
                    t = time.perf_counter()
                    await store.put(f"/conc/{args.name}/{w:04}/{i:08}", value)
                    lat.append(time.perf_counter() - t)

            before = dict(store.stats)
            t0 = time.perf_counter()
            async with trio.open_nursery() as nursery:
                for w in range(writers):
                    nursery.start_soon(writer, w)
            dt = time.perf_counter() - t0
            batches = store.stats["batches"] - before["batches"]
            return {"workload": f"concurrent-{writers}", "n": writers * per, "ops_s": writers * per / dt,
                    "p50_ms": percentile(lat, 50) * 1e3, "p99_ms": percentile(lat, 99) * 1e3,
                    "ops_per_raft_entry": (writers * per) / max(1, batches)}
        if kind == "fill":
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            n = cmd["n"]
            async with trio.open_nursery() as nursery:
                for w in range(64):
                    async def filler(w: int = w) -> None:
                        for i in range(w, n, 64):
                            await store.put(f"/fill/{i:08}", value)
                    nursery.start_soon(filler)
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return {"workload": "memory", "keys": n, "value_size": len(value),
                    "rss_growth_mb_per_100k": (rss1 - rss0) / 1024 * 100_000 / n}
        if kind == "probe":
            # write in a loop with short deadlines; report wall time of each success
            deadline = time.time() + cmd["seconds"]
            successes = []
            i = 0
            while time.time() < deadline:
                with trio.move_on_after(0.5):
                    try:
                        started = time.time()
                        await store.put(f"/probe/{args.name}/{i}", b"p")
                        successes.append((started, time.time()))
                    except Exception:
                        await trio.sleep(0.01)
                i += 1
            return {"probe": successes}
        return {"error": f"unknown command {kind}"}

    trio.run(main)


# ---------------------------------------------------------------------------- driver

class Node:
    def __init__(self, name: str, url: str, members: str, root: str, fsync: bool = True, tls_dir: str = "") -> None:
        self.name = name
        self.url = url
        cmd = [sys.executable, __file__, "node", "--name", name, "--members", members,
               "--state-dir", os.path.join(root, name)] + ([] if fsync else ["--no-fsync"])
        cmd += ["--tls-dir", tls_dir] if tls_dir else []
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     cwd=str(REPO), env={**os.environ, "PYTHONPATH": str(REPO)})
        self.ready: dict = {}

    def read(self) -> dict:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"{self.name} exited")
        return json.loads(line)

    def send(self, cmd: dict) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        self.proc.stdin.flush()

    def call(self, cmd: dict) -> dict:
        self.send(cmd)
        return self.read()

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_nodes(count: int, fsync: bool, tls: bool = False) -> tuple[list[Node], str]:
    root = tempfile.mkdtemp(prefix="store-bench-")
    urls = [f"http://127.0.0.1:{free_port()}" for _ in range(count)]
    members = ",".join(f"n{i}={u}" for i, u in enumerate(urls))
    tls_dir = ""
    if tls:
        from tests.harness.certs import issue_member_certificates

        tls_dir = os.path.join(root, "certs")
        issue_member_certificates(Path(tls_dir), {f"n{i}": "127.0.0.1" for i in range(count)})
    nodes = [Node(f"n{i}", urls[i], members, root, fsync, tls_dir) for i in range(count)]
    for node in nodes:  # all started first: none can elect a leader alone
        node.ready = node.read()
    return nodes, root


def leader_of(nodes: list[Node]) -> Node | None:
    for n in nodes:
        if n.proc.poll() is None and n.call({"cmd": "status"})["status"]:
            return n
    return None


def run_suite(count: int, args: argparse.Namespace) -> list[dict]:
    results = []
    nodes, _ = start_nodes(count, args.fsync, args.tls)
    try:
        leader = leader_of(nodes)
        follower = next((n for n in nodes if n is not leader), leader)
        for target, role in ([(leader, "leader"), (follower, "follower")] if count > 1 else [(leader, "leader")]):
            r = target.call({"cmd": "seq", "n": args.seq})
            results.append({"nodes": count, "via": role, **r})
            r = target.call({"cmd": "concurrent", "writers": args.concurrent, "per_writer": args.per_writer})
            results.append({"nodes": count, "via": role, **r})
        r = leader.call({"cmd": "fill", "n": args.memory_keys})
        results.append({"nodes": count, "via": "leader", **r})
    finally:
        for n in nodes:
            n.stop()
    return results


def run_failover(args: argparse.Namespace) -> dict:
    times = []
    for _ in range(args.failovers):
        nodes, _ = start_nodes(3, args.fsync, args.tls)
        try:
            leader = leader_of(nodes)
            survivor = next(n for n in nodes if n is not leader)
            survivor.send({"cmd": "probe", "seconds": 6})
            time.sleep(1.0)
            killed_at = time.time()
            leader.kill()
            probe = survivor.read()["probe"]
            # the first write *proposed* after the kill that was acknowledged
            after = [end for start, end in probe if start >= killed_at]
            if after:
                times.append(after[0] - killed_at)
        finally:
            for n in nodes:
                n.stop()
    return {"workload": "failover", "nodes": 3, "kills": args.failovers,
            "median_s": statistics.median(times) if times else None,
            "max_s": max(times) if times else None, "samples_s": [round(t, 3) for t in times]}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "node":
        p = argparse.ArgumentParser()
        p.add_argument("node")
        p.add_argument("--name")
        p.add_argument("--members")
        p.add_argument("--state-dir")
        p.add_argument("--no-fsync", action="store_true")
        p.add_argument("--tls-dir", default="")
        node_main(p.parse_args())
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, nargs="*", default=[1, 3])
    p.add_argument("--seq", type=int, default=3000)
    p.add_argument("--concurrent", type=int, default=64)
    p.add_argument("--per-writer", type=int, default=500)
    p.add_argument("--memory-keys", type=int, default=100_000)
    p.add_argument("--failovers", type=int, default=5)
    p.add_argument("--fsync-modes", nargs="+", choices=["on", "off"], default=["on"],
                   help="sync the journal before acknowledging (on, the default) or not (off: etcd-unsafe-no-fsync); "
                        "with both, each node count runs both, one after the other")
    p.add_argument("--peer-tls-modes", nargs="+", choices=["on", "off"], default=["off"],
                   help="TLS between members (etcd-peer-*, with client certificates) or plain TCP; with both, "
                        "each node count runs both, one after the other")
    args = p.parse_args()
    rows = []
    modes = [(f, t) for f in args.fsync_modes for t in args.peer_tls_modes]
    for count in args.nodes:
        for fsync, tls in modes:
            if tls == "on" and count == 1:
                continue  # no peers, nothing to encrypt
            args.fsync, args.tls = fsync == "on", tls == "on"
            for row in run_suite(count, args):
                row["fsync"], row["tls"] = fsync, tls
                print(json.dumps(row), flush=True)
                rows.append(row)
    if 3 in args.nodes and args.failovers:
        for fsync, tls in modes:
            args.fsync, args.tls = fsync == "on", tls == "on"
            row = {**run_failover(args), "fsync": fsync, "tls": tls}
            print(json.dumps(row), flush=True)
            rows.append(row)
    print()
    print(f"{'nodes':>5} {'fsync':>5} {'tls':>4} {'via':>8} {'workload':>14} {'ops/s':>10} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'other':>20}")
    for r in rows:
        other = ""
        if "ops_per_raft_entry" in r:
            other = f"{r['ops_per_raft_entry']:.1f} ops/entry"
        if "rss_growth_mb_per_100k" in r:
            other = f"{r['rss_growth_mb_per_100k']:.1f} MB/100k keys"
        if r.get("workload") == "failover":
            print(f"{3:>5} {r['fsync']:>5} {r['tls']:>4} {'':>8} {'failover':>14} median {r['median_s']:.3f}s "
                  f"max {r['max_s']:.3f}s")
            continue
        print(f"{r['nodes']:>5} {r['fsync']:>5} {r['tls']:>4} {r.get('via',''):>8} {r['workload']:>14} {r.get('ops_s', 0):>10.0f} "
              f"{r.get('p50_ms', 0):>8.2f} {r.get('p99_ms', 0):>8.2f} {other:>20}")


if __name__ == "__main__":
    main()
