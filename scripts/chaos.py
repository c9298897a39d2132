"""Kill -9 random members of a real three-node cluster under write load; no acknowledged write may be lost.

Sixteen writers put 16 KB values through the debug store API of whichever
node is up (so compactions, dumps and journal cuts happen every few seconds);
every few seconds one node is killed with SIGKILL and restarted. At the end
every acknowledged key must be readable on every node, and the nodes' logs
are searched for pysyncobj's own warnings about lost or truncated entries.

    python scripts/chaos.py                 # 240 s
    python scripts/chaos.py --seconds 60

Prints one JSON line; exits 1 when a key is missing.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path

import httpx
import trio

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.harness.backend import Cluster, make_cluster_nodes  # noqa: E402

VALUE = b"v" * 16384
WARNINGS = ("truncating already-applied", "exceeds journal end")


async def run(seconds: float, root: Path) -> dict[str, object]:
    async with httpx.AsyncClient(timeout=5.0) as client:
        cluster = Cluster(make_cluster_nodes(root, 3), client)
        for node in cluster.nodes:
            node.start()
        try:
            await cluster.wait_healthy(60)
            acked: set[str] = set()
            failed = kills = 0
            stop = trio.Event()

            async def writer(w: int) -> None:
                nonlocal failed
                i = 0
                while not stop.is_set():
                    node = random.choice([n for n in cluster.nodes if n.running] or cluster.nodes)
                    key = f"/chaos/{w:02}/{i:07}"
                    try:
                        r = await client.put(f"{node.debug_url}/debug/store/kv", params={"key": key}, content=VALUE)
                    except httpx.HTTPError:
                        r = None
                    if r is not None and r.status_code == 200:
                        acked.add(key)
                        i += 1
                    else:
                        failed += 1
                        await trio.sleep(0.05)

            async def killer() -> None:
                nonlocal kills
                while not stop.is_set():
                    await trio.sleep(random.uniform(2, 6))
                    victim = random.choice(cluster.nodes)
                    victim.kill()
                    kills += 1
                    await trio.sleep(random.uniform(0.2, 2))
                    victim.start()
                    await victim.wait_healthy(client, 60)

            async with trio.open_nursery() as nursery:
                for w in range(16):
                    nursery.start_soon(writer, w)
                nursery.start_soon(killer)
                await trio.sleep(seconds)
                stop.set()
            await cluster.wait_healthy(60)
            missing: dict[str, int] = {}
            for node in cluster.nodes:
                miss: set[str] = set()
                for _ in range(60):  # a restarted node may still be catching up
                    r = await client.get(f"{node.debug_url}/debug/store/range", params={"prefix": "/chaos/"},
                                         timeout=60)
                    miss = acked - {item["key"] for item in r.json()["items"]}
                    if not miss:
                        break
                    await trio.sleep(0.5)
                missing[node.name] = len(miss)
            logs = "\n".join(n.log() for n in cluster.nodes)
            return {"seconds": seconds, "acked": len(acked), "failed_attempts": failed, "kills": kills,
                    "missing": missing, "tracebacks": logs.count("Traceback"),
                    "warnings": {w: logs.count(w) for w in WARNINGS}}
        finally:
            cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=240.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sensu-chaos-") as tmp:
        result = trio.run(run, args.seconds, Path(tmp))
    print(json.dumps(result))
    sys.exit(1 if any(result["missing"].values()) else 0)  # type: ignore[union-attr]


if __name__ == "__main__":
    main()
