"""TTL (dead-man) checks, runtime.md §4.6: an event when results stop arriving.

Each stored result of a check with ``ttl > 0`` re-arms a deadline key
``_internal/ttl/<ns>/<check>/<entity>`` under a lease of ``ttl`` seconds (the
node that processed the result arms it). When results stop, the lease expires
and the key vanishes cluster-wide in one log entry; every node sees the
delete, and exactly one acts, the one whose ``create`` of the claim key
``_internal/ttl-fired/<ns>/<check>/<entity>/<revision>`` wins. The winner
drops it silently if the entity is gone, its keepalive is failing, or the
event was deleted; otherwise it submits a failure (status 1, ``Last check
execution was <n> seconds ago``) to eventd, whose processing re-arms the
deadline like any result's, so it repeats every ``ttl``. A result with
``ttl`` 0 after a ttl check disarms it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import trio

from core.event_processing import EventProcessor
from core.resources import keys
from core.resources.storage import decode_dict, encode_dict
from cluster.errors import CompareFailedError, StoreError, WatchLaggedError
from cluster.statemachine import EVENT_DELETE
from cluster.store import Store

__all__ = ["arm_ttl", "TTLMonitor", "ttl_key"]

logger = logging.getLogger(__name__)

CLAIM_TTL_S = 600.0


def ttl_key(namespace: str, check: str, entity: str) -> str:
    return keys.internal_key("ttl", namespace, check, entity)


async def arm_ttl(store: Store, event: dict[str, Any]) -> None:
    """(Re-)arm or disarm the TTL deadline for a processed check result."""
    check = event.get("check") or {}
    entity = event.get("entity") or {}
    ns = str((entity.get("metadata") or {}).get("namespace") or "")
    cname = str((check.get("metadata") or {}).get("name") or "")
    ename = str((entity.get("metadata") or {}).get("name") or "")
    if not ns or not cname or not ename or cname == "keepalive":
        return
    key = ttl_key(ns, cname, ename)
    ttl = int(check.get("ttl") or 0)
    if ttl <= 0:
        if await store.get(key) is not None:
            await store.delete(key)
        return
    lease = await store.grant_lease(ttl)
    await store.put(key, encode_dict({"ttl": ttl, "armed_at": int(time.time())}), lease=lease)


class TTLMonitor:
    """Acts once per expired TTL deadline, submitting the failure to ``eventd``."""

    name = "ttl"

    def __init__(self, store: Store, eventd: EventProcessor, *, node: str = "") -> None:
        self._store = store
        self._eventd = eventd
        self._node = node
        self.stats = {"fired": 0}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        prefix = keys.internal_prefix("ttl")
        started = False
        while True:
            try:
                with self._store.watch(prefix) as watcher:
                    if not started:
                        started = True
                        task_status.started()
                    async for events in watcher:
                        for e in events:
                            # lease 0 on a delete is an explicit disarm, not a deadline passing
                            if e.kind == EVENT_DELETE and e.lease:
                                await self._expired(e.key, e.revision)
            except WatchLaggedError:
                continue

    async def _expired(self, key: str, revision: int) -> None:
        parts = key[len(keys.internal_prefix("ttl")):].split("/")
        if len(parts) != 3:
            return
        ns, cname, ename = (keys.decode_segment(p) for p in parts)
        try:
            lease = await self._store.grant_lease(CLAIM_TTL_S)
            await self._store.create(keys.internal_key("ttl-fired", ns, cname, ename, str(revision)), b"1", lease=lease)
        except CompareFailedError:
            return  # another node acts on this expiry
        except StoreError as exc:
            logger.warning("ttl claim failed: %s", exc, extra={"namespace": ns, "check": cname, "entity": ename})
            return
        event_kv = await self._store.get(keys.event_key(ns, ename, cname))
        entity_kv = await self._store.get(keys.key_for("entities", ns, ename))
        if event_kv is None or entity_kv is None:
            return
        keepalive = await self._store.get(keys.event_key(ns, ename, "keepalive"))
        if keepalive is not None and int((decode_dict(keepalive.value).get("check") or {}).get("status") or 0) != 0:
            return  # the entity itself is down: its keepalive alerts, not every ttl check
        stored = decode_dict(event_kv.value)
        check = dict(stored.get("check") or {})
        now = int(time.time())
        last = int(check.get("executed") or now)
        check.update({"status": 1, "output": f"Last check execution was {now - last} seconds ago",
                      "executed": now, "issued": now})
        failure = {"metadata": stored.get("metadata") or {"namespace": ns}, "entity": stored.get("entity"),
                   "check": check, "timestamp": now}
        self.stats["fired"] += 1
        logger.warning("ttl expired: no result within %ss", check.get("ttl"),
                       extra={"namespace": ns, "check": cname, "entity": ename, "node": self._node})
        # processing the failure re-arms the deadline (arm_ttl), so it repeats every ttl while results stay away
        await self._eventd.submit(failure, now=now)
