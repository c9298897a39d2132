"""One table from domain errors to HTTP answers (sensu ``routers.go``, etcd ``toGRPCErrorMap``).

Handlers raise; nothing else builds error responses. Bodies are
``{"message", "code"}`` with Sensu's codes (api.md §1.4); ``/auth*`` and a
few other routes answer plain text, which :class:`ApiError` supports with
``plain=True``. A 500 never leaks internals: the traceback is logged under a
request id and only the id is returned.
"""

from __future__ import annotations

import json
import logging
import uuid
from typing import Any

from quart import Response

from api.selectors import SelectorError
from core.resources.errors import ValidationError
from cluster.errors import (
    CompareFailedError,
    KeyNotFoundError,
    LeaderChangedError,
    NoLeaderError,
    StoreClosedError,
    StoreError,
    StoreFullError,
    StoreTimeoutError,
    WatchLaggedError,
)

__all__ = [
    "ApiError",
    "CODE_INTERNAL",
    "CODE_INVALID",
    "CODE_NOT_FOUND",
    "CODE_EXISTS",
    "CODE_DENIED",
    "CODE_UNAUTHENTICATED",
    "CODE_PRECONDITION",
    "CODE_DEADLINE",
    "error_response",
    "response_for",
    "invalid",
    "not_found",
    "already_exists",
]

logger = logging.getLogger(__name__)

CODE_INTERNAL = 0
CODE_INVALID = 1
CODE_NOT_FOUND = 2
CODE_EXISTS = 3
CODE_DENIED = 4
CODE_UNAUTHENTICATED = 5
CODE_PAYMENT = 6
CODE_PRECONDITION = 7
CODE_DEADLINE = 8


class ApiError(Exception):
    """An answer to the client: status, Sensu code, message (and headers)."""

    def __init__(self, status: int, message: str, code: int = CODE_INVALID, *, plain: bool = False,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.plain = plain
        self.headers = headers or {}


def invalid(message: str) -> ApiError:
    return ApiError(400, message, CODE_INVALID)


def not_found(message: str = "not found") -> ApiError:
    return ApiError(404, message, CODE_NOT_FOUND)


def already_exists(message: str = "resource already exists") -> ApiError:
    return ApiError(409, message, CODE_EXISTS)


def error_response(status: int, message: str, code: int, headers: dict[str, str] | None = None) -> Response:
    resp = Response(json.dumps({"message": message, "code": code}, separators=(",", ":")), status=status,
                    content_type="application/json")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _from_domain(exc: BaseException) -> ApiError | None:
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ValidationError):
        return ApiError(400, f"resource is invalid: {exc.reason}", CODE_INVALID)
    if isinstance(exc, SelectorError):
        return ApiError(400, str(exc) if str(exc).startswith("invalid selector") else f"invalid selector: {exc}",
                        CODE_INVALID)
    if isinstance(exc, CompareFailedError):
        return ApiError(409, "resource was modified concurrently; retry", CODE_EXISTS)
    if isinstance(exc, KeyNotFoundError):
        return ApiError(404, "not found", CODE_NOT_FOUND)
    if isinstance(exc, (NoLeaderError, LeaderChangedError, StoreClosedError, WatchLaggedError)):
        return ApiError(503, f"store unavailable: {exc}", CODE_INTERNAL, headers={"Retry-After": "1"})
    if isinstance(exc, StoreTimeoutError):
        return ApiError(503, f"store timeout: {exc}", CODE_DEADLINE, headers={"Retry-After": "1"})
    if isinstance(exc, StoreFullError):
        return ApiError(507, f"store full: {exc}", CODE_INTERNAL, headers={"Retry-After": "10"})
    if isinstance(exc, StoreError):
        return ApiError(503, f"store error: {exc}", CODE_INTERNAL, headers={"Retry-After": "1"})
    return None


def _leaf(exc: BaseException) -> BaseException:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    return exc


def response_for(exc: BaseException, *, method: str = "", path: str = "") -> Response:
    """The response for any exception a handler raised (ExceptionGroups unwrapped)."""
    err = _from_domain(_leaf(exc))
    if err is None:
        request_id = uuid.uuid4().hex[:12]
        logger.error("internal error handling %s %s (request %s)", method, path, request_id, exc_info=exc,
                     extra={"request_id": request_id})
        return error_response(500, f"internal error (request {request_id})", CODE_INTERNAL)
    if err.plain:
        resp = Response(err.message + "\n", status=err.status, content_type="text/plain; charset=utf-8")
        for k, v in err.headers.items():
            resp.headers[k] = v
        return resp
    return error_response(err.status, err.message, err.code, err.headers)


def json_body(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_text(json.dumps(data, separators=(",", ":")), status, headers)


def json_text(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """:func:`json_body` for a body already encoded."""
    resp = Response(text, status=status, content_type="application/json")
    resp.headers["X-Content-Type-Options"] = "nosniff"
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp
