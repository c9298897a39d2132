"""Backpressure at the agent port: a node that cannot finish events stops reading, loses nothing.

One real backend with a tiny intake (``--eventd-buffer-size 4``) and one
pipeline worker; the events' handler is a pipe handler that waits for a
file to exist before it writes the event out, so the test decides when
event processing "catches up". A simulated agent on a raw non-blocking
socket (so a full socket is seen as ``EAGAIN``, not as a wait) writes
results until the kernel refuses more: the backend stopped reading it.
The test then checks what ``/metrics`` says, that another agent's
keepalive still gets through, that the backend's memory did not take what
the agent tried to send, and, once the handler is let go, that every
result the agent wrote is handled. Then an agent that reconnects while its
old session waits shows a shed message counted and logged; and the real
``sensu-agent`` keeps its results in its own queue while the node does not
read, and gets every one through, on the same connection, once the node
catches up.

No timing is asserted: every wait is for a condition, under ``trio.fail_after``.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from tests.harness.agent import AgentProcess, running_agent, wait_until
from tests.harness.backend import BackendProcess, Cluster

from .test_agents_backend import agent_entity, keepalive_frame, store_get, wait_for
from .test_api_auth import ADMIN, init_cluster

pytestmark = pytest.mark.e2e

INTAKE = 4  # --eventd-buffer-size: events a node holds from the read to the end of their pipeline
PAD = "x" * 900  # ~1 KB results, like a typical check output
MAX_FRAMES = 50_000  # ~50 MB: a backend that kept reading would take all of it


class RawAgent:
    """An agent on a plain socket: handshake, then masked frames written without ever waiting."""

    def __init__(self, node: BackendProcess, name: str) -> None:
        self.node = node
        self.name = name
        self.sock: socket.socket | None = None
        self.pending = b""  # the unsent tail of the last frame
        self.sent = 0  # frames fully or partly handed to the kernel

    def connect(self) -> None:
        """Blocking handshake (run in a thread); a small send buffer so the kernel refuses early."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
        sock.settimeout(30)
        sock.connect((self.node.host, self.node.agent_port))
        token = base64.b64encode(b"agent:P@ssw0rd!").decode()
        key = base64.b64encode(uuid.uuid4().bytes).decode()
        sock.sendall((f"GET / HTTP/1.1\r\nHost: {self.node.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSensu-Namespace: default\r\n"
                      f"Sensu-AgentName: {self.name}\r\nSensu-Subscriptions: linux\r\nAccept: application/json\r\n"
                      f"Sensu-User: agent\r\nAuthorization: Basic {token}\r\n\r\n").encode())
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = sock.recv(4096)
            assert chunk, "closed during the handshake"
            head += chunk
        assert b" 101 " in head.split(b"\r\n", 1)[0], head
        sock.setblocking(False)
        self.sock = sock

    @staticmethod
    def frame(payload: bytes) -> bytes:
        n = len(payload)
        head = bytes([0x81, 0x80 | n]) if n < 126 else bytes([0x81, 0xFE]) + n.to_bytes(2, "big")
        mask = b"\x01\x02\x03\x04"
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return head + mask + masked

    def write_nowait(self, payload: bytes) -> bool:
        """Hand one frame to the kernel; False when it refuses (a partial frame is kept in ``pending``).

        The unsent tail of an earlier frame goes first; ``payload`` is not
        sent (nor counted) unless that tail is gone.
        """
        assert self.sock is not None
        if self.pending:
            try:
                self.pending = self.pending[self.sock.send(self.pending):]
            except BlockingIOError:
                return False
            if self.pending:
                return False
        data = self.frame(payload)
        try:
            n = self.sock.send(data)
        except BlockingIOError:
            n = 0
        if n == 0:
            return False
        self.sent += 1
        self.pending = data[n:]
        return not self.pending

    async def flush(self) -> None:
        """Send ``pending`` as the backend reads again."""
        assert self.sock is not None
        while self.pending:
            await trio.lowlevel.wait_writable(self.sock)
            try:
                n = self.sock.send(self.pending)
            except BlockingIOError:
                continue
            self.pending = self.pending[n:]

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()


def result(name: str, seq: int) -> bytes:
    ts = int(time.time())
    body = {"metadata": {"namespace": "default"}, "id": str(uuid.uuid4()), "timestamp": ts,
            "entity": agent_entity(name, ["linux"], ts),
            "check": {"metadata": {"name": f"bp-{seq % 3}", "namespace": "default"}, "command": "true",
                      "interval": 60, "subscriptions": ["linux"], "handlers": ["gated"], "status": seq % 2,
                      "output": f"seq={seq} {PAD}", "executed": ts, "issued": ts, "duration": 0.01}}
    return b"event\n" + json.dumps(body).encode()


async def metrics(client: httpx.AsyncClient, node: BackendProcess) -> dict[str, float]:
    """``sensu_agentd_intake_*{kind="event"}`` values by name."""
    r = await client.get(f"{node.api_url}/metrics")
    r.raise_for_status()
    out: dict[str, float] = {}
    for line in r.text.splitlines():
        if line.startswith("sensu_agentd_intake_") and '{kind="event"}' in line:
            name, value = line.split('{kind="event"} ')
            out[name] = float(value)
    return out


