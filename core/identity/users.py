"""Who is calling, and the stored users they are.

Why here and not in ``api/``: the REST API and agentd both turn a user into a
:class:`Principal` (the API from a token or an API key, agentd from the
handshake's Basic credentials or a client certificate), and both ask the
same RBAC question of it. Keeping the principal in ``core`` lets agentd
authenticate agents without importing the REST layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from core.resources import User, keys
from core.resources.storage import decode, decode_cached

if TYPE_CHECKING:  # annotations only: importing core never starts a store
    from cluster.store import KeyValue, Store

__all__ = ["Principal", "SYSTEM_USERS_GROUP", "user_groups", "load_user", "load_user_shared"]

#: The group every user is in, whatever its stored groups say (Sensu's ``system:users``).
SYSTEM_USERS_GROUP: Final = "system:users"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a user (with groups), through a token or an API key."""

    username: str
    groups: tuple[str, ...] = ()
    session_id: str = ""
    api_key: bool = False
    claims: dict[str, Any] = field(default_factory=dict, compare=False)


def user_groups(user: User) -> list[str]:
    """The user's groups, with :data:`SYSTEM_USERS_GROUP` added when it is missing."""
    groups = list(user.groups or [])
    if SYSTEM_USERS_GROUP not in groups:
        groups.append(SYSTEM_USERS_GROUP)
    return groups


async def _user_kv(store: Store, username: str) -> KeyValue | None:
    if not username:
        return None
    try:
        return await store.get(keys.key_for("users", None, username))
    except ValueError:  # not a valid user name: no such user
        return None


async def load_user(store: Store, username: str) -> User | None:
    """The stored user (a fresh copy the caller may change), or None."""
    kv = await _user_kv(store, username)
    return decode(User, kv.value) if kv else None


async def load_user_shared(store: Store, username: str) -> User | None:
    """:func:`load_user` decoded once per revision, for reading only (authentication)."""
    kv = await _user_kv(store, username)
    return decode_cached(store, User, kv) if kv else None
