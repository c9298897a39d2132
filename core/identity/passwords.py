"""Password hashing and checking: bcrypt in worker threads, and a cache of successes.

bcrypt is slow on purpose, so it never runs on the trio loop: every hash and
check goes to a worker thread, at most four at a time (one shared limiter,
so logins and agent handshakes together cannot occupy every thread). An
unknown user is checked against a dummy hash so that the answer time does
not reveal whether a user exists.

Why a verification cache (:class:`PasswordVerifier`): when a backend
restarts, thousands of agents reconnect within seconds, all with the same
``agent`` credentials; verifying each with bcrypt would keep agents waiting
for minutes. So a *successful* verification is remembered, keyed by
``(username, sha256(password), stored hash)``:

* a changed password changes the stored hash, so old entries stop matching;
* a wrong password never matches a cached entry and always costs a bcrypt
  (failures are not cached, so guessing stays slow);
* concurrent first verifications of the same key share one bcrypt
  (single flight), so a reconnect storm costs one hash, not thousands.

The cache holds digests, never passwords, and is bounded (LRU).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import TYPE_CHECKING, Final

import bcrypt
import trio

from core.resources import User

from .users import load_user, load_user_shared

if TYPE_CHECKING:  # annotations only: importing core never starts a store
    from cluster.store import Store

__all__ = ["DUMMY_HASH", "hash_password", "password_matches", "check_password", "PasswordVerifier"]

#: Checked when the user does not exist, so the answer costs what a real check
#: costs (the same 2^12 rounds as ``bcrypt.gensalt()``). A constant, not hashed at
#: import: that took ~0.25 s of every process start. It hashes a random password
#: nobody kept, and a match never logs anyone in (see :func:`check_password`).
DUMMY_HASH: Final = "$2b$12$sXgzPcb.xJbDGtWeU5uFQe4DrDTCHehN.MvKlhuARGI9NjJ89ei/i"
#: Most remembered successful verifications of one :class:`PasswordVerifier`.
CACHE_SIZE: Final = 20_000

_bcrypt_limiter = trio.CapacityLimiter(4)

_CacheKey = tuple[str, bytes, str]


async def hash_password(password: str) -> str:
    """A new bcrypt hash of ``password`` (default cost), computed in a worker thread."""
    async with _bcrypt_limiter:
        return await trio.to_thread.run_sync(
            lambda: bcrypt.hashpw(password.encode(), bcrypt.gensalt()).decode())


async def password_matches(password: str, hashed: str) -> bool:
    """Whether ``password`` matches the bcrypt ``hashed`` (False for a malformed hash), in a worker thread."""
    def check() -> bool:
        try:
            return bcrypt.checkpw(password.encode(), hashed.encode())
        except ValueError:
            return False

    async with _bcrypt_limiter:
        return await trio.to_thread.run_sync(check)


async def check_password(store: Store, username: str, password: str) -> User | None:
    """The enabled user whose password matches, else None; same cost either way."""
    user = await load_user(store, username)
    ok = await password_matches(password, user.password_hash if user and user.password_hash else DUMMY_HASH)
    if user is None or not user.password_hash or not ok or user.disabled:
        return None
    return user


class PasswordVerifier:
    """:func:`check_password` with successful verifications remembered (see the module docstring).

    ``stats`` counts the bcrypt checks run (``bcrypt``) and the verifications
    answered from the cache (``cache_hits``).
    """

    def __init__(self, store: Store, *, cache_size: int = CACHE_SIZE) -> None:
        self._store = store
        self._cache: OrderedDict[_CacheKey, None] = OrderedDict()
        self._cache_size = cache_size
        self._inflight: dict[_CacheKey, trio.Event] = {}
        self.stats = {"bcrypt": 0, "cache_hits": 0}

    async def verify(self, username: str, password: str) -> User | None:
        """The enabled user whose password matches, else None (the shared copy: read it only).

        One read of the user per call: bcrypt checks the password against the
        hash that read returned, which is also the hash in the cache key.
        """
        user = await load_user_shared(self._store, username)
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
                if not await password_matches(password, user.password_hash):
                    return None
                self._remember(key)
                return user
            finally:
                del self._inflight[key]
                done.set()
        # unknown or disabled user: same bcrypt cost as a real check, never cached
        self.stats["bcrypt"] += 1
        await password_matches(password, DUMMY_HASH)
        return None

    def _remember(self, key: _CacheKey) -> None:
        self._cache[key] = None
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