def rss_mb(node: BackendProcess) -> float:
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def handled_seqs(out: Path) -> set[int]:
    if not out.exists():
        return set()
    text = out.read_text()
    return {int(part.split(" ", 1)[0]) for part in text.split("seq=")[1:]}


async def start_with_gated_handler(client: httpx.AsyncClient, node: BackendProcess, gate_file: Path,
                                   out: Path) -> None:
    """Wait for ``node``, initialize it, and add the pipe handler ``gated``.

    The handler waits until ``gate_file`` exists, then appends the event to
    ``out`` (one per line; it holds "seq=N"), so the test decides when the
    pipeline may move.
    """
    await node.wait_healthy(client)
    await init_cluster(Cluster([node], client))
    token = (await client.get(f"{node.api_url}/auth", auth=ADMIN)).json()["access_token"]
    command = f"while [ ! -e {gate_file} ]; do sleep 0.05; done; cat >> {out}; echo >> {out}"
    r = await client.put(f"{node.api_url}/api/core/v2/namespaces/default/handlers/gated",
                         headers={"Authorization": f"Bearer {token}"},
                         json={"metadata": {"name": "gated", "namespace": "default"}, "type": "pipe",
                               "command": command, "timeout": 600})
    assert r.status_code in (200, 201), r.text


async def test_a_node_that_falls_behind_stops_reading_and_then_handles_everything(
        tmp_path: Path, client: httpx.AsyncClient) -> None:
    gate_file, out = tmp_path / "go", tmp_path / "handled.txt"
    node = BackendProcess("default", "127.0.0.1", tmp_path / "node", extra_args=[
        "--eventd-buffer-size", str(INTAKE), "--eventd-workers", "2", "--pipelined-workers", "1"])
    node.start()
    flood = RawAgent(node, "flooder")
    other = RawAgent(node, "bystander")
    try:
        await start_with_gated_handler(client, node, gate_file, out)
        before = await metrics(client, node)
        assert before["sensu_agentd_intake_limit"] == INTAKE

        await trio.to_thread.run_sync(flood.connect)
        rss_before = rss_mb(node)

        async def fill() -> None:
            """Write results until the kernel refuses one (the socket buffers are full)."""
            with trio.fail_after(60):
                while flood.sent < MAX_FRAMES and flood.write_nowait(result(flood.name, flood.sent)):
                    await trio.sleep(0)  # let the test's other tasks run; the socket never waits
            assert flood.sent < MAX_FRAMES, "the backend kept reading everything the agent sent"

        await fill()

        # the node holds its limit and the session waits: the agent's socket stays full
        async def blocked() -> dict[str, float] | None:
            m = await metrics(client, node)
            full = m["sensu_agentd_intake_in_flight"] == INTAKE and m["sensu_agentd_intake_waiting_sessions"] == 1
            return m if full else None

        m = await wait_for(blocked, 60, "the intake never filled")
        assert m["sensu_agentd_intake_waits_total"] >= 1
        assert m["sensu_agentd_intake_shed_total"] == 0
        await fill()  # and more, until the kernel refuses again: the node holds its limit, reads no more
        m = await wait_for(blocked, 60, "the intake did not stay full")
        # memory: what the agent managed to send is bounded by the socket buffers, not taken by the node
        sent_bytes = flood.sent * len(flood.frame(result(flood.name, 0)))
        assert sent_bytes < 4 * 1024 * 1024, sent_bytes
        assert rss_mb(node) - rss_before < 64, (rss_before, rss_mb(node))
        assert handled_seqs(out) == set()
        assert any("intake full" in line and '"agent": "flooder"' in line for line in node.log().splitlines())

        # keepalives have their own intake: another agent's keepalive is processed now
        await trio.to_thread.run_sync(other.connect)
        assert other.write_nowait(keepalive_frame("bystander", 1, warning=120, critical=180))

        async def bystander_seen() -> bool:
            return await store_get(client, node, "/sensu.io/keepalives/default/bystander") is not None or \
                await store_get(client, node, "/sensu.io/entities/default/bystander") is not None

        await wait_for(bystander_seen, 60, "the keepalive of another agent was not processed")

        # load drops: the handler runs again, and every result the agent wrote arrives
        gate_file.touch()
        with trio.fail_after(120):
            await flood.flush()
        expected = set(range(flood.sent))

        async def all_handled() -> bool:
            return handled_seqs(out) >= expected

        await wait_for(all_handled, 180, f"handled {len(handled_seqs(out))} of {len(expected)}")
        assert handled_seqs(out) == expected

        async def drained() -> dict[str, float] | None:
            m = await metrics(client, node)
            return m if m["sensu_agentd_intake_in_flight"] == 0 else None

        m = await wait_for(drained, 60)
        assert m["sensu_agentd_intake_finished_total"] >= len(expected)
        assert m["sensu_agentd_intake_shed_total"] == 0
    finally:
        flood.close()
        other.close()
        node.stop()


