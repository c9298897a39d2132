"""ECDSA keys for API tokens: ``jwt-private-key-file`` and ``jwt-public-key-file``.

Why: by default tokens are HS256, signed with a secret ``init`` keeps in the
replicated store. An operator who gives every backend the same PEM key pair
gets ES256/ES384/ES512 tokens instead (the curve picks the algorithm, as in
Sensu Go's ``backend/authentication/jwt``), which any holder of the public
key can verify, and which stay valid across nodes, restarts and re-inits.

Rules (Sensu Go's ``LoadKeyPair``): a private key needs its public key; with
only a public key, tokens are still signed with the secret but ES tokens
from other holders of the key pair are accepted. HS256 tokens keep working
either way. This module only loads and checks the keys; PyJWT signs and
verifies with them (:mod:`api.auth`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["JwtKeyError", "JwtKeyPair", "load_jwt_keys"]

#: Curve size -> JWT algorithm, RFC 7518 §3.4.
_ALGORITHMS: Final = {256: "ES256", 384: "ES384", 521: "ES512"}


class JwtKeyError(Exception):
    """A key file is missing, unreadable or not an ECDSA key; ``str()`` names the setting."""


@dataclass(frozen=True)
class JwtKeyPair:
    """The public key (always) and the private key (when this node signs with it)."""

    public_key: ec.EllipticCurvePublicKey
    private_key: ec.EllipticCurvePrivateKey | None = None

    @property
    def algorithm(self) -> str:
        """ES256, ES384 or ES512: the curve picks it."""
        return _ALGORITHMS[self.public_key.curve.key_size]

    @property
    def signs(self) -> bool:
        return self.private_key is not None


def load_jwt_keys(private_path: str, public_path: str) -> JwtKeyPair | None:
    """Read the PEM files (blocking: call it in a thread); None when neither is set.

    Raises :class:`JwtKeyError` naming the setting: a private key without a
    public key, an unreadable file, a key that is not ECDSA on P-256, P-384
    or P-521, or a private key that does not match the public key.
    """
    if not private_path and not public_path:
        return None
    if private_path and not public_path:
        raise JwtKeyError("jwt-private-key-file: a public key (jwt-public-key-file) is required with a private key")
    public = _read(public_path, "jwt-public-key-file", private=False)
    assert isinstance(public, ec.EllipticCurvePublicKey)
    private = _read(private_path, "jwt-private-key-file", private=True) if private_path else None
    assert private is None or isinstance(private, ec.EllipticCurvePrivateKey)
    if private is not None and private.public_key().public_numbers() != public.public_numbers():
        raise JwtKeyError("jwt-private-key-file: the private key does not match jwt-public-key-file")
    return JwtKeyPair(public_key=public, private_key=private)


def _read(path: str, setting: str, *, private: bool) -> object:
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise JwtKeyError(f"{setting}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        key: object = (serialization.load_pem_private_key(data, password=None) if private
                       else serialization.load_pem_public_key(data))
    except (ValueError, TypeError) as exc:
        raise JwtKeyError(f"{setting}: {path} is not a PEM {'private' if private else 'public'} key: {exc}") from None
    wanted = ec.EllipticCurvePrivateKey if private else ec.EllipticCurvePublicKey
    if not isinstance(key, wanted):
        raise JwtKeyError(f"{setting}: {path} is not an ECDSA key (Sensu signs tokens with ES256/ES384/ES512)")
    size = key.curve.key_size
    if size not in _ALGORITHMS:
        raise JwtKeyError(f"{setting}: unsupported curve {key.curve.name} (P-256, P-384 or P-521 are supported)")
    return key
