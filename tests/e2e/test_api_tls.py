"""The API listener over TLS (``--cert-file``/``--key-file``/``--trusted-ca-file``), on a real process.

A throwaway CA and server certificate are made for each run with the
``cryptography`` package when the venv has it, else with the ``openssl``
command; the test is skipped only if neither is available.
"""

from __future__ import annotations

import shutil
import ssl
from pathlib import Path

import httpx
import pytest
import trio

from tests.harness.backend import BackendProcess

from .test_api_users import ADMIN, USERS, bearer, jwt_claims
from .test_init import run_init


class TlsBackendProcess(BackendProcess):
    """A node whose API URL is ``https://``."""

    @property
    def api_url(self) -> str:
        return f"https://{self.host}:{self.api_port}"

    @property
    def plain_api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"


async def _openssl(*args: str, cwd: Path) -> None:
    with trio.fail_after(60):
        proc = await trio.run_process(["openssl", *args], cwd=str(cwd), capture_stdout=True, capture_stderr=True,
                                      check=False)
    assert proc.returncode == 0, f"openssl {' '.join(args)}: {proc.stderr.decode(errors='replace')}"


async def make_certificates(directory: Path, host: str) -> tuple[Path, Path, Path]:
    """(ca.pem, server.pem, server.key) for ``host``, valid for a day."""
    ca, cert, key = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    try:
        from cryptography import x509  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            pytest.skip("neither the cryptography package nor the openssl command is available")
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        await _openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", ca.name, "-days", "1",
                       "-subj", "/CN=sensu test CA", "-addext", "basicConstraints=critical,CA:TRUE",
                       "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=directory)
        await _openssl("req", *ec, "-keyout", key.name, "-out", "server.csr", "-subj", f"/CN={host}", cwd=directory)
        (directory / "server.ext").write_text(
            f"subjectAltName=IP:{host},DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n")
        await _openssl("x509", "-req", "-in", "server.csr", "-CA", ca.name, "-CAkey", "ca.key", "-CAcreateserial",
                       "-out", cert.name, "-days", "1", "-extfile", "server.ext", cwd=directory)
        return ca, cert, key
    _cryptography_certificates(ca, cert, key, host)
    return ca, cert, key


def _cryptography_certificates(ca_path: Path, cert_path: Path, key_path: Path, host: str) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sensu test CA")])
    ca_cert = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
               .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
               .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host)),
                                                        x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(ca_key, hashes.SHA256()))
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))


def _causes(exc: BaseException | None) -> str:
    """Every message down the ``__cause__``/``__context__`` chain (trio's SSL errors wrap the reason)."""
    parts: list[str] = []
    while exc is not None and len(parts) < 10:
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or exc.__context__
    return " <- ".join(parts)


async def test_api_over_tls(tmp_path: Path) -> None:
    host = "127.0.0.1"
    certs = tmp_path / "certs"
    certs.mkdir()
    ca, cert, key = await make_certificates(certs, host)
    node = TlsBackendProcess("default", host, tmp_path / "node", extra_args=[
        "--cert-file", str(cert), "--key-file", str(key), "--trusted-ca-file", str(ca)])
    trusting = ssl.create_default_context(cafile=str(ca))
    node.start()
    try:
        async with httpx.AsyncClient(verify=trusting, timeout=10.0) as client:
            await node.wait_healthy(client, 45)
            r = await client.get(f"{node.api_url}/health")
            assert r.status_code == 200 and r.json()["ClusterHealth"][0]["Healthy"] is True
            r = await client.get(f"{node.api_url}/version")
            assert r.status_code == 200 and r.json()["sensu_backend"]
            r = await client.get(f"{node.api_url}/metrics")
            assert r.status_code == 200 and "sensu_raft_term" in r.text

            # init over https, trusting the CA, then an authenticated route
            result = await trio.to_thread.run_sync(lambda: run_init(
                node.api_url, "--trusted-ca-file", str(ca),
                "--cluster-admin-username", ADMIN[0], "--cluster-admin-password", ADMIN[1]))
            assert result.returncode == 0, result.stderr
            r = await client.get(f"{node.api_url}/auth", auth=ADMIN)
            assert r.status_code == 200, r.text
            tokens = r.json()
            assert jwt_claims(tokens["access_token"])["iss"] == node.api_url
            r = await client.get(f"{node.api_url}{USERS}", headers=bearer(tokens))
            assert r.status_code == 200 and "admin" in [u["username"] for u in r.json()]
            r = await client.get(f"{node.api_url}/silenced", auth=ADMIN)
            assert (r.status_code, r.json()) == (200, [])

        # plain HTTP to the TLS port fails, and so does a client that does not trust the CA
        async with httpx.AsyncClient(timeout=5.0) as plain:
            with pytest.raises(httpx.TransportError):
                await plain.get(f"{node.plain_api_url}/health")
            with pytest.raises(httpx.ConnectError) as refused:
                await plain.get(f"{node.api_url}/health")
            assert "CERTIFICATE_VERIFY_FAILED" in _causes(refused.value)
        # the node survived both
        async with httpx.AsyncClient(verify=trusting, timeout=10.0) as client:
            assert (await client.get(f"{node.api_url}/health")).status_code == 200
    finally:
        node.stop()
