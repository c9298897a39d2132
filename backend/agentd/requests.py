"""Check requests travel between nodes through the store (STYLE §2 flow).

Why the store and not a node-local bus: an agent is connected to exactly one
backend, and the node that decides a check must run (the scheduler, an ad hoc
execution through the API) is usually another. Every node's
:mod:`backend.agentd.fanout` watches :func:`check_request_prefix`, so a request
written once reaches every subscribed agent wherever it is connected, and an
agent that reconnects elsewhere keeps receiving.

Layout::

    /sensu.io/_internal/checkrequests/<namespace>/<subscription>/<unique id>

Requests are short-lived: they are put under a lease of
:data:`CHECK_REQUEST_TTL_S` seconds. A node that is down when a request is
written never delivers it (its agents are disconnected anyway); the lease
keeps the prefix from growing. Leases are shared between requests written
within :data:`LEASE_REUSE_S` of each other, so publishing costs one Raft
operation per request rather than two.

The value is msgpack of the request body that agents receive as JSON:
``{config, assets, hooks, issued, hook_assets, secrets}`` (runtime.md §1.6).
"""

from __future__ import annotations

import logging
import uuid
import weakref
from typing import Any, Final, Sequence

import trio

from core.resources import Asset, CheckConfig, HookConfig, ValidationError, keys
from core.resources.storage import decode, encode_dict
from cluster import codec
from cluster.errors import CompareFailedError, LeaseNotFoundError
from cluster.store import Store

__all__ = [
    "CHECK_REQUEST_TTL_S",
    "LEASE_REUSE_S",
    "build_check_request",
    "check_request_key",
    "check_request_prefix",
    "load_check_request",
    "parse_check_request_key",
    "publish_check_request",
    "select_assets",
]

logger = logging.getLogger(__name__)

AREA: Final = "checkrequests"
#: Lifetime of a published request; far longer than any node needs to see it.
CHECK_REQUEST_TTL_S: Final = 30.0
#: A lease is reused for requests published within this many seconds.
LEASE_REUSE_S: Final = 5.0


def check_request_prefix(namespace: str | None = None, subscription: str | None = None) -> str:
    """Prefix of every request, of one namespace, or of one subscription in it."""
    parts = [p for p in (namespace, subscription) if p]
    return keys.internal_prefix(AREA, *parts)


def check_request_key(namespace: str, subscription: str, request_id: str) -> str:
    return keys.internal_key(AREA, namespace, subscription, request_id)


def parse_check_request_key(key: str) -> tuple[str, str, str]:
    """``(namespace, subscription, id)`` of a request key; ``ValueError`` otherwise."""
    prefix = check_request_prefix()
    if not key.startswith(prefix):
        raise ValueError(f"not a check request key: {key!r}")
    parts = key[len(prefix):].split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a check request key: {key!r}")
    ns, sub, rid = (keys.decode_segment(p) for p in parts)
    return ns, sub, rid


class _LeasePool:
    """One shared lease per store, renewed every :data:`LEASE_REUSE_S` seconds."""

    def __init__(self) -> None:
        self._lock = trio.Lock()
        self._lease = 0
        self._granted_at = -1e9

    async def lease(self, store: Store) -> int:
        async with self._lock:
            now = trio.current_time()
            if not self._lease or now - self._granted_at >= LEASE_REUSE_S:
                self._lease = await store.grant_lease(CHECK_REQUEST_TTL_S + LEASE_REUSE_S)
                self._granted_at = now
            return self._lease

    def forget(self, lease_id: int) -> None:
        if self._lease == lease_id:
            self._lease = 0


_pools: "weakref.WeakKeyDictionary[Store, _LeasePool]" = weakref.WeakKeyDictionary()


async def publish_check_request(store: Store, namespace: str, subscription: str,
                                request_dict: dict[str, Any], *, fence: Sequence[codec.Compare] = ()) -> str:
    """Write one request for ``subscription`` in ``namespace``; returns its key.

    Every agent connected to any node and subscribed to ``subscription``
    (``entity:<name>`` targets one agent) receives it once. Raises the
    store's errors (``StoreError``) if the write fails; nothing is delivered
    then.

    ``fence`` makes the write conditional in the same Raft entry: the
    scheduler passes "my ownership key is still on my lease", so a node that
    lost a check (a pause longer than its lease) cannot publish a run the new
    owner also publishes. If a compare fails, nothing is written and
    ``CompareFailedError`` is raised.
    """
    pool = _pools.get(store)
    if pool is None:
        pool = _pools[store] = _LeasePool()
    key = check_request_key(namespace, subscription, uuid.uuid4().hex)
    value = encode_dict(request_dict)

    async def write(lease: int) -> None:
        if not fence:
            await store.put(key, value, lease=lease)
            return
        result = await store.txn(fence, [codec.put_op(key, value, lease)])
        if not result.succeeded:
            raise CompareFailedError(str(fence[0][0]), 0, -1)

    for _ in range(2):
        lease = await pool.lease(store)
        try:
            await write(lease)
            return key
        except LeaseNotFoundError:  # expired between reuse and put: take a fresh one
            pool.forget(lease)
    await write(await store.grant_lease(CHECK_REQUEST_TTL_S))
    return key


