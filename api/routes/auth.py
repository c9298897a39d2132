"""``/auth``, ``/auth/test``, ``/auth/token``, ``/auth/logout`` (api.md §3.1).

These answer plain text on failure, as Sensu Go does, and accept HTTP Basic
only on ``/auth`` and ``/auth/test``.
"""

from __future__ import annotations

import base64
import binascii

from quart import Response

from core.identity import check_password

from ..auth import close_session, open_session, refresh_session
from ..call import ApiCall
from ..errors import CODE_UNAUTHENTICATED, ApiError, json_body
from ..router import Router

__all__ = ["register", "basic_credentials"]

UNAUTHORIZED = ApiError(401, "Unauthorized", CODE_UNAUTHENTICATED, plain=True)
NO_HEADER = ApiError(401, "Request unauthorized", CODE_UNAUTHENTICATED, plain=True)


def basic_credentials(header: str) -> tuple[str, str] | None:
    if not header.startswith("Basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    if ":" not in decoded:
        return None
    user, _, password = decoded.partition(":")
    return user, password


def _issuer(call: ApiCall) -> str:
    scheme = "https" if call.request.scheme == "https" else "http"
    return f"{scheme}://{call.request.host}"


def _bearer(call: ApiCall) -> str:
    header = call.request.headers.get("Authorization", "")
    if not header.startswith("Bearer "):
        raise NO_HEADER
    return header[7:].strip()


async def login(call: ApiCall) -> Response:
    header = call.request.headers.get("Authorization", "")
    if not header:
        raise NO_HEADER
    creds = basic_credentials(header)
    if creds is None:
        raise UNAUTHORIZED
    user = await check_password(call.store, *creds)
    if user is None:
        raise UNAUTHORIZED
    pair = await open_session(call.store, user, _issuer(call), jwt_keys=call.ctx.jwt_keys)
    return json_body(pair.to_wire())


async def test_credentials(call: ApiCall) -> Response:
    header = call.request.headers.get("Authorization", "")
    creds = basic_credentials(header)
    if creds is None or await check_password(call.store, *creds) is None:
        raise NO_HEADER
    return Response("", status=200)


async def _refresh_token_from_body(call: ApiCall) -> str:
    body = await call.json(allow_empty=True)
    if body is None:
        body = {}
    if not isinstance(body, dict) or not isinstance(body.get("refresh_token", ""), str):
        raise ApiError(400, "Bad Request", 1, plain=True)
    return str(body.get("refresh_token", ""))


async def token(call: ApiCall) -> Response:
    access = _bearer(call)
    refresh = await _refresh_token_from_body(call)
    pair = await refresh_session(call.store, access, refresh, _issuer(call), jwt_keys=call.ctx.jwt_keys)
    return json_body(pair.to_wire())


async def logout(call: ApiCall) -> Response:
    access = _bearer(call)
    try:
        await close_session(call.store, access, jwt_keys=call.ctx.jwt_keys)
    except ApiError:
        raise UNAUTHORIZED from None
    return Response("", status=200)


def register(router: Router, ctx: object) -> None:
    router.add("/auth", {"GET": login}, public=True)
    router.add("/auth/test", {"GET": test_credentials}, public=True)
    router.add("/auth/token", {"POST": token}, public=True)
    router.add("/auth/logout", {"POST": logout}, public=True)
