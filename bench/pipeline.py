"""End-to-end pipeline throughput: simulated agents -> event processing -> a trivial handler.

Real ``sensu-backend`` processes (one node, or three with ``--nodes 3``), a
``sink`` process (a TCP server standing in for the handler's target) and
``load`` processes holding ``--agents`` simulated agent connections
(runtime.md §1 frames over plain websocket connections, written by the
generator itself to keep its CPU small, spread over every node). The
handler is the trivial one: a ``tcp`` handler named ``sink`` with no filters
and no mutator other than the built-in ``json``, so every stored result is
handed to the pipeline and sent to the sink.

Each result carries its send time in ``check.output``; the sink records the
time each event arrives, so **latency is from result sent by the agent to
the handler delivering it** (p50/p99 over the window). For each offered rate
(``--rates``, events/s over all agents, open loop: the generators send on a
schedule whatever the backend does) the script reports what the sink
received per second, the latency, the backend CPU and RSS, how long each
node waited for a core (run-queue wait) and how idle the machine was, and
whether the rate was *sustained* (at least 97 % of the offered events
delivered within the window plus two seconds, p99 under 250 ms).

``--soak S`` then runs ``--soak-rate`` for S seconds, sampling every node's
RSS every 10 s, to show memory stays flat, and reports the latency, CPU,
run-queue wait and idle time of every minute.

Results alternate OK (status 0) and warning (status 1) per agent, across
``--checks`` check names per agent, so the pipeline sees incidents,
resolutions and OK-after-OK events.

Overload (docs/performance.md, Pipeline, "Overload"): when the backend pushes back,
each simulated agent queues its due results on its side (as a Sensu agent
does) and writes them as its socket takes them. So three latencies are
reported: ``p50_ms``/``p99_ms`` from the result's due time (everything the
agent waited included), ``wrote_*`` from when it was written to the socket
(the socket buffers included), and ``accepted_*`` from the backend's own
histogram (``sensu_agentd_intake_latency_seconds``: read off the socket ->
handlers done; interpolated inside its buckets). ``--hog N`` runs N
CPU-burning processes beside everything; ``--recover-rate R`` drops the load
to R after the rates and reports how long until the agents' queues are empty
and every result they wrote was handled (``not_arrived`` must be 0), and how
many keepalive events recorded a failure.

Usage::

    .venv/bin/python bench/pipeline.py --nodes 1 3 --rates 500 1000 2000 3000
    .venv/bin/python bench/pipeline.py --nodes 3 --rates 2000 --soak 600 --soak-rate 2000
    .venv/bin/python bench/pipeline.py --nodes 3 --rates 1000 2000 3000 4000 --seconds 15 --hog 1 --recover-rate 500

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
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from agents import cpu_s, percentile, rss_kb  # noqa: E402  (shared with the agents benchmark)

SUSTAINED_FRACTION = 0.97
P99_TARGET_MS = 250.0


def read_commands(buf: bytearray) -> list[list[str]] | None:
    """The complete command lines now readable on stdin, split into words; None once stdin closed.

    For the sink's and the generators' ``selectors`` loops (stdin is readable
    when called); a partial last line stays in ``buf``.
    """
    data = os.read(sys.stdin.fileno(), 4096)
    if not data:
        return None
    buf += data
    *lines, rest = buf.split(b"\n")
    buf[:] = rest
    return [words for words in (line.decode().split() for line in lines) if words]


# ---------------------------------------------------------------------------- sink process

def sink_main(args: argparse.Namespace) -> None:
    """A TCP server: one event per connection (what a tcp handler sends); stdin commands.

    A plain ``selectors`` loop over raw descriptors rather than trio or
    socket objects, which reads only the send time out of each event (JSON
    is decoded only for the slow ones, to name them): it shares the 2 cores
    with the backends it measures.
    """
    import selectors
    import socket

    arrival_at: list[float] = []  # arrival times, in arrival order (so sorted: windows are bisected)
    latencies: list[float] = []  # latency of each arrival from its due time at the agent, same index
    wrote_lat: list[float] = []  # from when the agent wrote it to its socket, same index
    slow: list[tuple[float, float, str, str]] = []  # (arrival, latency, entity, check) of arrivals over 1 s
    bad = [0]
    sel = selectors.DefaultSelector()
    listener = socket.create_server(("127.0.0.1", args.port), backlog=4096)
    listener.setblocking(False)
    sel.register(listener, selectors.EVENT_READ, "accept")
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, "stdin")
    print(json.dumps({"listening": listener.getsockname()[1]}), flush=True)
    chunks: dict[int, list[bytes]] = {}  # what each open connection (by descriptor) sent so far
    stdin_buf = bytearray()

    def finished(fd: int) -> None:
        sel.unregister(fd)
        os.close(fd)
        now = time.time()
        data = b"".join(chunks.pop(fd))
        at = data.find(b"sent=")  # in check.output, which the handler's JSON carries as sent
        try:
            sent = float(data[at + 5:data.index(b" ", at)]) if at >= 0 else float("nan")
        except ValueError:
            sent = float("nan")
        if sent != sent:
            bad[0] += 1
            return
        at = data.find(b"wrote=")
        try:
            wrote = float(data[at + 6:data.index(b" ", at)]) if at >= 0 else sent
        except ValueError:
            wrote = sent
        if arrival_at and now < arrival_at[-1]:
            now = arrival_at[-1]  # keep the times sorted if the clock stepped back
        arrival_at.append(now)
        latencies.append(now - sent)
        wrote_lat.append(now - wrote)
        if now - sent > 1.0:
            event = json.loads(data)
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
            wlat = wrote_lat[first:end]
            print(json.dumps({"window": {"count": len(lat), "p50_ms": percentile(lat, 50) * 1e3,
                                         "p99_ms": percentile(lat, 99) * 1e3,
                                         "wrote_p50_ms": percentile(wlat, 50) * 1e3,
                                         "wrote_p99_ms": percentile(wlat, 99) * 1e3,
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
                        fd, _ = listener._accept()  # a descriptor, without a socket object per event
                    except BlockingIOError:
                        break
                    chunks[fd] = []
                    sel.register(fd, selectors.EVENT_READ, "conn")
            elif key.data == "stdin":
                commands = read_commands(stdin_buf)
                if commands is None or not all(command(cmd) for cmd in commands):
                    return
            else:
                fd = key.fd  # readable, so this read returns at once (or b"" at the end)
                try:
                    data = os.read(fd, 65536)
                except OSError:
                    data = b""
                if data:
                    chunks[fd].append(data)
                else:
                    finished(fd)


# ---------------------------------------------------------------------------- load process

def load_main(args: argparse.Namespace) -> None:
    """``--count`` agents; sends results at the aggregate rate set with ``rate R`` on stdin.

    One ``selectors`` loop over plain sockets that writes the agents' RFC 6455
    frames itself (masked, as a client must) from a JSON template per agent
    and check, rather than trio-websocket with a task per agent: the
    generator shares the 2 cores with the backends it measures, and this
    costs a fraction as much per result. The backend sees the same traffic:
    one websocket connection per agent, a ``keepalive`` every 20 s, and
    ``event`` frames on an open-loop schedule with a random phase per agent
    (a new rate starts a new schedule, without a burst).

    When the backend pushes back (the socket takes no more), a result that
    comes due waits in its agent's queue, as in a Sensu agent, and is written
    once the socket takes it; each agent holds at most one partly written
    frame, and its queue at most ``AGENT_QUEUE_MAX`` results (more are
    counted as ``agent_dropped``: a real agent's queue is bounded too).
    A result carries its due time (``sent=``) and the time it was written to
    the socket (``wrote=``); a keepalive skips the queue (our agent sends
    them directly), so it waits only behind bytes already in the socket.
    """
    from collections import deque

    import heapq
    import selectors
    import socket

    endpoints = [(h, int(p)) for h, p in (e.rsplit(":", 1) for e in args.endpoints.split(","))]
    token = base64.b64encode(b"agent:P@ssw0rd!").decode()
    state = {"connected": 0, "failed": 0, "sent": 0, "closed": 0, "due": 0, "backlog": 0, "backlog_max": 0,
             "agent_dropped": 0}
    queue_max = 10_000  # our sensu-agent's cache-max-events
    sel = selectors.DefaultSelector()
    fields = {"__TS__": b"%(ts)d", "__NOW__": b"%(now).6f", "__WROTE__": b"%(wrote).6f", "__STATUS__": b"%(status)d",
              "__SEQ__": b"%(seq)d"}

    def emit(obj: dict[str, Any]) -> None:
        print(json.dumps(obj), flush=True)

    def new_id() -> bytes:
        """A random (version 4) UUID, as the agent gives every event, without uuid4's system call."""
        h = b"%032x" % random.getrandbits(128)
        return b"%s-%s-4%s-a%s-%s" % (h[:8], h[8:12], h[13:16], h[17:20], h[20:])

    def template(kind: str, name: str, check: dict[str, Any], **extra: Any) -> bytes:
        """A frame's bytes with ``%(field)`` slots for what changes per send (see ``fields``)."""
        entity = {"metadata": {"name": name, "namespace": "default"}, "entity_class": "agent",
                  "subscriptions": ["bench"], "system": {"hostname": name, "os": "linux", "arch": "amd64"},
                  "last_seen": "__TS__", "user": "agent", "sensu_agent_version": "6.12.0"}
        text = (kind + "\n" + json.dumps({"metadata": {"namespace": "default"}, "id": "__ID__", "timestamp": "__TS__",
                                          **extra, "entity": entity,
                                          "check": {**check, "executed": "__TS__", "issued": "__TS__"}}))
        out = text.replace("%", "%%").encode().replace(b"__ID__", b"%(id)s")
        for sentinel, slot in fields.items():
            out = out.replace(b'"' + sentinel.encode() + b'"', slot).replace(sentinel.encode(), slot)
        return out

    class Agent:
        def __init__(self, index: int, i: int) -> None:
            self.index = index
            self.name = f"{args.prefix}-{i:05d}"
            self.sock: socket.socket | None = None
            self.inbox = b""
            self.outbox = b""
            self.queue: deque[float] = deque()  # due times of results not yet written (the agent's queue)
            self.run = 0
            self.seq = 1
            self.mask = random.randbytes(4) * 4096  # this connection's masking key, repeated over 16 KiB
            self.keepalive = template("keepalive", self.name, {
                "metadata": {"name": "keepalive", "namespace": "default"}, "interval": 20, "timeout": 120, "ttl": 0},
                sequence="__SEQ__")
            self.results = [template("event", self.name, {
                "metadata": {"name": f"bench-{c}", "namespace": "default"}, "command": "true", "interval": 10,
                "subscriptions": ["bench"], "handlers": ["sink"], "status": "__STATUS__",
                "output": "sent=__NOW__ wrote=__WROTE__ status __STATUS__", "duration": 0.001}) for c in range(args.checks)]

        def connect(self, host: str, port: int) -> None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            if args.agent_sndbuf:  # before connecting, so the kernel never autotunes it upwards
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.agent_sndbuf)
            sock.settimeout(60)
            sock.connect((host, port))
            key = base64.b64encode(random.randbytes(16)).decode()
            sock.sendall((f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                          f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                          f"Sensu-Namespace: default\r\nSensu-AgentName: {self.name}\r\n"
                          f"Sensu-Subscriptions: bench\r\nAccept: application/json\r\nSensu-User: agent\r\n"
                          f"Authorization: Basic {token}\r\n\r\n").encode())
            response = b""
            while b"\r\n\r\n" not in response:
                chunk = sock.recv(4096)
                if not chunk:
                    raise ConnectionError("closed during the handshake")
                response += chunk
            head, self.inbox = response.split(b"\r\n\r\n", 1)
            status_line = head.split(b"\r\n", 1)[0]
            if b" 101 " not in status_line:
                raise ConnectionError(status_line.decode(errors="replace"))
            while not self.frames():  # the first frame is the entity_config
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError("closed before entity_config")
                self.inbox += chunk
            sock.setblocking(False)
            self.sock = sock
            sel.register(sock, selectors.EVENT_READ, self)

        def frames(self) -> int:
            """Consume the complete frames in the inbox, answering pings; how many there were."""
            n = 0
            while len(self.inbox) >= 2:
                opcode, length, at = self.inbox[0] & 0x0F, self.inbox[1] & 0x7F, 2
                if length == 126:
                    length, at = int.from_bytes(self.inbox[2:4], "big"), 4
                elif length == 127:
                    length, at = int.from_bytes(self.inbox[2:10], "big"), 10
                if len(self.inbox) < at + length:
                    break
                payload, self.inbox = self.inbox[at:at + length], self.inbox[at + length:]
                n += 1
                if opcode == 0x9:
                    self.send(0xA, payload)
                elif opcode == 0x8:
                    raise ConnectionError("closed by the backend")
            return n

        def send(self, opcode: int, payload: bytes) -> None:
            n = len(payload)
            if n < 126:
                head = bytes([0x80 | opcode, 0x80 | n])
            elif n < 65536:
                head = bytes([0x80 | opcode, 0xFE]) + n.to_bytes(2, "big")
            else:
                head = bytes([0x80 | opcode, 0xFF]) + n.to_bytes(8, "big")
            mask = self.mask[:n] if n <= len(self.mask) else (self.mask * (n // len(self.mask) + 1))[:n]
            frame = head + self.mask[:4] + (int.from_bytes(payload, "big") ^ int.from_bytes(mask, "big")).to_bytes(n, "big")
            assert self.sock is not None
            if self.outbox:
                self.outbox += frame
                return
            try:
                sent = self.sock.send(frame)
            except BlockingIOError:
                sent = 0
            if sent < len(frame):
                self.outbox = frame[sent:]
                sel.modify(self.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)

        def flush(self) -> None:
            assert self.sock is not None
            try:
                sent = self.sock.send(self.outbox)
            except BlockingIOError:
                return
            self.outbox = self.outbox[sent:]
            if not self.outbox:
                sel.modify(self.sock, selectors.EVENT_READ, self)
                self.pump()

        def result_due(self, at: float) -> None:
            """A result comes due: into the agent's queue, then written if the socket takes it."""
            state["due"] += 1
            if len(self.queue) >= queue_max:
                state["agent_dropped"] += 1
                return
            self.queue.append(at)
            state["backlog"] += 1
            state["backlog_max"] = max(state["backlog_max"], state["backlog"])
            self.pump()

        def pump(self) -> None:
            """Write queued results while the socket takes whole frames (one partial frame at most)."""
            while self.queue and not self.outbox:
                due_at = self.queue.popleft()
                state["backlog"] -= 1
                now = time.time()
                status = (self.run // args.checks) % 2
                self.send(0x1, self.results[self.run % args.checks] % {
                    b"ts": int(now), b"now": due_at, b"wrote": now, b"status": status, b"id": new_id()})
                self.run += 1
                state["sent"] += 1

        def send_keepalive(self) -> None:
            self.send(0x1, self.keepalive % {b"ts": int(time.time()), b"seq": self.seq,
                                             b"id": new_id()})
            self.seq += 1

    agents: list[Agent] = []
    for i in range(args.first, args.first + args.count):
        agent = Agent(len(agents), i)
        host, port = endpoints[i % len(endpoints)]
        try:
            agent.connect(host, port)
        except OSError as exc:
            state["failed"] += 1
            emit({"error": f"{agent.name}: {exc!r}"})
            continue
        agents.append(agent)
        state["connected"] += 1
        agent.send_keepalive()
    emit({"connected": state["connected"], "failed": state["failed"]})

    # one schedule for every agent: (due, generation, index); generation 0 is keepalives, a new rate a new one
    due: list[tuple[float, int, int]] = [(time.monotonic() + random.uniform(0, 20), 0, a.index) for a in agents]
    heapq.heapify(due)
    period = {0: 20.0}
    generation = 0
    live = set(range(len(agents)))
    stdin_buf = bytearray()
    sel.register(sys.stdin.fileno(), selectors.EVENT_READ, None)

    def drop(agent: Agent, exc: Exception) -> None:
        if agent.index in live:
            live.discard(agent.index)
            state["closed"] += 1
            state["backlog"] -= len(agent.queue)
            agent.queue.clear()
            emit({"error": f"{agent.name}: {exc!r}"})
            assert agent.sock is not None
            sel.unregister(agent.sock)
            agent.sock.close()

    while True:
        for key, events in sel.select(max(0.0, due[0][0] - time.monotonic()) if due else None):
            if key.data is None:
                commands = read_commands(stdin_buf)
                if commands is None:
                    return
                for cmd in commands:
                    if cmd[0] == "rate":
                        generation += 1
                        rate = float(cmd[1])
                        if rate > 0:
                            period[generation] = len(agents) / rate
                            start = time.monotonic()
                            for i in live:
                                heapq.heappush(due, (start + random.uniform(0, period[generation]), generation, i))
                    elif cmd[0] == "stats":
                        emit({"stats": state})
                    elif cmd[0] == "stop":
                        return
                continue
            agent = key.data
            try:
                if events & selectors.EVENT_WRITE:
                    agent.flush()
                if events & selectors.EVENT_READ:
                    chunk = agent.sock.recv(65536)
                    if not chunk:
                        raise ConnectionError("closed by the backend")
                    agent.inbox += chunk
                    agent.frames()
            except OSError as exc:
                drop(agent, exc)
        now = time.monotonic()
        while due and due[0][0] <= now:
            at, gen, i = heapq.heappop(due)
            if i not in live or (gen and gen != generation):
                continue
            try:
                if gen:
                    agents[i].result_due(time.time() - (time.monotonic() - at))
                else:
                    agents[i].send_keepalive()
            except OSError as exc:
                drop(agents[i], exc)
                continue
            heapq.heappush(due, (at + period[gen], gen, i))


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


def rq_wait_s(pid: int) -> float:
    """Seconds the process's threads spent runnable but waiting for a core (``/proc/<pid>/schedstat``)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[1]) / 1e9


def machine_ticks() -> tuple[int, int]:
    """(idle, total) clock ticks of every core so far, from ``/proc/stat``."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return fields[3] + fields[4], sum(fields)


def idle_pct(before: tuple[int, int], after: tuple[int, int]) -> float:
    return round((after[0] - before[0]) / max(1, after[1] - before[1]) * 100, 1)


def rss_mb(pid: int) -> float:
    return rss_kb(pid) / 1024


def tcp_mem_mb() -> float:
    """Memory the kernel holds in TCP socket buffers, machine-wide (``/proc/net/sockstat``, pages)."""
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            words = line.split()
            return round(int(words[words.index("mem") + 1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)
    return 0.0


def intake_metrics(urls: list[str]) -> dict[str, Any] | None:
    """The event intake series of every node's ``/metrics``, summed; None if the backend has none.

    ``buckets`` is the cumulative read-to-handled latency histogram (upper
    bound in seconds -> count), ``in_flight`` the per-node values.
    """
    import httpx

    out: dict[str, Any] = {"buckets": {}, "in_flight": [], "waiting": [], "waits": 0, "blocked_s": 0.0, "shed": 0,
                           "finished": 0}
    names = {"sensu_agentd_intake_waits_total": "waits", "sensu_agentd_intake_blocked_seconds_total": "blocked_s",
             "sensu_agentd_intake_shed_total": "shed", "sensu_agentd_intake_finished_total": "finished"}
    found = False
    with httpx.Client(timeout=10) as http:
        for url in urls:
            for line in http.get(f"{url}/metrics").text.splitlines():
                if not line.startswith("sensu_agentd_intake_") or 'kind="event"' not in line:
                    continue
                found = True
                name, value = line.rsplit(" ", 1)
                base = name.split("{", 1)[0]
                if base == "sensu_agentd_intake_latency_seconds_bucket":
                    le = name.split('le="', 1)[1].split('"', 1)[0]
                    bound = float("inf") if le == "+Inf" else float(le)
                    out["buckets"][bound] = out["buckets"].get(bound, 0) + float(value)
                elif base in names:
                    out[names[base]] += float(value)
                elif base == "sensu_agentd_intake_in_flight":
                    out["in_flight"].append(int(float(value)))
                elif base == "sensu_agentd_intake_waiting_sessions":
                    out["waiting"].append(int(float(value)))
    return out if found else None


def histogram_quantile(q: float, before: dict[float, float], after: dict[float, float]) -> float | None:
    """The q-quantile (ms) of the observations made between two cumulative histograms, as Prometheus'
    ``histogram_quantile`` does: linear inside the bucket it falls in; None without observations."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0) for b in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    rank = q * total
    lower, below = 0.0, 0.0
    for bound, cum in zip(bounds, counts):
        if cum >= rank:
            if bound == float("inf"):
                return lower * 1e3  # beyond the last bound: report the bound (a floor)
            return (lower + (bound - lower) * ((rank - below) / max(1e-9, cum - below))) * 1e3
        lower, below = bound, cum
    return None


def run_cluster(count: int, args: argparse.Namespace) -> list[dict[str, Any]]:
    import httpx
    import trio

    from tests.harness.agent import run_init
    from tests.harness.backend import BackendProcess, Cluster, make_cluster_nodes

    tmp = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    extra = ["--log-level", "warn"] + ([] if args.fsync else ["--etcd-unsafe-no-fsync"]) + args.backend_arg
    nodes = ([BackendProcess("default", "127.0.0.1", tmp / "node", extra_args=extra)] if count == 1
             else make_cluster_nodes(tmp, count, extra_args=extra))
    children: list[Child] = []
    hogs: list[subprocess.Popen[bytes]] = []
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
                                "--checks", str(args.checks), "--prefix", "bench",
                                "--agent-sndbuf", str(args.agent_sndbuf)]))
            first += n
        children.extend(loads)
        connected = sum(g.read("connected") for g in loads)
        pids = [n.proc.pid for n in nodes if n.proc]
        api_urls = [n.api_url for n in nodes]
        print(json.dumps({"nodes": count, "agents_connected": connected}), flush=True)
        for _ in range(args.hog):  # CPU burners sharing the cores with everything else
            hogs.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        if hogs:
            print(json.dumps({"hogs": [h.pid for h in hogs]}), flush=True)

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
            wait0 = [rq_wait_s(p) for p in pids]
            ticks0 = machine_ticks()
            gen0 = [cpu_s(g.proc.pid) for g in loads]
            sink0 = cpu_s(sink.proc.pid)
            b0, o0 = store_stats()
            im0 = intake_metrics(api_urls)
            hog0 = [cpu_s(h.pid) for h in hogs]
            t0 = time.time()
            rss_series: list[list[float]] = []  # every node's RSS, once a second through the window
            tcp_series: list[float] = []
            while time.time() < t0 + seconds:
                rss_series.append([round(rss_mb(p), 1) for p in pids])
                tcp_series.append(tcp_mem_mb())
                time.sleep(min(1.0, max(0.0, t0 + seconds - time.time())))
            t1 = time.time()
            im1 = intake_metrics(api_urls)
            hog1 = [cpu_s(h.pid) for h in hogs]
            cpu1 = [cpu_s(p) for p in pids]
            wait1 = [rq_wait_s(p) for p in pids]
            ticks1 = machine_ticks()
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
                "nodes": count, "phase": label, "offered_per_s": rate, "window_start_unix": round(t0, 3),
                "handled_per_s": round(window["count"] / dt, 1),
                "delivered_fraction": round(delivered / max(1.0, offered), 3),
                "p50_ms": round(window["p50_ms"], 1), "p99_ms": round(window["p99_ms"], 1),
                "p99_ms_by_second": window["p99_ms_by_second"], "over_1s": window["over_1s"],
                "slowest": window["slowest"][:5],
                "backend_cpu_pct": [round((c1 - c0) / dt * 100) for c1, c0 in zip(cpu1, cpu0)],
                # time runnable but without a core: how much the 2 shared cores make each node queue
                "backend_rq_wait_pct": [round((w1 - w0) / dt * 100) for w1, w0 in zip(wait1, wait0)],
                "machine_idle_pct": idle_pct(ticks0, ticks1),
                "generator_cpu_pct": round(sum(c1 - c0 for c1, c0 in zip(gen1, gen0)) / dt * 100),
                "sink_cpu_pct": round((sink1 - sink0) / dt * 100),
                "raft_ops_per_event": round((o1 - o0) / max(1, window["count"]), 2),
                "ops_per_proposal": round((o1 - o0) / max(1, b1 - b0), 1),
                "backend_cpu_ms_per_event": round(sum(c1 - c0 for c1, c0 in zip(cpu1, cpu0)) / max(1, window["count"]) * 1e3, 2),
                "rss_mb": [round(rss_mb(p), 1) for p in pids],
                "rss_max_mb": [max(r[i] for r in rss_series) for i in range(len(pids))] if rss_series else None,
                "rss_mb_by_second": rss_series,
                "tcp_mem_max_mb": max(tcp_series) if tcp_series else None,
                "loadavg_1m": round(os.getloadavg()[0], 1),
                "hog_cpu_pct": round(sum(c1 - c0 for c1, c0 in zip(hog1, hog0)) / dt * 100) if hogs else 0,
                # latency as the agent sees it from the time the result was *written to its socket*
                # (sent=... is its due time, so p50/p99 above include time in the agent's own queue)
                "wrote_p50_ms": round(window["wrote_p50_ms"], 1), "wrote_p99_ms": round(window["wrote_p99_ms"], 1),
            }
            if im0 is not None and im1 is not None:
                # the backend's own figure: from reading the event off the socket to its handler's end
                row["accepted_p50_ms"] = histogram_quantile(0.50, im0["buckets"], im1["buckets"])
                row["accepted_p99_ms"] = histogram_quantile(0.99, im0["buckets"], im1["buckets"])
                for key in ("accepted_p50_ms", "accepted_p99_ms"):
                    row[key] = round(row[key], 1) if row[key] is not None else None
                row["intake_waits"] = int(im1["waits"] - im0["waits"])
                row["intake_blocked_s"] = round(im1["blocked_s"] - im0["blocked_s"], 1)
                row["intake_shed"] = int(im1["shed"] - im0["shed"])
                row["intake_in_flight_end"] = im1["in_flight"]
                row["intake_waiting_end"] = im1["waiting"]
            for g in loads:
                g.send("stats")
            gstats = [g.read("stats") for g in loads]
            row["agent_backlog_end"] = sum(st.get("backlog", 0) for st in gstats)
            row["agent_dropped"] = sum(st.get("agent_dropped", 0) for st in gstats)
            row["sustained"] = row["delivered_fraction"] >= SUSTAINED_FRACTION and row["p99_ms"] < P99_TARGET_MS
            print(json.dumps(row), flush=True)
            return row

        def recover(rate: float, max_s: float) -> dict[str, Any]:
            """Load drops to ``rate``: how long until every agent's queue is empty and all it wrote arrived."""
            for g in loads:
                g.send(f"rate {rate / len(loads)}")
            t0 = time.time()
            row: dict[str, Any] = {"nodes": count, "phase": "recover", "offered_per_s": rate}
            rss_series: list[list[float]] = []
            backlog0: int | None = None
            drained_at = None
            target: int | None = None  # results written when the agents' queues first emptied

            def poll() -> tuple[int, int, int, list[dict[str, Any]]]:
                for g in loads:
                    g.send("stats")
                gstats = [g.read("stats") for g in loads]
                sink.send(f"window {time.time()} {time.time()}")
                arrived = sink.read("window")["total"]
                return (sum(st["backlog"] for st in gstats), sum(st["sent"] for st in gstats), arrived, gstats)

            while time.time() < t0 + max_s:
                backlog, written, arrived, gstats = poll()
                backlog0 = backlog if backlog0 is None else backlog0
                rss_series.append([round(rss_mb(p), 1) for p in pids])
                if target is None and backlog == 0:
                    target = written
                # drained: the queues emptied and as many results as had been written by then have arrived
                if target is not None and arrived >= target:
                    drained_at = time.time()
                    break
                time.sleep(1.0)
            for g in loads:  # then nothing more is sent: every result written must arrive
                g.send("rate 0")
            settle = time.time() + max_s  # as long again for what is still queued to drain
            all_in_s = None  # from the drop until the queues were empty and everything written had arrived
            while True:
                backlog, written, arrived, gstats = poll()
                if backlog == 0 and arrived >= written:
                    all_in_s = round(time.time() - t0, 1)
                    break
                if time.time() > settle:
                    break
                time.sleep(0.5)
            row["all_arrived_after_s"] = all_in_s
            row.update({"agent_backlog_at_drop": backlog0, "drained_after_s":
                        round(drained_at - t0, 1) if drained_at else None, "written": written, "arrived": arrived,
                        "not_arrived": written - arrived,
                        "agent_dropped": sum(st.get("agent_dropped", 0) for st in gstats),
                        "rss_max_mb": [max(r[i] for r in rss_series) for i in range(len(pids))],
                        "rss_mb": rss_series[-1], "loadavg_1m": round(os.getloadavg()[0], 1)})
            im = intake_metrics(api_urls)
            if im is not None:
                row["intake_shed_total"] = int(im["shed"])
            # did any agent's keepalive arrive too late while its results were held back? (history: last 21)
            with httpx.Client(timeout=30) as http:
                auth = http.get(f"{nodes[0].api_url}/auth", auth=("admin", "P@ssw0rd!")).json()["access_token"]
                events = http.get(f"{nodes[0].api_url}/api/core/v2/namespaces/default/events",
                                  headers={"Authorization": f"Bearer {auth}"}).json()
            keepalives = [e for e in events if e["check"]["metadata"]["name"] == "keepalive"]
            row["keepalive_events"] = len(keepalives)
            row["keepalive_failures"] = sum(1 for e in keepalives if e["check"].get("status") or any(
                h.get("status") for h in e["check"].get("history") or ()))
            print(json.dumps(row), flush=True)
            return row

        for rate in args.rates:
            rows.append(measure(rate, args.seconds, "rate"))
        if args.recover_rate is not None:
            rows.append(recover(args.recover_rate, args.recover_max))
        if args.soak:
            samples = []
            for g in loads:
                g.send(f"rate {args.soak_rate / len(loads)}")
            t_end = time.time() + args.soak
            t_start = time.time()
            minutes: list[dict[str, Any]] = []  # latency of each minute of the soak, from the sink
            minute_start = t_start
            cpu_start = [cpu_s(p) for p in pids]
            minute_cpu, minute_wait, minute_ticks = sum(cpu_start), sum(rq_wait_s(p) for p in pids), machine_ticks()
            while time.time() < t_end:
                samples.append({"t": round(time.time() - t_start), "rss_mb": [round(rss_mb(p), 1) for p in pids]})
                print(json.dumps({"soak": samples[-1]}), flush=True)
                time.sleep(10)
                if time.time() - minute_start >= 60:
                    now = time.time()
                    sink.send(f"window {minute_start} {now}")
                    w = sink.read("window")
                    cpu, wait, ticks = sum(cpu_s(p) for p in pids), sum(rq_wait_s(p) for p in pids), machine_ticks()
                    minutes.append({"t": round(now - t_start), "handled_per_s": round(w["count"] / (now - minute_start), 1),
                                    "p50_ms": round(w["p50_ms"], 1), "p99_ms": round(w["p99_ms"], 1),
                                    "max_ms": round(w["max_ms"] or 0, 1), "over_1s": w["over_1s"],
                                    "slowest": w["slowest"][:5],
                                    "backend_cpu_pct": round((cpu - minute_cpu) / (now - minute_start) * 100),
                                    "backend_rq_wait_pct": round((wait - minute_wait) / (now - minute_start) * 100),
                                    "machine_idle_pct": idle_pct(minute_ticks, ticks)})
                    minute_cpu, minute_wait, minute_ticks = cpu, wait, ticks
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
        for hog in hogs:
            hog.kill()
            hog.wait(5)
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
    ld.add_argument("--agent-sndbuf", type=int, default=0)
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--checks", type=int, default=5, help="check names per agent")
    parser.add_argument("--procs", type=int, default=1, help="load-generator processes")
    parser.add_argument("--rates", type=float, nargs="+", default=[500, 1000, 2000])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window per rate")
    parser.add_argument("--soak", type=float, default=0.0, help="seconds at --soak-rate sampling RSS")
    parser.add_argument("--soak-rate", type=float, default=1000.0)
    parser.add_argument("--keep", action="store_true", help="keep the temporary state directories")
    parser.add_argument("--agent-sndbuf", type=int, default=32 * 1024,
                        help="SO_SNDBUF of each simulated agent's socket (0: the kernel's autotuning). A real agent "
                             "sends a few results a minute and its buffer never grows; the generator's, left to "
                             "autotune, grows to megabytes and hides the agents' queues inside the kernel")
    parser.add_argument("--backend-arg", action="append", default=[],
                        help="an extra sensu-backend flag or value, repeatable (--backend-arg=--eventd-buffer-size "
                             "--backend-arg=250)")
    parser.add_argument("--hog", type=int, default=0, help="CPU-burning processes to run beside the backends")
    parser.add_argument("--recover-rate", type=float, default=None,
                        help="after the rates, drop to this rate and report how long until every queued result "
                             "was handled")
    parser.add_argument("--recover-max", type=float, default=180.0, help="give up recovering after this many s")
    parser.add_argument("--fsync-modes", nargs="+", choices=["on", "off"], default=["on"],
                        help="backends sync the journal before acknowledging (on, the default) or not "
                             "(off: --etcd-unsafe-no-fsync); with both, each node count runs both in turn")
    args = parser.parse_args()
    if args.cmd == "sink":
        sink_main(args)
        return
    if args.cmd == "load":
        load_main(args)
        return
    print(json.dumps({"cpus": os.cpu_count()}), flush=True)
    rows = []
    for count in args.nodes:
        for mode in args.fsync_modes:
            args.fsync = mode == "on"
            rows += [{**row, "fsync": mode} for row in run_cluster(count, args)]
    print()
    cols = ["nodes", "fsync", "phase", "offered_per_s", "handled_per_s", "delivered_fraction", "p50_ms", "p99_ms",
            "wrote_p50_ms", "wrote_p99_ms", "accepted_p50_ms", "accepted_p99_ms", "intake_waits", "intake_shed",
            "agent_backlog_end", "rss_max_mb", "tcp_mem_max_mb", "hog_cpu_pct", "drained_after_s", "written", "arrived", "not_arrived",
            "keepalive_failures", "sustained", "backend_cpu_pct", "backend_cpu_ms_per_event", "raft_ops_per_event", "ops_per_proposal",
            "generator_cpu_pct", "sink_cpu_pct", "backend_rq_wait_pct", "machine_idle_pct", "rss_mb", "loadavg_1m"]
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r.get(c, "")) for c in cols) + " |")
    print(json.dumps({"results": rows}))


if __name__ == "__main__":
    main()
