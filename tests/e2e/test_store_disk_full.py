"""A full disk under the state dir: writes are refused with a clear error, nothing acknowledged is lost.

The node's ``--state-dir`` is a small tmpfs that the test mounts (root, as
``make test`` runs) and fills with a file of its own. Through the REST API:

* writes go on until the journal's reserve cannot be renewed, then are
  refused with ``507`` and a JSON message saying the disk is full;
* reads still answer;
* once the filler is deleted, writes are accepted again, without a restart;
* after ``kill -9`` and a restart, every acknowledged write is there.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest
import trio

from tests.harness.agent import ADMIN, run_init
from tests.harness.backend import BackendProcess

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.timeout(240)]

TMPFS_MB = 48
VALUE_KB = 200  # each write is one Raft entry of about this size


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.fail("mounting a tmpfs needs root (make test runs as root)")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_MB}m", "tmpfs", str(mount)], check=True, timeout=20)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False, timeout=20)


def fill(disk: Path) -> Path:
    """Take every free block of ``disk`` with one file."""
    filler = disk / "filler"
    stat = os.statvfs(disk)
    free = stat.f_bavail * stat.f_frsize
    fd = os.open(filler, os.O_CREAT | os.O_WRONLY)
    try:
        chunk = 1 << 20
        while free > 0:
            try:
                os.posix_fallocate(fd, os.fstat(fd).st_size, min(chunk, free))
            except OSError:
                if chunk == 4096:
                    break
                chunk //= 2
                continue
            free -= chunk
    finally:
        os.close(fd)
    return filler


def mutator(name: str, value: str) -> dict[str, object]:
    return {"metadata": {"name": name, "namespace": "default"}, "command": value}


async def test_a_full_disk_refuses_writes_clearly_and_loses_nothing(tmp_path: Path, small_disk: Path,
                                                                    client: httpx.AsyncClient) -> None:
    node = BackendProcess("default", "127.0.0.1", small_disk / "state")
    node.log_path = tmp_path / "node.log"  # off the small disk
    node.start()
    try:
        await node.wait_healthy(client, 60)
        init = await trio.to_thread.run_sync(lambda: run_init(
            node.api_url, "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
        assert init.returncode == 0, init.stderr
        r = await client.get(f"{node.api_url}/auth", auth=ADMIN)
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        base = f"{node.api_url}/api/core/v2/namespaces/default/mutators"
        acked: dict[str, str] = {}

        async def write(i: int) -> httpx.Response:
            name, value = f"m{i}", f"echo {i} " + "x" * (VALUE_KB * 1024)
            r = await client.put(f"{base}/{name}", json=mutator(name, value), headers=headers, timeout=30)
            if r.status_code in (200, 201):
                acked[name] = value
            return r

        filler = fill(small_disk)
        refused = None
        for i in range(400):
            r = await write(i)
            if r.status_code != 201:
                refused = r
                break
        assert refused is not None, "the disk never filled"
        assert refused.status_code == 507, refused.text
        assert "no space left for the Raft journal" in refused.json()["message"]
        assert acked, "nothing was written before the disk filled"
        assert "disk of the Raft journal" in node.log() and "is full" in node.log()

        # reads still answer
        r = await client.get(f"{base}/m0", headers=headers)
        assert r.status_code == 200 and r.json()["command"] == acked["m0"]

        # space freed: writes are accepted again, without a restart
        filler.unlink()
        with trio.fail_after(30):
            while (await write(1000)).status_code != 201:
                await trio.sleep(0.2)

        # a crash now loses nothing acknowledged
        node.kill()
        node.start()
        await node.wait_healthy(client, 60)
        r = await client.get(f"{node.api_url}/auth", auth=ADMIN)
        headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
        for name, value in acked.items():
            r = await client.get(f"{base}/{name}", headers=headers)
            assert r.status_code == 200 and r.json()["command"] == value, name
    finally:
        node.stop()
