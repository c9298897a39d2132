"""RBAC over HTTP: the method-to-verb table and the 403 for a denied request.

The decision itself is :func:`core.identity.is_allowed`, which agentd's
handshake shares; this module holds only what is REST-specific.
"""

from __future__ import annotations

from typing import Final

from cluster.store import Store
from core.identity import Principal, is_allowed

from .errors import CODE_DENIED, ApiError

__all__ = ["is_allowed", "require", "VERB_FOR_METHOD"]

VERB_FOR_METHOD: Final = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "update",
                          "DELETE": "delete"}


async def require(store: Store, principal: Principal, verb: str, resource: str, namespace: str = "",
                  name: str = "") -> None:
    """Raise 403 unless allowed."""
    if not await is_allowed(store, principal, verb, resource, namespace, name):
        raise ApiError(403, "unauthorized to perform action", CODE_DENIED)
