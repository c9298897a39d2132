"""Sending events to tcp and udp handlers: one connection or datagram per event, bounded by a timeout.

Pipe handlers and mutators run through :func:`core.execute.run_command` with
:data:`~core.execute.HANDLER_POLICY` (own process group, SIGKILLed at the
timeout, output capped at 16 MiB), shared with the agent's checks.
"""

from __future__ import annotations

import errno
import functools
import ipaddress
import os
import socket
from typing import Final

import trio

__all__ = ["send_tcp", "send_udp"]


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
