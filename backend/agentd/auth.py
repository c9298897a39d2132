"""Agent handshake checks (runtime.md §1.3): credentials, RBAC, namespace.

Passwords are checked by :class:`core.identity.PasswordVerifier`, which
remembers successful verifications: bcrypt is slow on purpose, and after a
backend restart thousands of agents reconnect within seconds with the same
``agent`` credentials (its docstring says how the cache stays safe).

Authorization decisions are cached too (positive ones only, keyed by user,
groups, namespace and agent name): :func:`core.identity.is_allowed` decodes every
binding and role on each call, a few milliseconds per handshake. The cache
is emptied whenever anything under the RBAC prefixes changes
(:meth:`AgentAuthenticator.run` watches them), so a revoked permission
applies to the next handshake, as without the cache.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Final

import trio

from core.identity import SYSTEM_USERS_GROUP, PasswordVerifier, Principal, is_allowed, user_groups
from core.resources import keys
from cluster.errors import WatchLaggedError
from cluster.store import Store

from .protocol import Handshake

__all__ = ["AgentAuthenticator", "HandshakeRefused"]

logger = logging.getLogger(__name__)

#: Most remembered successful verifications (and authorization decisions).
CACHE_SIZE: Final = 20_000
#: Group of agents authenticated by a client certificate (the built-in ``agent`` user's group).
AGENTS_GROUP: Final = "system:agents"
#: Collections whose changes can change an authorization decision.
RBAC_COLLECTIONS: Final = ("clusterrolebindings", "clusterroles", "rolebindings", "roles")


class HandshakeRefused(Exception):
    """The upgrade is refused with ``status`` and body ``message`` (§1.3)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


class AgentAuthenticator:
    """Runs the §1.3 checks 3-5 in order; one instance per node."""

    def __init__(self, store: Store, *, cache_size: int = CACHE_SIZE) -> None:
        self._store = store
        self._cache_size = cache_size
        self._passwords = PasswordVerifier(store, cache_size=cache_size)
        self._allowed: OrderedDict[tuple[str, tuple[str, ...], str, str], None] = OrderedDict()
        self._stats = {"rbac_cache_hits": 0, "refused": 0, "client_certs": 0}

    @property
    def stats(self) -> dict[str, int]:
        """Counters: bcrypt checks and password cache hits, RBAC cache hits, client certificates."""
        return {**self._passwords.stats, **self._stats}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Empty the authorization cache on any RBAC change, until cancelled."""
        async with trio.open_nursery() as nursery:
            for collection in RBAC_COLLECTIONS:
                await nursery.start(self._watch_rbac, keys.prefix_for(collection))
            task_status.started()

    async def _watch_rbac(self, prefix: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            with self._store.watch(prefix) as watcher:
                self._allowed.clear()  # (re)watching: anything may have changed meanwhile
                if not started:
                    started = True
                    task_status.started()
                try:
                    async for _ in watcher:
                        self._allowed.clear()
                except WatchLaggedError:
                    continue

    async def _is_allowed(self, principal: Principal, namespace: str, agent_name: str) -> bool:
        key = (principal.username, principal.groups, namespace, agent_name)
        if key in self._allowed:
            self._allowed.move_to_end(key)
            self._stats["rbac_cache_hits"] += 1
            return True
        if not await is_allowed(self._store, principal, "create", "events", namespace, agent_name):
            return False
        self._allowed[key] = None
        while len(self._allowed) > self._cache_size:
            self._allowed.popitem(last=False)
        return True

    async def check(self, hs: Handshake, *, client_cert_cn: str = "") -> Principal:
        """The authenticated principal, or :class:`HandshakeRefused`.

        Order and texts: no credentials -> 401 ``missing credentials``; wrong
        ones -> 401 ``bad credentials``; no ``create`` on ``events`` named
        after the agent in its namespace -> 403; unknown namespace -> 404
        ``namespace "<ns>" not found``.

        ``client_cert_cn`` is the common name of a client certificate the TLS
        layer verified against ``--trusted-ca-file``. Without Basic
        credentials it authenticates the agent (mTLS): the name must be the
        agent's own (``Sensu-AgentName``), so one certificate cannot speak
        for another agent, and the agent gets the ``system:agents`` group,
        like the built-in ``agent`` user. Basic credentials, when sent, win.
        """
        if hs.credentials is None and client_cert_cn:
            if client_cert_cn != hs.agent_name:
                raise HandshakeRefused(401, "client certificate common name does not match the agent name")
            self._stats["client_certs"] += 1
            principal = Principal(client_cert_cn, (AGENTS_GROUP, SYSTEM_USERS_GROUP))
        else:
            principal = await self._password_principal(hs)
        if not await self._is_allowed(principal, hs.namespace, hs.agent_name):
            raise HandshakeRefused(403, "unauthorized to perform action")
        if not hs.namespace or not await self._namespace_exists(hs.namespace):
            raise HandshakeRefused(404, f'namespace "{hs.namespace}" not found')
        return principal

    async def _password_principal(self, hs: Handshake) -> Principal:
        if hs.credentials is None:
            raise HandshakeRefused(401, "missing credentials")
        username, password = hs.credentials
        user = await self._passwords.verify(username, password)
        if user is None:
            raise HandshakeRefused(401, "bad credentials")
        return Principal(user.username, tuple(user_groups(user)))

    async def _namespace_exists(self, namespace: str) -> bool:
        try:
            key = keys.key_for("namespaces", None, namespace)
        except ValueError:
            return False
        return await self._store.get(key) is not None
