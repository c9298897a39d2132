"""``jwt-private-key-file``/``jwt-public-key-file`` sign and verify API tokens (issue 17, point 4)."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import trio
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from tests.harness.agent import ADMIN, init_backend
from tests.harness.backend import BackendProcess, Cluster, make_cluster_nodes

from .test_run_and_errors import start_and_wait_exit

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def write_key_pair(directory: Path, name: str) -> tuple[Path, Path, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = directory / f"{name}.pem", directory / f"{name}.pub.pem"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, public, key


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def resign(token: str, key: ec.EllipticCurvePrivateKey) -> str:
    """The same header and claims, signed by another key (a forgery)."""
    header, payload, _ = token.split(".")
    r, s = decode_dss_signature(key.sign(f"{header}.{payload}".encode(), ec.ECDSA(hashes.SHA256())))
    return f"{header}.{payload}.{b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


@pytest.fixture
async def keyed_node(tmp_path: Path, client: httpx.AsyncClient) -> AsyncIterator[tuple[BackendProcess, ec.EllipticCurvePrivateKey]]:
    private, public, key = write_key_pair(tmp_path, "jwt")
    proc = BackendProcess("default", "127.0.0.1", tmp_path / "node", extra_args=[
        "--jwt-private-key-file", str(private), "--jwt-public-key-file", str(public)])
    proc.start()
    try:
        await proc.wait_healthy(client)
        await init_backend(proc)
        yield proc, key
    finally:
        proc.stop()


async def test_tokens_are_signed_with_the_key_pair_and_survive_a_restart(
        tmp_path: Path, keyed_node: tuple[BackendProcess, ec.EllipticCurvePrivateKey],
        client: httpx.AsyncClient) -> None:
    node, key = keyed_node
    r = await client.get(f"{node.api_url}/auth", auth=ADMIN)
    assert r.status_code == 200, r.text
    token = r.json()["access_token"]
    header_b64, payload_b64, signature_b64 = token.split(".")
    assert json.loads(unb64(header_b64))["alg"] == "ES256"
    signature = unb64(signature_b64)
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.public_key().verify(der, f"{header_b64}.{payload_b64}".encode(), ec.ECDSA(hashes.SHA256()))  # raises if bad

    headers = {"Authorization": f"Bearer {token}"}
    assert (await client.get(f"{node.api_url}/api/core/v2/namespaces", headers=headers)).status_code == 200
    forged = resign(token, ec.generate_private_key(ec.SECP256R1()))
    r = await client.get(f"{node.api_url}/api/core/v2/namespaces", headers={"Authorization": f"Bearer {forged}"})
    assert r.status_code == 401

    node.stop()
    node.start()
    await node.wait_healthy(client)
    assert (await client.get(f"{node.api_url}/api/core/v2/namespaces", headers=headers)).status_code == 200
    with trio.fail_after(30):
        pair = (await client.get(f"{node.api_url}/auth", auth=ADMIN)).json()
        rotated = await client.post(f"{node.api_url}/auth/token", json={"refresh_token": pair["refresh_token"]},
                                    headers={"Authorization": f"Bearer {pair['access_token']}"})
    assert rotated.status_code == 200, rotated.text
    assert json.loads(unb64(rotated.json()["access_token"].split(".")[0]))["alg"] == "ES256"


async def test_key_file_errors_stop_the_start_with_one_line(tmp_path: Path) -> None:
    private, public, _ = write_key_pair(tmp_path, "jwt")
    result = await trio.to_thread.run_sync(lambda: start_and_wait_exit(
        ["--jwt-private-key-file", str(private)], tmp_path))
    assert result.returncode != 0
    assert "jwt-public-key-file is required when jwt-private-key-file is set" in result.stderr
    bad = tmp_path / "not-a-key.pem"
    bad.write_text("hello")
    result = await trio.to_thread.run_sync(lambda: start_and_wait_exit(
        ["--jwt-private-key-file", str(private), "--jwt-public-key-file", str(bad)], tmp_path))
    assert result.returncode != 0
    assert "jwt-public-key-file:" in result.stderr and "is not a PEM public key" in result.stderr
    assert "Traceback" not in result.stderr


async def test_tokens_signed_on_one_node_verify_on_a_node_holding_only_the_public_key(
        tmp_path: Path, client: httpx.AsyncClient) -> None:
    private, public, key = write_key_pair(tmp_path, "jwt")
    signer, verifier = make_cluster_nodes(tmp_path, 2)
    signer.extra_args += ["--jwt-private-key-file", str(private), "--jwt-public-key-file", str(public)]
    verifier.extra_args += ["--jwt-public-key-file", str(public)]
    cluster = Cluster([signer, verifier], client)
    try:
        for n in cluster.nodes:
            n.start()
        await cluster.wait_healthy(45.0)
        await init_backend(signer)
        es_token = (await client.get(f"{signer.api_url}/auth", auth=ADMIN)).json()["access_token"]
        hs_token = (await client.get(f"{verifier.api_url}/auth", auth=ADMIN)).json()["access_token"]
        assert json.loads(unb64(es_token.split(".")[0]))["alg"] == "ES256"
        assert json.loads(unb64(hs_token.split(".")[0]))["alg"] == "HS256"  # verify-only: signs with the secret
        for node in (signer, verifier):
            for token in (es_token, hs_token):
                r = await client.get(f"{node.api_url}/api/core/v2/namespaces",
                                     headers={"Authorization": f"Bearer {token}"})
                assert r.status_code == 200, (node.name, r.text)
    finally:
        cluster.stop()
