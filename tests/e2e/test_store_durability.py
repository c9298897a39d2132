"""The journal is on disk before anything that depends on it leaves a node: traced with strace.

Each node is traced with ``strace -f -p`` (every thread), which records, per thread and with
timestamps, the system calls that matter here: ``msync``/``fsync``/
``fdatasync`` (the sync) and ``recvfrom``/``sendto`` (what arrives and what
leaves, with the bytes). A write carries a marker, so its arrival at a node and
the messages that carry it can be found in the trace. Peer messages are
uncompressed zlib frames, so the marker shows in them too.

What is asserted, for the one write:

* a lone node syncs between receiving the write and answering it;
* the leader of three syncs, on the thread that sends, before its entry leaves
  for a follower;
* each follower syncs, on that thread, between receiving the entry and
  sending its acknowledgement;
* with ``--etcd-unsafe-no-fsync`` none of this happens (so the test can tell).
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import trio

from tests.harness.backend import BackendProcess, Cluster, make_cluster_nodes

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SYNC_CALLS = ("msync", "fsync", "fdatasync")
LINE = re.compile(r"^(?P<tid>\d+)\s+(?P<time>\d+\.\d+)\s+(?P<call>\w+)\((?P<rest>.*)$")


class Tracer:
    """``strace -f -p``: attached to a running node (all its threads), detached by ``stop``.

    Attached rather than run as the node's parent, so that stopping the node
    stays the harness's usual SIGTERM to the node itself (strace 6.1 leaves
    its tracees running when it is the one signalled).
    """

    def __init__(self, pid: int, trace: Path) -> None:
        strace = shutil.which("strace")
        assert strace, "strace is not installed (make test installs it)"
        self.trace = trace
        self.stderr = trace.with_suffix(".stderr")
        with open(self.stderr, "wb") as err:
            self.proc = subprocess.Popen(
                [strace, "-f", "-ttt", "-e", "trace=" + ",".join((*SYNC_CALLS, "sendto", "recvfrom")),
                 "-e", "signal=none", "-s", "4096", "-yy", "-o", str(trace), "-p", str(pid)],
                stdout=subprocess.DEVNULL, stderr=err)

    async def wait_attached(self) -> None:
        with trio.fail_after(30):
            while "attached" not in self.stderr.read_text(errors="replace"):
                assert self.proc.poll() is None, self.stderr.read_text(errors="replace")
                await trio.sleep(0.05)

    def stop(self) -> list[Call]:
        if self.proc.poll() is None:
            self.proc.terminate()  # strace detaches from its tracees and exits
            self.proc.wait(timeout=20)
        return read_trace(self.trace)


async def traced(node: BackendProcess, trace: Path) -> Tracer:
    assert node.proc is not None
    tracer = Tracer(node.proc.pid, trace)
    await tracer.wait_attached()
    return tracer


@dataclass(frozen=True)
class Call:
    thread: int
    time: float
    name: str
    text: str  # the arguments and result, as strace printed them


def read_trace(path: Path) -> list[Call]:
    """Every completed call; strace's ``<unfinished ...>`` halves are read at their start."""
    calls = []
    for line in path.read_text(errors="replace").splitlines():
        m = LINE.match(line)
        if m:
            calls.append(Call(int(m["tid"]), float(m["time"]), m["call"], m["rest"]))
    return calls


def syncs_between(calls: list[Call], start: float, end: float, thread: int | None = None) -> list[Call]:
    """The sync calls made in ``[start, end]`` (by ``thread``, when given)."""
    return [c for c in calls if c.name in SYNC_CALLS and start <= c.time <= end
            and (thread is None or c.thread == thread)]


async def put_marker(client: httpx.AsyncClient, node: BackendProcess, marker: str) -> None:
    """Write the marker through ``node``'s debug store API (retried until its debug port answers)."""
    with trio.fail_after(60):
        while True:
            try:
                r = await client.put(f"{node.debug_url}/debug/store/kv", params={"key": "/durability"},
                                     content=marker.encode())
                break
            except httpx.TransportError:
                await trio.sleep(0.1)
    assert r.status_code == 200, r.text


def arrival(calls: list[Call], marker: str) -> Call:
    got = [c for c in calls if c.name == "recvfrom" and marker in c.text]
    assert got, f"the write {marker} never arrived"
    return got[0]


def http_answer_after(calls: list[Call], after: Call) -> Call:
    fd = after.text.split("<", 1)[0]
    got = [c for c in calls if c.name == "sendto" and c.time >= after.time and c.text.startswith(fd + "<")
           and "HTTP/1.1 200" in c.text]
    assert got, "the write was never answered"
    return got[0]