async def test_a_message_read_but_abandoned_when_its_session_is_replaced_is_counted_and_logged(
        tmp_path: Path, client: httpx.AsyncClient) -> None:
    gate_file, out = tmp_path / "go", tmp_path / "handled.txt"
    node = BackendProcess("default", "127.0.0.1", tmp_path / "node", extra_args=[
        "--eventd-buffer-size", "1", "--eventd-workers", "1", "--pipelined-workers", "1"])
    node.start()
    first = RawAgent(node, "twice")
    second = RawAgent(node, "twice")
    try:
        await start_with_gated_handler(client, node, gate_file, out)
        await trio.to_thread.run_sync(first.connect)
        assert first.write_nowait(result("twice", 0))  # takes the only room
        assert first.write_nowait(result("twice", 1))  # read, then waits for room

        async def waiting() -> bool:
            return (await metrics(client, node))["sensu_agentd_intake_waiting_sessions"] == 1

        await wait_for(waiting, 60, "the second result never waited")
        await trio.to_thread.run_sync(second.connect)  # the agent reconnects: the old session is replaced

        async def shed() -> dict[str, Any] | None:
            m = await metrics(client, node)
            return m if m["sensu_agentd_intake_shed_total"] == 1 else None

        await wait_for(shed, 60, "the abandoned result was not counted")

        async def logged() -> bool:  # the line may reach the log a moment after the counter moved
            return any("read but not processed" in line and '"entity": "twice"' in line
                       for line in node.log().splitlines())

        await wait_for(logged, 30, "the abandoned result was not logged")
        gate_file.touch()

        async def first_handled() -> bool:
            return handled_seqs(out) == {0}

        await wait_for(first_handled, 60)
    finally:
        first.close()
        second.close()
        node.stop()


async def test_a_real_agent_queues_on_its_side_and_every_result_arrives_once_the_node_catches_up(
        tmp_path: Path, client: httpx.AsyncClient) -> None:
    """``sensu-agent`` itself: its events wait in its own queue while the node does not read.

    The agent's heartbeat times out after 3 s (the harness's setting), and
    its ping waits in the same TCP stream behind the results the node has
    not read; the agent must see that the node is alive and pushing back,
    and keep the connection: giving it up would lose what it had already
    written to it. The test lets the node catch up only once the agent has
    logged that it kept the connection.
    """
    gate_file, out = tmp_path / "go", tmp_path / "handled.txt"
    node = BackendProcess("default", "127.0.0.1", tmp_path / "node", extra_args=[
        "--eventd-buffer-size", str(INTAKE), "--eventd-workers", "2", "--pipelined-workers", "1"])
    node.start()
    agent = AgentProcess(tmp_path, [f"ws://{node.host}:{node.agent_port}"], name="queued", extra_args=[
        "--events-rate-limit", "10000", "--events-burst-limit", "10000"])
    count = 300  # x ~4 KB: far more than the socket buffers between the agent and the node hold
    try:
        await start_with_gated_handler(client, node, gate_file, out)
        async with running_agent(agent):
            async def connected() -> bool:
                r = await agent.get(client, "/healthz")
                return r is not None and r.status_code == 200

            await wait_until("the agent to connect", connected, agent.log)
            with trio.fail_after(120):
                for seq in range(count):
                    r = await client.post(f"{agent.api_url}/events", json={"check": {
                        "metadata": {"name": f"api-{seq % 3}"}, "status": seq % 2, "handlers": ["gated"],
                        "output": f"seq={seq} " + "y" * 4000}}, timeout=10)
                    assert r.status_code == 202, r.text

            async def held_back() -> str | None:  # the node is full and the agent still holds results
                m = await metrics(client, node)
                r = await agent.get(client, "/metrics")
                if r is None or r.status_code != 200 or m["sensu_agentd_intake_waiting_sessions"] != 1:
                    return None
                queued = [line for line in r.text.splitlines() if line.startswith("sensu_agent_event_queue_events ")]
                return queued[0] if queued and float(queued[0].split()[1]) > 0 else None

            await wait_until("the node to stop reading while the agent still queues", held_back, agent.log,
                             node.log, timeout=120)

            def kept() -> bool:
                return "(backpressure): keeping the connection" in agent.log_path.read_text(errors="replace")

            await wait_until("the agent to keep the connection despite a missed heartbeat", kept, agent.log,
                             timeout=120)
            gate_file.touch()

            async def all_handled() -> bool:
                return handled_seqs(out) >= set(range(count))

            await wait_until("every result handled", all_handled, agent.log, node.log, timeout=240)
            assert handled_seqs(out) == set(range(count))
            m = await metrics(client, node)
            assert m["sensu_agentd_intake_waits_total"] >= 1 and m["sensu_agentd_intake_shed_total"] == 0
            connects = agent.log_path.read_text(errors="replace").count('"connected to backend"')
            assert connects == 1, "the agent reconnected: something was lost or resent"
    finally:
        node.stop()
