"""Identity: who is calling (:class:`Principal`), the stored users, their passwords, and the RBAC decision.

Shared by the REST API (tokens, sessions and API keys over HTTP stay in
``api.auth``) and by agentd (the agent handshake), so agentd never imports
the REST layer. These modules read users and roles through the
``cluster.store`` interface; ``sensu-agent`` never imports them.
"""

from __future__ import annotations

from .passwords import DUMMY_HASH, PasswordVerifier, check_password, hash_password, password_matches
from .rbac import is_allowed
from .users import SYSTEM_USERS_GROUP, Principal, load_user, load_user_shared, user_groups

__all__ = [
    "DUMMY_HASH",
    "PasswordVerifier",
    "Principal",
    "SYSTEM_USERS_GROUP",
    "check_password",
    "hash_password",
    "is_allowed",
    "load_user",
    "load_user_shared",
    "password_matches",
    "user_groups",
]
