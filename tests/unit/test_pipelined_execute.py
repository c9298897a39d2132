"""The handler transports of pipelined: tcp (one connection per event) and udp, against real sockets."""

from __future__ import annotations

import socket
from functools import partial

import pytest
import trio

from backend.pipelined.execute import send_tcp, send_udp


async def _tcp_server(nursery: trio.Nursery, received: list[bytes], host: str = "127.0.0.1") -> int:
    async def handle(stream: trio.SocketStream) -> None:
        chunks = []
        async with stream:
            async for chunk in stream:
                chunks.append(chunk)
        received.append(b"".join(chunks))

    listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host=host))
    return listeners[0].socket.getsockname()[1]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
async def test_tcp_send_delivers_the_whole_payload_and_closes(host: str) -> None:
    received: list[bytes] = []
    payload = bytes(range(256)) * 8192  # 2 MiB: more than one socket buffer, so partial sends happen
    async with trio.open_nursery() as nursery:
        port = await _tcp_server(nursery, received)
        await send_tcp(host, port, b'{"small":1}', timeout=5)
        await send_tcp(host, port, payload, timeout=5)
        with trio.fail_after(5):
            while len(received) < 2:
                await trio.sleep(0.01)
        nursery.cancel_scope.cancel()
    assert sorted(received, key=len) == [b'{"small":1}', payload]


async def test_tcp_send_to_a_closed_port_raises_oserror() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # bound, not listening: connection refused
        with pytest.raises(OSError, match=f"connect to 127.0.0.1:{port}: Connection refused"):
            await send_tcp("127.0.0.1", port, b"x", timeout=5)


async def test_tcp_send_times_out_when_the_peer_never_reads() -> None:
    async with trio.open_nursery() as nursery:
        listener = trio.socket.socket()
        await listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(trio.TooSlowError):
            await send_tcp("127.0.0.1", port, b"x" * (64 << 20), timeout=0.5)  # never accepted nor read
        listener.close()
        nursery.cancel_scope.cancel()


async def test_udp_send_delivers_one_datagram() -> None:
    sock = trio.socket.socket(type=trio.socket.SOCK_DGRAM)
    await sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    await send_udp("127.0.0.1", port, b"event", timeout=5)
    with trio.fail_after(5):
        data, _ = await sock.recvfrom(100)
    assert data == b"event"
    sock.close()
