"""The agent's test for "the backend is alive and pushing back": the kernel's view of the peer."""

from __future__ import annotations

import socket

from agent.transport import peer_acknowledges


def test_a_connected_peer_that_acknowledges_and_an_unknown_socket() -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(listener.getsockname())
    server, _ = listener.accept()
    try:
        client.setblocking(False)
        try:  # fill the peer's receive buffer: it is alive, it just does not read
            while True:
                client.send(b"x" * 65536)
        except BlockingIOError:
            pass
        assert peer_acknowledges(client)  # nothing to retransmit: the peer acknowledged what it holds
        assert not peer_acknowledges(None)  # unknown: the plain heartbeat rule applies
    finally:
        for s in (client, server, listener):
            s.close()
