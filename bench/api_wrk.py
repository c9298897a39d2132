"""REST API throughput with wrk (a C load generator) instead of httpx.

Why a second API bench: with 64 connections, ``bench/api.py``'s httpx clients
need ~1.9 ms of CPU per request, more than the server, so on a 2-core machine
they take most of the CPU and the server is measured starved. wrk costs a
small fraction of that, which leaves the cores to the backend.

Starts the backends with ``bench/api.py``'s helpers (one node, or three with
the connections dealt over the nodes by one wrk per node), seeds the check,
and runs ``wrk -t2 -c<clients> -d<seconds>s --latency`` with the admin's Bearer
token. ``--ops``: ``GET`` and ``PUT`` of
``/api/core/v2/namespaces/default/checks/bench-check`` (each PUT a full
CheckConfig with a different command, so every PUT is a real change and a
Raft write), ``VERSION`` (``/version``: no auth, no store). Prints requests/s,
p50/p99 (wrk's latency distribution) and the server CPU per request. Needs
Debian's ``wrk`` (``apt-get install wrk``).

``--floor`` first measures the HTTP server itself: hypercorn with its trio
worker serving a bare ASGI app that answers ``{}`` (bench/http_floor_app.py),
in one process like the backend's API. Nothing a route does can be faster
than that, so it is the ceiling of one node's API on one core.

Usage::

    .venv/bin/python bench/api_wrk.py --floor --nodes 1 3 --ops VERSION GET PUT --clients 16 64 --seconds 10
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from api import CHECK_PATH, idle_server_cpu, login_and_seed, proc_cpu_seconds, start_backends  # noqa: E402

_UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text.strip())
    if not m:
        return float("nan")
    return float(m.group(1)) * _UNIT_MS[m.group(2)]


#: wrk script for PUT: a different command in every body (so each PUT is a change), same shape as bench/api.py's.
PUT_SCRIPT = """
counter = 0
request = function()
  counter = counter + 1
  local body = '{"metadata":{"name":"bench-check","namespace":"default"},"command":"check-cpu.sh -w '
    .. (counter % 100) .. '","interval":60,"subscriptions":["bench"],"publish":false,"handlers":[]}'
  return wrk.format("PUT", nil, {["Content-Type"] = "application/json"}, body)
end
statuses = {}
response = function(status, headers, body)
  if status ~= 200 and status ~= 201 and not statuses[status] then
    statuses[status] = true
    io.stderr:write("PUT answered " .. status .. ": " .. body .. "\n")
  end
end
"""


def run_wrk(url: str, token: str, clients: int, seconds: float, script: str | None = None) -> subprocess.Popen[str]:
    cmd = ["wrk", "-t2", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "5s"]
    if token:
        cmd += ["-H", f"Authorization: Bearer {token}"]
    if script:
        cmd += ["-s", script]
    return subprocess.Popen(cmd + [url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def measure_floor(clients: list[int], seconds: float) -> list[dict[str, Any]]:
    """hypercorn (trio worker, one process) serving bench/http_floor_app.py: the HTTP stack alone."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "hypercorn", "-k", "trio", "-w", "0", "-b", f"127.0.0.1:{port}",
                             "--log-level", "warning", "http_floor_app:app"], cwd=str(REPO / "bench"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rows = []
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise SystemExit("hypercorn did not start")
                time.sleep(0.1)
        for c in clients:
            cpu0 = proc_cpu_seconds(proc.pid)
            t0 = time.perf_counter()
            out = run_wrk(f"http://127.0.0.1:{port}/", "", c, seconds).communicate(timeout=seconds + 60)[0]
            dt = time.perf_counter() - t0
            cpu = proc_cpu_seconds(proc.pid) - cpu0
            p = parse(out)
            row = {"nodes": "floor", "op": "bare ASGI", "clients": c, "req_per_s": round(p["requests"] / seconds),
                   "p50_ms": round(p["p50_ms"], 2), "p99_ms": round(p["p99_ms"], 2),
                   "errors": int(p["errors"] + p["socket_errors"]), "server_cpu_cores": round(cpu / dt, 2),
                   "server_cpu_ms_per_req": round(cpu / max(1.0, p["requests"]) * 1e3, 2)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return rows


def parse(output: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for label, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        m = re.search(rf"^\s+{re.escape(label)}\s+(\S+)", output, re.M)
        out[key] = _ms(m.group(1)) if m else float("nan")
    m = re.search(r"^\s*(\d+) requests in", output, re.M)
    out["requests"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    out["errors"] = float(m.group(1)) if m else 0.0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    out["socket_errors"] = float(sum(int(g) for g in m.groups())) if m else 0.0
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--clients", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--ops", nargs="+", default=["GET"], choices=["GET", "PUT", "VERSION"])
    parser.add_argument("--floor", action="store_true", help="first measure bare hypercorn (the HTTP stack alone)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (Debian: apt-get install wrk)")
    rows: list[dict[str, Any]] = measure_floor(args.clients, args.seconds) if args.floor else []
    script_dir = Path(tempfile.mkdtemp(prefix="bench-api-wrk-lua-"))
    put_script = script_dir / "put.lua"
    put_script.write_text(PUT_SCRIPT)
    for count in args.nodes:
        root = Path(tempfile.mkdtemp(prefix="bench-api-wrk-"))
        nodes = start_backends(count, root)
        try:
            idle = idle_server_cpu(nodes)
            for op, clients in [(op, c) for op in args.ops for c in args.clients]:
                token = login_and_seed(nodes)
                per = [clients // count + (1 if i < clients % count else 0) for i in range(count)]
                path = "/version" if op == "VERSION" else CHECK_PATH
                script = str(put_script) if op == "PUT" else None
                cpu0 = sum(proc_cpu_seconds(n.proc.pid) for n in nodes)
                t0 = time.perf_counter()
                procs = [run_wrk(n.api_url + path, token, c, args.seconds, script) for n, c in zip(nodes, per) if c]
                outputs = [p.communicate(timeout=args.seconds + 60)[0] for p in procs]
                dt = time.perf_counter() - t0
                cpu = sum(proc_cpu_seconds(n.proc.pid) for n in nodes) - cpu0 - idle * dt
                parsed = [parse(o) for o in outputs]
                if not any(p["requests"] for p in parsed):
                    print(outputs[0], file=sys.stderr)
                requests = sum(p["requests"] for p in parsed)
                row = {
                    "nodes": count, "op": op, "clients": clients,
                    "req_per_s": round(requests / args.seconds),
                    "p50_ms": round(max(p["p50_ms"] for p in parsed), 2),
                    "p99_ms": round(max(p["p99_ms"] for p in parsed), 2),
                    "errors": int(sum(p["errors"] + p["socket_errors"] for p in parsed)),
                    "server_cpu_cores": round(cpu / dt, 2),
                    "server_cpu_ms_per_req": round(cpu / max(1.0, requests) * 1e3, 2),
                }
                print(json.dumps(row), flush=True)
                if row["errors"]:
                    print("\n".join(line for o in outputs for line in o.splitlines() if "answered" in line),
                          file=sys.stderr)
                rows.append(row)
        finally:
            for n in nodes:
                n.stop()
            shutil.rmtree(root, ignore_errors=True)
    shutil.rmtree(script_dir, ignore_errors=True)
    cols = ["nodes", "op", "clients", "req_per_s", "p50_ms", "p99_ms", "errors", "server_cpu_cores", "server_cpu_ms_per_req"]
    print()
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
