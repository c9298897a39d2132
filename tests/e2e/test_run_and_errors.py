"""``make run``'s script, start-up failures (ports in use), and the fsync option, with real processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import trio

from tests.harness.backend import REPO, BackendProcess, free_port


async def test_run_script_starts_initializes_and_restarts_with_state(tmp_path: Path, client: httpx.AsyncClient) -> None:
    ports = {k: str(free_port()) for k in ("API", "AGENT", "DASHBOARD", "PEER", "AGENT_API")}
    env = {**os.environ, "SENSU_RUN_STATE": str(tmp_path / "state"),
           **{f"SENSU_RUN_{k}_PORT": v for k, v in ports.items()}}
    api = f"http://127.0.0.1:{ports['API']}"
    for attempt in range(2):
        out = tmp_path / f"run{attempt}.log"
        with open(out, "wb") as log:
            proc = subprocess.Popen(["bash", "scripts/run-local.sh"], cwd=str(REPO), env=env, stdout=log,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        try:
            with trio.fail_after(60):
                while "Press Ctrl-C to stop." not in out.read_text(errors="replace"):
                    assert proc.poll() is None, out.read_text()
                    await trio.sleep(0.1)
            text = out.read_text()
            assert api in text and "Username:   admin" in text and "Password:   P@ssw0rd!" in text
            r = await client.get(f"{api}/health")
            assert r.status_code == 200
            dashboard = f"http://127.0.0.1:{ports['DASHBOARD']}"
            assert f"Dashboard:  {dashboard}" in text
            r = await client.get(f"{dashboard}/")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
            assert "Agent:      local-agent" in text
            if attempt == 0:
                r = await client.get(f"{api}/auth", auth=("admin", "P@ssw0rd!"))
                # the local agent runs the demo check: a live event within seconds
                headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
                with trio.fail_after(60):
                    while True:
                        r = await client.get(f"{api}/api/core/v2/namespaces/default/events/local-agent/demo",
                                             headers=headers)
                        if r.status_code == 200 and "demo check OK" in r.json()["check"]["output"]:
                            break
                        await trio.sleep(0.2)
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            await trio.to_thread.run_sync(lambda: proc.wait(timeout=20))
    # the second start found the cluster already initialized and kept going
    assert "already initialized" in (tmp_path / "run1.log").read_text()


def start_and_wait_exit(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "backend.cli", "start", "--state-dir", str(tmp_path / "s"), *args],
                          capture_output=True, text=True, timeout=60, cwd=str(REPO),
                          env={**os.environ, "PYTHONPATH": str(REPO)})


async def test_api_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        peer = free_port()
        result = await trio.to_thread.run_sync(lambda: start_and_wait_exit([
            "--api-listen-address", f"127.0.0.1:{port}",
            "--etcd-initial-cluster", f"default=http://127.0.0.1:{peer}"], tmp_path))
    assert result.returncode != 0
    assert f"api-listen-address: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


async def test_peer_port_in_use_is_a_one_line_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = await trio.to_thread.run_sync(lambda: start_and_wait_exit([
            "--api-listen-address", f"127.0.0.1:{free_port()}",
            "--etcd-initial-cluster", f"default=http://127.0.0.1:{port}"], tmp_path))
    assert result.returncode != 0
    assert "etcd-listen-peer-urls: cannot listen on" in result.stderr
    assert "Traceback" not in result.stderr


async def test_deprecated_store_fsync_is_accepted_and_writes_survive_kill(tmp_path: Path,
                                                                        client: httpx.AsyncClient) -> None:
    node = BackendProcess("default", "127.0.0.1", tmp_path / "node", extra_args=["--store-fsync"])
    node.start()
    try:
        await node.wait_healthy(client)
        for i in range(20):
            r = await client.put(f"{node.debug_url}/debug/store/kv", params={"key": f"/f/{i}"}, content=b"v")
            assert r.status_code == 200
        node.kill()
        node.start()
        await node.wait_healthy(client)
        r = await client.get(f"{node.debug_url}/debug/store/range", params={"prefix": "/f/"})
        assert len(r.json()["items"]) == 20
        assert "store-fsync is deprecated" in node.log()
    finally:
        node.stop()


async def test_linearizable_read_through_a_follower(cluster3, client: httpx.AsyncClient) -> None:  # type: ignore[no-untyped-def]
    leader = await cluster3.leader()
    a, b = [n for n in cluster3.nodes if n is not leader]
    await client.put(f"{a.debug_url}/debug/store/kv", params={"key": "/lin"}, content=b"1")
    r = await client.get(f"{b.debug_url}/debug/store/kv", params={"key": "/lin", "linearizable": "true"})
    assert r.status_code == 200 and r.json()["value"] == "1"


async def test_unreadable_peer_tls_files_are_a_one_line_error(tmp_path: Path) -> None:
    peer = f"https://127.0.0.1:{free_port()}"
    result = await trio.to_thread.run_sync(lambda: start_and_wait_exit([
        "--api-listen-address", f"127.0.0.1:{free_port()}",
        "--etcd-peer-cert-file", str(tmp_path / "missing.pem"), "--etcd-peer-key-file", str(tmp_path / "missing.key"),
        "--etcd-initial-cluster", f"default={peer}", "--etcd-listen-peer-urls", peer,
        "--etcd-initial-advertise-peer-urls", peer], tmp_path))
    assert result.returncode != 0
    assert f"etcd-peer-cert-file: cannot use {tmp_path / 'missing.pem'}" in result.stderr
    assert "Traceback" not in result.stderr
