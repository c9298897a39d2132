"""Authentication over HTTP: JWT access/refresh tokens, sessions and API keys.

Tokens are HS256 JWTs signed with a 32-byte secret that ``init`` stores in the
replicated map, so every node verifies every node's tokens (api.md §3.2); with
``jwt-private-key-file``/``jwt-public-key-file`` they are ES256/384/512 signed
with that key pair instead (:mod:`api.jwtkeys`). PyJWT encodes, signs and
verifies them; this module decides which key goes with which algorithm, when
a token has expired, and caches verified tokens.
Each login opens a *session* (a store key under a 12 h lease) holding the
current refresh token id; refreshing rotates it (6.10 behaviour), logout
deletes it, and an access token whose session is gone — or whose user is
disabled — is rejected at once, on every node.

Who a user is, their password check and the RBAC decision live in
:mod:`core.identity` (agentd shares them); this module holds what is
REST-specific: tokens, sessions, API keys and their 401s.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any, Final

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import EllipticCurvePublicKey
from jwt.types import Options

from cluster.store import Store
from core.identity import Principal, load_user, load_user_shared, user_groups
from core.resources import User, keys
from core.resources.storage import decode_dict, encode_dict
from core.seed import JWT_SECRET_KEY

from .errors import CODE_UNAUTHENTICATED, ApiError
from .jwtkeys import JwtKeyPair

__all__ = [
    "ACCESS_TTL_S",
    "REFRESH_TTL_S",
    "TokenPair",
    "sign_jwt",
    "verify_jwt",
    "open_session",
    "refresh_session",
    "close_session",
    "authenticate",
    "session_key",
]

ACCESS_TTL_S = 5 * 60
REFRESH_TTL_S = 12 * 3600


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_at: int
    refresh_token: str

    def to_wire(self) -> dict[str, Any]:
        return {"access_token": self.access_token, "expires_at": self.expires_at, "refresh_token": self.refresh_token}


def sign_jwt(claims: dict[str, Any], secret: bytes, jwt_keys: JwtKeyPair | None = None) -> str:
    """HS256 with ``secret``, or ES256/384/512 when ``jwt_keys`` holds a private key.

    PyJWT writes the token: header ``{"alg":...,"typ":"JWT"}`` and the claims
    as compact JSON in their given order, byte for byte what this module wrote
    before it used PyJWT (old tokens still verify, new ones read the same).
    """
    if jwt_keys is not None and jwt_keys.private_key is not None:
        return jwt.encode(claims, jwt_keys.private_key, algorithm=jwt_keys.algorithm)
    return jwt.encode(claims, secret, algorithm="HS256")


#: PyJWT's claim checks are all off: it checks the signature; which claims a
#: token must have and when it expires is :func:`_unexpired`'s rule, which the
#: verification cache applies on every request without PyJWT. (Its ``iat``
#: check would also refuse tokens from a node whose clock is a little ahead.)
_SIGNATURE_ONLY: Final[Options] = {
    "verify_signature": True,
    "verify_exp": False,
    "verify_nbf": False,
    "verify_iat": False,
    "verify_aud": False,
    "verify_iss": False,
    "verify_sub": False,
    "verify_jti": False,
}


def _verification_key(alg: object, secret: bytes, jwt_keys: JwtKeyPair | None) -> bytes | EllipticCurvePublicKey | None:
    """The key a token signed with ``alg`` must verify with; None: no such token is accepted.

    Each accepted algorithm has its own key (HS256: the cluster secret; the
    key pair's ES algorithm: its public key), so a token cannot get its HMAC
    checked with the public key or the reverse (RFC 8725 §2.1).
    """
    if alg == "HS256":
        return secret
    if jwt_keys is not None and alg == jwt_keys.algorithm:
        return jwt_keys.public_key
    return None


def _unexpired(claims: dict[str, Any], now: float | None = None) -> bool:
    """Whether ``exp`` is a number later than ``now`` (no leeway)."""
    exp = claims.get("exp")
    return isinstance(exp, (int, float)) and exp > (now if now is not None else time.time())


def verify_jwt(token: str, secret: bytes, *, now: float | None = None, check_expiry: bool = True,
               jwt_keys: JwtKeyPair | None = None) -> dict[str, Any]:
    """The claims of a valid token; raises ApiError(401 invalid credentials) otherwise.

    HS256 tokens are checked with ``secret``; ES256/384/512 tokens with the
    public key of ``jwt_keys`` (refused when there is none).
    """
    claims: dict[str, Any] | None = None
    try:
        alg = jwt.get_unverified_header(token).get("alg")
        key = _verification_key(alg, secret, jwt_keys)
        if key is not None:
            claims = jwt.decode(token, key, algorithms=[str(alg)], options=_SIGNATURE_ONLY)
    except (jwt.PyJWTError, ValueError, RecursionError):  # malformed, forged, or signed with another key
        claims = None
    if claims is None or (check_expiry and not _unexpired(claims, now)):
        raise ApiError(401, "invalid credentials", CODE_UNAUTHENTICATED)
    return claims


_VERIFIED_MAX = 4096
_verified: dict[tuple[str, bytes, int], dict[str, Any]] = {}


def _verify_jwt_cached(token: str, secret: bytes, jwt_keys: JwtKeyPair | None = None) -> dict[str, Any]:
    """:func:`verify_jwt`, with the signature checked once per token and secret.

    Why: a client sends the same token with every request for its lifetime,
    and parsing and verifying it was a tenth of a GET. Expiry is still checked
    on every call; revocation does not depend on this (the session key is
    read on every request); a new secret misses the cache. Only valid tokens
    are remembered, so forged ones cannot fill it.
    """
    ident = (token, secret, id(jwt_keys))
    claims = _verified.get(ident)
    if claims is None:
        claims = verify_jwt(token, secret, check_expiry=False, jwt_keys=jwt_keys)
        if len(_verified) >= _VERIFIED_MAX:
            _verified.clear()
        _verified[ident] = claims
    if not _unexpired(claims):
        raise ApiError(401, "invalid credentials", CODE_UNAUTHENTICATED)
    return claims


async def jwt_secret(store: Store) -> bytes:
    kv = await store.get(JWT_SECRET_KEY)
    if kv is None:
        raise ApiError(503, "the cluster is not initialized yet (run sensu-backend init)", 0,
                       headers={"Retry-After": "5"})
    return kv.value


def session_key(session_id: str) -> str:
    return keys.internal_key("sessions", session_id)


async def _mint(store: Store, user: User, session_id: str, issuer: str, refresh_jti: str,
                jwt_keys: JwtKeyPair | None) -> TokenPair:
    secret = await jwt_secret(store)
    now = int(time.time())
    access = sign_jwt({
        "sub": user.username,
        "exp": now + ACCESS_TTL_S,
        "iat": now,
        "jti": secrets.token_hex(16),
        "iss": issuer,
        "groups": user_groups(user),
        "provider": {"provider_id": "basic", "provider_type": "", "user_id": user.username},
        "api_key": False,
        "session_id": session_id,
    }, secret, jwt_keys)
    refresh = sign_jwt({
        "sub": user.username,
        "jti": refresh_jti,
        "iat": now,
        "exp": now + REFRESH_TTL_S,
        "session_id": session_id,
    }, secret, jwt_keys)
    return TokenPair(access, now + ACCESS_TTL_S, refresh)


async def open_session(store: Store, user: User, issuer: str, *, jwt_keys: JwtKeyPair | None = None) -> TokenPair:
    """A new login: a session under a lease, and its first token pair."""
    session_id = secrets.token_hex(16)
    jti = secrets.token_hex(16)
    lease = await store.grant_lease(REFRESH_TTL_S)
    await store.put(session_key(session_id), encode_dict({"user": user.username, "refresh_jti": jti}), lease=lease)
    return await _mint(store, user, session_id, issuer, jti, jwt_keys)


async def refresh_session(store: Store, access_token: str, refresh_token: str, issuer: str, *,
                          jwt_keys: JwtKeyPair | None = None) -> TokenPair:
    """Rotate the refresh token; presenting an old one ends the session (6.10)."""
    secret = await jwt_secret(store)
    unauthorized = ApiError(401, "Unauthorized", CODE_UNAUTHENTICATED, plain=True)
    access = verify_jwt(access_token, secret, check_expiry=False, jwt_keys=jwt_keys)
    try:
        refresh = verify_jwt(refresh_token, secret, jwt_keys=jwt_keys)
    except ApiError:
        raise unauthorized from None
    if access.get("sub") != refresh.get("sub") or access.get("session_id") != refresh.get("session_id"):
        raise unauthorized
    session_id = str(refresh.get("session_id", ""))
    kv = await store.get(session_key(session_id), linearizable=True)
    if kv is None:
        raise unauthorized
    session = decode_dict(kv.value)
    if session.get("refresh_jti") != refresh.get("jti"):
        await store.delete(session_key(session_id))  # replay of an old refresh token
        raise ApiError(400, "invalid access token", 1, plain=True)
    user = await load_user(store, str(refresh.get("sub", "")))
    if user is None or user.disabled:
        raise unauthorized
    jti = secrets.token_hex(16)
    new = dict(session, refresh_jti=jti)
    try:
        await store.update(session_key(session_id), encode_dict(new), mod_revision=kv.mod_revision, lease=kv.lease)
    except Exception as exc:  # concurrent refresh with the same token: treat as replay
        raise unauthorized from exc
    return await _mint(store, user, session_id, issuer, jti, jwt_keys)


async def close_session(store: Store, access_token: str, *, jwt_keys: JwtKeyPair | None = None) -> None:
    secret = await jwt_secret(store)
    claims = verify_jwt(access_token, secret, check_expiry=False, jwt_keys=jwt_keys)
    session_id = str(claims.get("session_id", ""))
    if session_id:
        await store.delete(session_key(session_id))


async def authenticate(store: Store, authorization: str, *, jwt_keys: JwtKeyPair | None = None) -> Principal:
    """``Authorization: Bearer <jwt>`` or ``Key <api key>``; anything else is a 401."""
    if authorization.startswith("Bearer "):
        secret = await jwt_secret(store)
        claims = _verify_jwt_cached(authorization[7:].strip(), secret, jwt_keys)
        username = str(claims.get("sub", ""))
        session_id = str(claims.get("session_id", ""))
        if not session_id or await store.get(session_key(session_id)) is None:
            raise ApiError(401, "invalid credentials", CODE_UNAUTHENTICATED)
        user = await load_user_shared(store, username)
        if user is None or user.disabled:
            raise ApiError(401, "invalid credentials", CODE_UNAUTHENTICATED)
        return Principal(username, tuple(user_groups(user)), session_id=session_id, claims=claims)
    if authorization.startswith("Key "):
        key = authorization[4:].strip()
        try:
            kv = await store.get(keys.key_for("apikeys", None, key)) if key else None
        except ValueError:
            kv = None
        if kv is None:
            raise ApiError(401, "invalid credentials", CODE_UNAUTHENTICATED)
        username = str(decode_dict(kv.value).get("username", ""))
        user = await load_user_shared(store, username)
        if user is None or user.disabled:
            raise ApiError(401, "invalid credentials", CODE_UNAUTHENTICATED)
        return Principal(username, tuple(user_groups(user)), api_key=True)
    raise ApiError(401, "bad credentials", CODE_UNAUTHENTICATED)