def build_check_request(check: CheckConfig, *, issued: int, assets: list[Asset] | None = None,
                        hooks: list[HookConfig] | None = None,
                        hook_assets: dict[str, list[Asset]] | None = None) -> dict[str, Any]:
    """The ``check_request`` body for ``check`` (runtime.md §1.6).

    ``hook_assets`` maps a hook name to its assets; on the wire each value is
    an asset list object ``{"assets": [...]}``, as Go's ``map[string]*AssetList``.
    """
    return {
        "config": check.to_wire(),
        "assets": [a.to_wire() for a in assets or ()],
        "hooks": [h.to_wire() for h in hooks or ()],
        "issued": issued,
        "hook_assets": {name: {"assets": [a.to_wire() for a in found]} for name, found in (hook_assets or {}).items()},
        "secrets": None,
    }


def select_assets(available: list[Asset], wanted: Sequence[str]) -> tuple[list[Asset], list[str]]:
    """The assets a ``runtime_assets`` list selects, and the entries that selected nothing.

    As Sensu Go's ``assetIsRelevant``: an entry selects **every** asset whose
    name starts with it (``sensu/`` selects all of that namespace's
    ``sensu/...`` assets), in the store's (name) order, each asset once.
    """
    selected = [a for a in available if any(a.metadata.name.startswith(w) for w in wanted)]
    unmatched = [w for w in wanted if not any(a.metadata.name.startswith(w) for a in available)]
    return selected, unmatched


async def _namespace_assets(store: Store, namespace: str) -> list[Asset]:
    """Every asset of ``namespace``, sorted by name (one range read; undecodable ones skipped)."""
    result = await store.range(keys.prefix_for("assets", namespace))
    out = []
    for kv in result.items:
        try:
            out.append(decode(Asset, kv.value))
        except (ValidationError, ValueError) as exc:  # one unreadable asset must not stop every request
            logger.error("cannot decode a stored asset: %s", exc, extra={"namespace": namespace, "key": kv.key})
    out.sort(key=lambda a: a.metadata.name)
    return out


async def load_check_request(store: Store, namespace: str, check: CheckConfig, *, issued: int) -> dict[str, Any]:
    """:func:`build_check_request` with the check's runtime assets, hooks and hook assets read
    from the store.

    ``runtime_assets`` entries select by name prefix (:func:`select_assets`);
    an entry that selects nothing is logged (warning, naming the check and
    the entry) and the request still goes out, as in Go. Each hook named by
    ``check_hooks`` is sent once; a hook with ``runtime_assets`` gets its own
    list in ``hook_assets``. Missing hooks are left out (the agent reports a
    missing hook itself, §2.5).
    """
    hooks: list[HookConfig] = []
    seen: set[str] = set()
    for hook_list in check.check_hooks or ():
        for name in hook_list.hooks or ():
            if name in seen:
                continue
            seen.add(name)
            kv = await store.get(keys.key_for("hooks", namespace, name))
            if kv is not None:
                hooks.append(decode(HookConfig, kv.value))
    wants_assets = bool(check.runtime_assets) or any(h.runtime_assets for h in hooks)
    available = await _namespace_assets(store, namespace) if wants_assets else []
    assets, unmatched = select_assets(available, check.runtime_assets or ())
    for entry in unmatched:
        logger.warning("check runtime_assets entry %r selects no asset", entry, extra={
            "namespace": namespace, "check": check.metadata.name, "asset": entry})
    hook_assets: dict[str, list[Asset]] = {}
    for hook in hooks:
        if not hook.runtime_assets:
            continue
        found, unmatched = select_assets(available, hook.runtime_assets)
        for entry in unmatched:
            logger.warning("hook runtime_assets entry %r selects no asset", entry, extra={
                "namespace": namespace, "check": check.metadata.name, "hook": hook.metadata.name, "asset": entry})
        hook_assets[hook.metadata.name] = found
    return build_check_request(check, issued=issued, assets=assets, hooks=hooks, hook_assets=hook_assets)
