"""TLS between Raft members (etcd's ``--etcd-peer-*`` flags, :class:`cluster.membership.PeerTLS`), under pysyncobj's non-blocking sockets.

pysyncobj drives plain non-blocking sockets from its own poller: it calls
``send``/``recv`` when the poller says so and treats ``EAGAIN`` as "later".
:class:`TLSPeerSocket` gives it that same interface over a TLS session kept in
memory (``ssl.SSLObject`` with two ``MemoryBIO``), so pysyncobj's connection
code, framing and timeouts are unchanged and every byte on the wire is TLS:

* the dialling member starts the handshake with the first message it sends
  (its cluster-token hello), which waits, encrypted later, until the
  handshake is done;
* ``send`` accepts data only while no earlier ciphertext is still waiting
  for the socket, and says ``EAGAIN`` otherwise, so pysyncobj keeps the rest
  in its own buffer exactly as after a short write on a plain socket;
* a failed handshake (a certificate from another CA, none when one is
  required, a name that does not match) is logged once per peer address,
  naming it and the reason, and the connection is dropped.

With ``etcd-peer-client-cert-auth`` the accepting member requires a client
certificate signed by ``etcd-peer-trusted-ca-file``; the dialling member always
checks the accepting member's certificate against that CA (or the system's
when none is given) and its address against the certificate's names, as
etcd's peer transport does.
"""

from __future__ import annotations

import errno
import logging
import socket
import ssl
from typing import Any, Callable

from ..membership import PeerTLS

__all__ = ["TLSPeerSocket", "peer_tls_contexts"]

#: The name this logger had before the move into cluster/raft/: log lines keep their component ("peer_tls").
logger = logging.getLogger("cluster.peer_tls")


def peer_tls_contexts(tls: PeerTLS) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server, client) contexts; raises ``ssl.SSLError``/``OSError`` for unreadable or mismatched files."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    for ctx in (server, client):
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
        if tls.trusted_ca_file:
            ctx.load_verify_locations(cafile=tls.trusted_ca_file)
        else:
            ctx.load_default_certs(ssl.Purpose.SERVER_AUTH if ctx is client else ssl.Purpose.CLIENT_AUTH)
    server.verify_mode = ssl.CERT_REQUIRED if tls.client_cert_auth else ssl.CERT_NONE
    client.verify_mode = ssl.CERT_REQUIRED
    client.check_hostname = True
    return server, client


def _again(what: str) -> BlockingIOError:
    return BlockingIOError(errno.EAGAIN, what)


class TLSPeerSocket:
    """A connected non-blocking socket, seen by pysyncobj as a plain one, speaking TLS underneath."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, *, server_side: bool,
                 server_hostname: str | None, peer: str, on_failure: Callable[[str, str], None]) -> None:
        self._sock = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._tls = context.wrap_bio(self._incoming, self._outgoing, server_side=server_side,
                                     server_hostname=server_hostname)
        self._handshaken = False
        self._pending = bytearray()  # plaintext accepted before the handshake finished
        self._cipher = bytearray()  # ciphertext the socket has not taken yet
        self._peer = peer
        self._on_failure = on_failure

    # -- what pysyncobj calls besides send/recv -----------------------------------------

    def fileno(self) -> int:
        return self._sock.fileno()

    def getsockopt(self, *args: Any) -> Any:
        return self._sock.getsockopt(*args)

    def setsockopt(self, *args: Any) -> None:
        self._sock.setsockopt(*args)

    def close(self) -> None:
        self._sock.close()

    # -- TLS ----------------------------------------------------------------------------

    def _fail(self, exc: ssl.SSLError) -> OSError:
        if isinstance(exc, ssl.SSLCertVerificationError):
            reason = f"its certificate is not trusted (etcd-peer-trusted-ca-file): {exc.verify_message}"
        elif "ALERT" in (exc.reason or ""):
            reason = f"it refused our certificate or TLS settings ({exc.reason})"
        else:
            reason = exc.reason or str(exc)
        self._on_failure(self._peer, reason)
        return ConnectionResetError(errno.ECONNRESET, f"TLS with Raft peer {self._peer} failed: {exc}")

    def _flush(self) -> bool:
        """Hand the socket what TLS produced; True when nothing is left waiting."""
        produced = self._outgoing.read()
        if produced:
            self._cipher += produced
        while self._cipher:
            try:
                sent = self._sock.send(self._cipher)
            except BlockingIOError:
                return False
            if sent <= 0:
                return False
            del self._cipher[:sent]
        return True

    def _handshake(self) -> bool:
        try:
            self._tls.do_handshake()
        except ssl.SSLWantReadError:
            self._flush()
            return False
        except ssl.SSLError as exc:
            self._flush()  # the alert, so the peer learns why
            raise self._fail(exc) from None
        self._handshaken = True
        if self._pending:
            self._tls.write(bytes(self._pending))
            self._pending.clear()
        self._flush()
        return True

    def send(self, data: bytes) -> int:
        if not self._handshaken:
            self._pending += data
            self._handshake()
            return len(data)
        if not self._flush():
            raise _again("earlier TLS records still wait for the socket")
        self._tls.write(data)
        self._flush()
        return len(data)

    def recv(self, size: int) -> bytes:
        self._flush()
        try:
            raw: bytes | None = self._sock.recv(size)
        except BlockingIOError:
            raw = None
        if raw == b"":
            return b""  # the peer closed the connection
        if raw:
            self._incoming.write(raw)
        if not self._handshaken and not self._handshake():
            raise _again("TLS handshake in progress")
        try:
            return self._tls.read(size)
        except ssl.SSLWantReadError:
            raise _again("no whole TLS record yet") from None
        except ssl.SSLZeroReturnError:
            return b""
        except ssl.SSLError as exc:
            raise self._fail(exc) from None
