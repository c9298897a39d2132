"""Agent handshake checks (runtime.md §1.3): credentials, RBAC, namespace.

Why a credential cache: bcrypt is slow on purpose (tens of milliseconds in a
worker thread, at most four at a time). When a backend restarts, thousands
of agents reconnect within seconds, all with the same ``agent`` credentials;
verifying each with bcrypt would keep agents waiting for minutes. So a
*successful* verification is remembered, keyed by ``(username,
sha256(password), stored hash)``:

* a changed password changes the stored hash, so old entries stop matching;
* a wrong password never matches a cached entry and always costs a bcrypt
  (failures are not cached, so guessing stays slow);
* concurrent first verifications of the same key share one bcrypt
  (single flight), so a reconnect storm costs one hash, not thousands.

The cache holds digests, never passwords, and is bounded (LRU).

Authorization decisions are cached too (positive ones only, keyed by user,
groups, namespace and agent name): :func:`api.rbac.is_allowed` decodes every
binding and role on each call, a few milliseconds per handshake. The cache
is emptied whenever anything under the RBAC prefixes changes
(:meth:`AgentAuthenticator.run` watches them), so a revoked permission
applies to the next handshake, as without the cache.
"""

from __future__ import annotations

import hashlib
import logging
from collections import OrderedDict
from typing import Final

import trio

from api.auth import SYSTEM_USERS_GROUP, Principal, check_password, load_user
from api.rbac import is_allowed
from core.resources import User, keys
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

_CacheKey = tuple[str, bytes, str]


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
        self._cache: OrderedDict[_CacheKey, None] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[_CacheKey, trio.Event] = {}
        self._allowed: OrderedDict[tuple[str, tuple[str, ...], str, str], None] = OrderedDict()
        self.stats = {"bcrypt": 0, "cache_hits": 0, "rbac_cache_hits": 0, "refused": 0, "client_certs": 0}

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
            self.stats["rbac_cache_hits"] += 1
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
            self.stats["client_certs"] += 1
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
        user = await self._verify(username, password)
        if user is None:
            raise HandshakeRefused(401, "bad credentials")
        groups = list(user.groups or [])
        if SYSTEM_USERS_GROUP not in groups:
            groups.append(SYSTEM_USERS_GROUP)
        return Principal(user.username, tuple(groups))

    async def _namespace_exists(self, namespace: str) -> bool:
        try:
            key = keys.key_for("namespaces", None, namespace)
        except ValueError:
            return False
        return await self._store.get(key) is not None

    async def _verify(self, username: str, password: str) -> User | None:
        user = await load_user(self._store, username)
        if user is not None and (user.disabled or not user.password_hash):
            user = None
        digest = hashlib.sha256(password.encode("utf-8", "surrogatepass")).digest()
        if user is not None:
            key: _CacheKey = (username, digest, user.password_hash)
            while True:
                if key in self._cache:
                    self._cache.move_to_end(key)
                    self.stats["cache_hits"] += 1
                    return user
                pending = self._inflight.get(key)
                if pending is None:
                    break
                # another task is hashing the same credentials: share its success
                # (a failure is not shared: the loop then verifies on its own)
                await pending.wait()
            done = self._inflight[key] = trio.Event()
            try:
                self.stats["bcrypt"] += 1
                verified = await check_password(self._store, username, password)
                if verified is not None and verified.password_hash == user.password_hash:
                    self._remember(key)
                return verified
            finally:
                del self._inflight[key]
                done.set()
        # unknown or disabled user: same bcrypt cost as a real check, never cached
        self.stats["bcrypt"] += 1
        await check_password(self._store, username, password)
        return None

    def _remember(self, key: _CacheKey) -> None:
        self._cache[key] = None
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
