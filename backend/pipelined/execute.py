"""Running mutators and handlers: child processes and sockets, bounded and killable.

Children run in their own process group; at ``timeout`` the whole group gets
SIGKILL (a handler that forks a shell pipeline cannot outlive its deadline).
Output is collected without blocking the event loop (``trio.run_process``).
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import signal
import socket
import subprocess
from dataclasses import dataclass
from typing import Final, Mapping, Sequence

import trio

__all__ = ["ProcessResult", "run_command", "send_tcp", "send_udp", "env_with"]

#: Output kept from a mutator or handler: a mutator's output is the handler's input, and an
#: event can carry a multi-MB check output (the agent message limit is 16 MiB).
MAX_OUTPUT = 16 << 20


@dataclass(frozen=True, slots=True)
class ProcessResult:
    status: int
    output: str
    timed_out: bool


def env_with(env_vars: Sequence[str] | None) -> dict[str, str]:
    """Process environment plus ``KEY=VALUE`` entries (later wins)."""
    env = dict(os.environ)
    for item in env_vars or ():
        key, sep, value = item.partition("=")
        if sep and key:
            env[key] = value
    return env


async def run_command(command: str, stdin: bytes, *, timeout: float, env: Mapping[str, str]) -> ProcessResult:
    """``sh -c command`` with ``stdin``; merged stdout+stderr; group-killed at ``timeout`` (0 = none)."""
    proc: trio.Process | None = None
    chunks: list[bytes] = []
    size = 0
    timed_out = False

    async def feed(stream: trio.abc.SendStream) -> None:
        try:
            await stream.send_all(stdin)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await stream.aclose()

    async def drain(stream: trio.abc.ReceiveStream) -> None:
        nonlocal size
        async for chunk in stream:
            if size < MAX_OUTPUT:
                chunks.append(chunk[: MAX_OUTPUT - size])
                size += len(chunk)

    async with trio.open_nursery() as nursery:
        proc = await nursery.start(lambda task_status=trio.TASK_STATUS_IGNORED: trio.run_process(
            ["/bin/sh", "-c", command], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=dict(env), start_new_session=True, check=False, task_status=task_status))
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        nursery.start_soon(feed, proc.stdin)
        nursery.start_soon(drain, proc.stdout)
        if timeout and timeout > 0:
            async def watchdog() -> None:
                nonlocal timed_out
                await trio.sleep(timeout)
                timed_out = True
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            scope = trio.CancelScope()

            async def guarded() -> None:
                with scope:
                    await watchdog()

            nursery.start_soon(guarded)
            await proc.wait()
            scope.cancel()
        else:
            await proc.wait()
    output = b"".join(chunks).decode("utf-8", errors="replace")
    status = 2 if timed_out else (proc.returncode if proc.returncode is not None and proc.returncode >= 0 else 2)
    return ProcessResult(status, output, timed_out)


async def send_tcp(host: str, port: int, payload: bytes, *, timeout: float) -> None:
    """Connect, send ``payload``, close (one connection per event, as Sensu's tcp handler).

    Why a plain non-blocking socket for IP literals: this runs once per
    event, and trio's socket wrapper and stream add Python work around each
    system call (5 % of an event's CPU on one node, docs/performance.md). Names still go through ``trio.open_tcp_stream``
    (its resolver runs in a worker thread).
    """
    with trio.fail_after(timeout):
        family = _ip_family(host)
        if family is None:
            stream = await trio.open_tcp_stream(host, port)
            async with stream:
                await stream.send_all(payload)
            return
        sock = socket.socket(family, socket.SOCK_STREAM)
        registered = False
        try:
            sock.setblocking(False)
            err = sock.connect_ex((host, port))
            view = memoryview(payload)
            if err in _CONNECT_PENDING:
                # on a local or fast link the handshake is usually done already: try to send
                # before asking trio to watch the socket (an epoll registration per event)
                try:
                    view = view[sock.send(view):]
                except (BlockingIOError, InterruptedError):
                    registered = True
                    await trio.lowlevel.wait_writable(sock)
                except OSError as exc:  # refused, reset: the connection never carried a byte
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) or exc.errno or errno.ECONNREFUSED
                else:
                    err = 0
                if err in _CONNECT_PENDING:
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, f"connect to {host}:{port}: {os.strerror(err)}")
            while view:
                try:
                    view = view[sock.send(view):]
                except BlockingIOError:
                    registered = True
                    await trio.lowlevel.wait_writable(sock)
        finally:
            if registered:
                trio.lowlevel.notify_closing(sock)
            sock.close()
        await trio.lowlevel.checkpoint()


_CONNECT_PENDING: Final = frozenset({errno.EINPROGRESS, errno.EAGAIN, errno.EWOULDBLOCK})


@functools.lru_cache(maxsize=256)
def _ip_family(host: str) -> int | None:
    """The address family of an IP literal; None for a name (handlers name few hosts)."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


async def send_udp(host: str, port: int, payload: bytes, *, timeout: float) -> None:
    with trio.fail_after(timeout):
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_DGRAM)
        family, type_, proto, _, addr = infos[0]
        sock = trio.socket.socket(family, type_, proto)
        with sock:
            sent = await sock.sendto(payload, addr)
            if sent != len(payload):
                raise OSError(f"short UDP write: {sent} of {len(payload)} bytes")
