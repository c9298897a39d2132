"""Authentication over HTTP: JWT access/refresh tokens, sessions and API keys.

Tokens are HS256 JWTs signed with a 32-byte secret that ``init`` stores in the
replicated map, so every node verifies every node's tokens (api.md §3.2); with
``jwt-private-key-file``/``jwt-public-key-file`` they are ES256/384/512 signed
with that key pair instead (:mod:`api.jwtkeys`).
Each login opens a *session* (a store key under a 12 h lease) holding the
current refresh token id; refreshing rotates it (6.10 behaviour), logout
deletes it, and an access token whose session is gone — or whose user is
disabled — is rejected at once, on every node.

Who a user is, their password check and the RBAC decision live in
:mod:`core.identity` (agentd shares them); this module holds what is
REST-specific: tokens, sessions, API keys and their 401s.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any

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
    "b64url",
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


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_jwt(claims: dict[str, Any], secret: bytes, jwt_keys: JwtKeyPair | None = None) -> str:
    """HS256 with ``secret``, or ES256/384/512 when ``jwt_keys`` holds a private key."""
    alg = jwt_keys.algorithm if jwt_keys is not None and jwt_keys.signs else "HS256"
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")).encode())
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode()
    if jwt_keys is not None and jwt_keys.signs:
        signature = jwt_keys.sign(signing_input)
    else:
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(signature)}"


def verify_jwt(token: str, secret: bytes, *, now: float | None = None, check_expiry: bool = True,
               jwt_keys: JwtKeyPair | None = None) -> dict[str, Any]:
    """The claims of a valid token; raises ApiError(401 invalid credentials) otherwise.

    HS256 tokens are checked with ``secret``; ES256/384/512 tokens with the
    public key of ``jwt_keys`` (refused when there is none).
    """
    bad = ApiError(401, "invalid credentials", CODE_UNAUTHENTICATED)
    parts = token.split(".")
    if len(parts) != 3:
        raise bad
    try:
        header = json.loads(_unb64url(parts[0]))
        claims = json.loads(_unb64url(parts[1]))
        signature = _unb64url(parts[2])
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: a forged, deeply nested header
        raise bad from None
    if not isinstance(header, dict) or not isinstance(claims, dict):
        raise bad
    alg = header.get("alg")
    signing_input = f"{parts[0]}.{parts[1]}".encode()
    if alg == "HS256":
        expected = hmac.new(secret, signing_input, hashlib.sha256).digest()
        if not hmac.compare_digest(signature, expected):
            raise bad
    elif jwt_keys is None or not isinstance(alg, str) or not jwt_keys.verify(signing_input, signature, alg):
        raise bad
    exp = claims.get("exp")
    if check_expiry and (not isinstance(exp, (int, float)) or exp <= (now if now is not None else time.time())):
        raise bad
    return claims


_VERIFIED_MAX = 4096
_verified: dict[tuple[str, bytes, int], dict[str, Any]] = {}


def _verify_jwt_cached(token: str, secret: bytes, jwt_keys: JwtKeyPair | None = None) -> dict[str, Any]:
    """:func:`verify_jwt`, with the signature checked once per token and secret.

    Why: a client sends the same token with every request for its lifetime,
    and parsing and HMAC-ing it was a tenth of a GET. Expiry is still checked
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
    exp = claims.get("exp")
    if not isinstance(exp, (int, float)) or exp <= time.time():
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
