"""Agents authenticated by a client certificate (mTLS) instead of a password.

A backend with ``--cert-file/--key-file/--trusted-ca-file``; a real
``sensu-agent`` with ``--cert-file/--key-file`` (and no password) registers
when its certificate's common name is its own name, and an agent presenting
someone else's certificate is refused with a log line while the first one
keeps working.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
import trio

from tests.harness.agent import ADMIN, AgentProcess, Api, ns_path, run_init, wait_until

from .test_api_tls import TlsBackendProcess

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

x509 = pytest.importorskip("cryptography.x509")


def issue_certificates(directory: Path, host: str, clients: list[str]) -> dict[str, Path]:
    """A CA, a server certificate for ``host`` and one client certificate per name (CN = name)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensu test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(validity[0]).not_valid_after(validity[1])
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    paths = {"ca": directory / "ca.pem"}
    paths["ca"].write_bytes(ca.public_bytes(serialization.Encoding.PEM))

    def leaf(name: str, usage: x509.ObjectIdentifier, san: list[x509.GeneralName]) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
                   .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(validity[0]).not_valid_after(validity[1])
                   .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
        if san:
            builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
        cert = builder.sign(ca_key, hashes.SHA256())
        paths[name] = directory / f"{name}.pem"
        paths[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        paths[f"{name}.key"] = directory / f"{name}.key"
        write_key(key, paths[f"{name}.key"])

    leaf("server", ExtendedKeyUsageOID.SERVER_AUTH, [x509.IPAddress(ipaddress.ip_address(host))])
    for name in clients:
        leaf(name, ExtendedKeyUsageOID.CLIENT_AUTH, [x509.DNSName(name)])
    return paths


async def test_agent_authenticates_with_its_client_certificate(tmp_path: Path) -> None:
    host = "127.0.0.1"
    certs = tmp_path / "certs"
    certs.mkdir()
    paths = issue_certificates(certs, host, ["mtls-agent"])
    node = TlsBackendProcess("default", host, tmp_path / "node", extra_args=[
        "--cert-file", str(paths["server"]), "--key-file", str(paths["server.key"]),
        "--trusted-ca-file", str(paths["ca"])])
    url = f"wss://{host}:{node.agent_port}"
    tls_args = ["--trusted-ca-file", str(paths["ca"]), "--cert-file", str(paths["mtls-agent"]),
                "--key-file", str(paths["mtls-agent.key"])]
    honest = AgentProcess(tmp_path, [url], name="mtls-agent", extra_args=[*tls_args, "--keepalive-interval", "2"])
    impostor = AgentProcess(tmp_path, [url], name="impostor", extra_args=tls_args)
    node.start()
    try:
        async with httpx.AsyncClient(verify=ssl.create_default_context(cafile=str(paths["ca"])),
                                     timeout=10.0) as client:
            await node.wait_healthy(client, 45)
            result = await trio.to_thread.run_sync(lambda: run_init(
                node.api_url, "--trusted-ca-file", str(paths["ca"]),
                "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
            assert result.returncode == 0, result.stderr
            api = Api(client, [node])
            honest.start()
            logs = (honest.log, node.log)
            event = await wait_until("the certificate-authenticated agent to register",
                                     lambda: api.get_json(ns_path("events", "mtls-agent", "keepalive")), *logs)
            assert event["check"]["status"] == 0

            impostor.start()
            await wait_until("the impostor to be refused", lambda: any(
                "agent handshake refused: 401 client certificate common name does not match the agent name" in line
                and '"entity": "impostor"' in line for line in node.log().splitlines()), impostor.log, node.log)
            assert await api.get_json(ns_path("entities", "impostor")) is None
            # the honest agent is unaffected: its keepalives keep arriving
            seen = event["timestamp"]

            async def fresh_keepalive() -> bool:
                current = await api.get_json(ns_path("events", "mtls-agent", "keepalive"))
                return bool(current and current["timestamp"] > seen)

            await wait_until("another keepalive from the honest agent", fresh_keepalive, *logs)
    finally:
        impostor.stop()
        honest.stop()
        node.stop()