@pytest.mark.parametrize("unsafe", [False, True], ids=["synced", "unsafe-no-fsync"])
async def test_a_lone_node_syncs_a_write_before_answering_it(tmp_path: Path, client: httpx.AsyncClient,
                                                             unsafe: bool) -> None:
    node = BackendProcess("default", "127.0.0.1", tmp_path / "node",
                          extra_args=["--etcd-unsafe-no-fsync"] if unsafe else [])
    node.start()
    try:
        await node.wait_healthy(client, 60)
        tracer = await traced(node, tmp_path / "trace")
        try:
            marker = f"durable-{secrets.token_hex(8)}"
            await put_marker(client, node, marker)
        finally:
            calls = tracer.stop()
    finally:
        node.stop()
    received = arrival(calls, marker)
    answered = http_answer_after(calls, received)
    synced = syncs_between(calls, received.time, answered.time)
    if unsafe:
        assert not synced, synced
    else:
        assert synced, "no sync between the write's arrival and its answer"


async def test_three_nodes_sync_entries_before_sending_or_acknowledging_them(
        tmp_path: Path, client: httpx.AsyncClient) -> None:
    nodes = make_cluster_nodes(tmp_path, 3)
    cluster = Cluster(nodes, client)
    marker = f"durable-{secrets.token_hex(8)}"
    tracers: dict[str, Tracer] = {}
    traced_calls: dict[str, list[Call]] = {}
    try:
        for n in nodes:
            n.start()
        await cluster.wait_healthy(60)
        leader = await cluster.leader(30)
        for n in nodes:
            tracers[n.name] = await traced(n, tmp_path / f"{n.name}.trace")
        try:
            await put_marker(client, leader, marker)
            # the followers apply it too: read it back from each (their acknowledgements went out before)
            for n in nodes:
                with trio.fail_after(30):
                    while True:
                        r = await client.get(f"{n.debug_url}/debug/store/kv", params={"key": "/durability"})
                        if r.status_code == 200 and r.json().get("value") == marker:
                            break
                        await trio.sleep(0.05)
        finally:
            traced_calls = {name: tracer.stop() for name, tracer in tracers.items()}
    finally:
        cluster.stop()

    calls = traced_calls[leader.name]
    received = arrival(calls, marker)
    sent = [c for c in calls if c.name == "sendto" and marker in c.text and c.time >= received.time
            and "HTTP/1.1" not in c.text]
    assert sent, "the leader never sent the entry to a follower"
    first_send = sent[0]
    assert syncs_between(calls, received.time, first_send.time, first_send.thread), \
        "the leader sent the entry before syncing it"
    answered = http_answer_after(calls, received)

    follower_syncs = []
    for follower in (n for n in nodes if n is not leader):
        calls = traced_calls[follower.name]
        got = arrival(calls, marker)
        acks = [c for c in calls if c.name == "sendto" and c.thread == got.thread and c.time >= got.time]
        assert acks, f"{follower.name} never acknowledged the entry"
        synced = syncs_between(calls, got.time, acks[0].time, got.thread)
        assert synced, f"{follower.name} acknowledged the entry before syncing it"
        follower_syncs.append(synced[0].time)
    # a majority (the leader and one follower) held it on disk before the client heard success
    assert min(follower_syncs) < answered.time


async def test_term_and_vote_are_on_disk_before_a_vote_is_asked_for_or_granted(
        tmp_path: Path, client: httpx.AsyncClient) -> None:
    """An election after ``kill -9`` of the leader, traced on the two survivors.

    The candidate stores its new term (and its vote for itself) before it asks
    for votes; the voter stores its vote before it grants it. Each store is an
    fsync of ``raft.journal.meta``'s new file (and of the directory), on the
    thread that then sends the message.
    """
    nodes = make_cluster_nodes(tmp_path, 3)
    cluster = Cluster(nodes, client)
    traced_calls: dict[str, list[Call]] = {}
    try:
        for n in nodes:
            n.start()
        await cluster.wait_healthy(60)
        leader = await cluster.leader(30)
        survivors = [n for n in nodes if n is not leader]
        tracers = {n.name: await traced(n, tmp_path / f"{n.name}.trace") for n in survivors}
        try:
            leader.kill()
            await cluster.leader(30)  # one of the survivors won
        finally:
            traced_calls = {name: tracer.stop() for name, tracer in tracers.items()}
    finally:
        cluster.stop()

    def meta_syncs(calls: list[Call], thread: int, start: float, end: float) -> list[Call]:
        return [c for c in syncs_between(calls, start, end, thread) if "raft.journal.meta" in c.text]

    asked = granted = 0
    for calls in traced_calls.values():
        sends = [c for c in calls if c.name == "sendto"]
        for i, send in enumerate(sends):
            before = max((s.time for s in sends[:i] if s.thread == send.thread), default=0.0)
            if "request_vote" in send.text:
                asked += 1
                assert meta_syncs(calls, send.thread, before, send.time), "asked for votes before storing the term"
            if "response_vote" in send.text:
                granted += 1
                assert meta_syncs(calls, send.thread, before, send.time), "granted a vote before storing it"
    assert asked and granted, (asked, granted)
