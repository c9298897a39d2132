"""ECDSA key pairs for API tokens: curves, algorithms, file errors."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from api.auth import sign_jwt, verify_jwt
from api.errors import ApiError
from api.jwtkeys import JwtKeyError, load_jwt_keys

SECRET = b"s" * 32


def write(tmp_path: Path, name: str, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> tuple[str, str]:
    private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub"
    private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                          serialization.NoEncryption()))
    public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                     serialization.PublicFormat.SubjectPublicKeyInfo))
    return str(private), str(public)


@pytest.mark.parametrize("curve, alg", [(ec.SECP256R1(), "ES256"), (ec.SECP384R1(), "ES384"),
                                        (ec.SECP521R1(), "ES512")])
def test_the_curve_picks_the_algorithm_and_tokens_verify(tmp_path: Path, curve: ec.EllipticCurve, alg: str) -> None:
    keys = load_jwt_keys(*write(tmp_path, "k", ec.generate_private_key(curve)))
    assert keys is not None and keys.algorithm == alg
    claims = {"sub": "admin", "exp": int(time.time()) + 60}
    token = sign_jwt(claims, SECRET, keys)
    assert verify_jwt(token, SECRET, jwt_keys=keys)["sub"] == "admin"
    with pytest.raises(ApiError):  # an ES token without the public key is refused
        verify_jwt(token, SECRET)
    assert verify_jwt(sign_jwt(claims, SECRET), SECRET, jwt_keys=keys)["sub"] == "admin"  # HS256 still works


def test_a_verify_only_node_accepts_tokens_of_the_key_holder(tmp_path: Path) -> None:
    private, public = write(tmp_path, "k", ec.generate_private_key(ec.SECP256R1()))
    signer, verifier = load_jwt_keys(private, public), load_jwt_keys("", public)
    assert signer is not None and verifier is not None and not verifier.signs
    token = sign_jwt({"sub": "a", "exp": int(time.time()) + 60}, SECRET, signer)
    assert verify_jwt(token, b"other secret", jwt_keys=verifier)["sub"] == "a"
    other = load_jwt_keys(*write(tmp_path, "other", ec.generate_private_key(ec.SECP256R1())))
    with pytest.raises(ApiError):
        verify_jwt(token, SECRET, jwt_keys=other)


def test_key_file_errors_name_the_setting(tmp_path: Path) -> None:
    assert load_jwt_keys("", "") is None
    private, public = write(tmp_path, "k", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(JwtKeyError, match="jwt-private-key-file: a public key"):
        load_jwt_keys(private, "")
    with pytest.raises(JwtKeyError, match="jwt-public-key-file: cannot read"):
        load_jwt_keys("", str(tmp_path / "missing.pub"))
    rsa_private, rsa_public = write(tmp_path, "rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048))
    with pytest.raises(JwtKeyError, match="is not an ECDSA key"):
        load_jwt_keys("", rsa_public)
    _, other_public = write(tmp_path, "other", ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(JwtKeyError, match="does not match"):
        load_jwt_keys(private, other_public)
