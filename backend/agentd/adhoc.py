"""Ad hoc check executions: turn each queued request into check requests, exactly once.

``POST /api/core/v2/namespaces/{ns}/checks/{check}/execute`` stores a request
under ``internal_key("adhoc", ns, check, <uuid>)`` whose value is msgpack
``{"check", "subscriptions", "creator", "reason", "issued"}`` (``check`` is
the check name; a full check config is accepted too). Every node watches that
prefix; each tries to *claim* a request with a transaction that deletes the
key only if its ``mod_revision`` is unchanged. Exactly one transaction
succeeds, and only its node publishes the check requests, for the given
``subscriptions`` or, when empty, the check's own. The requests then reach
every subscribed agent on every node through the fanout.

Why not the reference's "queue once per backend": our backends do not share
an in-process bus, and a request must not run twice on an agent (runtime.md
§9 item 2).

Requests left in the store while no node ran (or written before a node
started watching) are picked up by listing the prefix at start.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Final

import trio

from core.resources import CheckConfig, ValidationError, keys
from core.resources.storage import decode, decode_dict
from cluster import codec
from cluster.errors import StoreError, WatchLaggedError
from cluster.statemachine import EVENT_PUT
from cluster.store import KeyValue, Store

from .requests import load_check_request, publish_check_request

__all__ = ["AREA", "AdhocExecutor", "adhoc_key", "adhoc_prefix", "parse_adhoc_key"]

logger = logging.getLogger(__name__)

AREA: Final = "adhoc"


def adhoc_prefix(namespace: str | None = None) -> str:
    return keys.internal_prefix(AREA, *([namespace] if namespace else []))


def adhoc_key(namespace: str, check: str, request_id: str) -> str:
    return keys.internal_key(AREA, namespace, check, request_id)


def parse_adhoc_key(key: str) -> tuple[str, str, str]:
    """``(namespace, check, id)``; ``ValueError`` for anything else."""
    prefix = adhoc_prefix()
    parts = key[len(prefix):].split("/") if key.startswith(prefix) else []
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not an ad hoc request key: {key!r}")
    ns, check, rid = (keys.decode_segment(p) for p in parts)
    return ns, check, rid


class AdhocExecutor:
    """Daemon: claims ad hoc requests and publishes them as check requests."""

    name = "adhoc"

    def __init__(self, store: Store, *, node: str = "") -> None:
        self._store = store
        self._node = node
        self.stats = {"claimed": 0, "lost": 0, "published": 0, "invalid": 0, "errors": 0}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """List what is queued, then watch for new requests until cancelled."""
        prefix = adhoc_prefix()
        async with trio.open_nursery() as nursery:
            listed = await self._store.range(prefix)
            start = listed.revision + 1
            task_status.started()
            for kv in listed.items:
                nursery.start_soon(self._handle, kv)
            while True:
                with self._store.watch(prefix, start_revision=start) as watcher:
                    try:
                        async for events in watcher:
                            for ev in events:
                                if ev.revision >= start and ev.kind == EVENT_PUT:
                                    nursery.start_soon(self._handle, KeyValue(
                                        ev.key, ev.value, ev.create_revision, ev.mod_revision, ev.version, ev.lease))
                    except WatchLaggedError:
                        listed = await self._store.range(prefix)
                        start = listed.revision + 1
                        for kv in listed.items:
                            nursery.start_soon(self._handle, kv)

    async def _handle(self, kv: KeyValue) -> None:
        extra: dict[str, Any] = {"node": self._node, "key": kv.key}
        try:
            namespace, check_name, _ = parse_adhoc_key(kv.key)
            request = decode_dict(kv.value)
        except ValueError as exc:
            self.stats["invalid"] += 1
            logger.error("dropping an unreadable ad hoc request: %s", exc, extra=extra)
            await self._claim(kv)
            return
        extra.update(namespace=namespace, check=check_name)
        try:
            if not await self._claim(kv):
                self.stats["lost"] += 1
                return
            self.stats["claimed"] += 1
            check = await self._check_config(namespace, check_name, request)
            if check is None:
                self.stats["invalid"] += 1
                logger.warning("ad hoc request for a check that does not exist; dropped", extra=extra)
                return
            subscriptions = [s for s in request.get("subscriptions") or [] if s] or list(check.subscriptions or [])
            issued = int(request.get("issued") or 0) or int(time.time())
            body = await load_check_request(self._store, namespace, check, issued=issued)
            for subscription in dict.fromkeys(subscriptions):
                await publish_check_request(self._store, namespace, subscription, body)
                self.stats["published"] += 1
            logger.info("ad hoc check execution published", extra={
                **extra, "subscriptions": subscriptions, "creator": request.get("creator", ""),
                "reason": request.get("reason", "")})
        except StoreError as exc:
            self.stats["errors"] += 1
            logger.error("could not publish an ad hoc check execution: %s", exc, extra=extra)

    async def _claim(self, kv: KeyValue) -> bool:
        """Delete the request if nobody touched it; True if this node's delete won."""
        result = await self._store.txn([codec.compare(kv.key, "mod", "==", kv.mod_revision)],
                                       [codec.delete_op(kv.key)])
        return result.succeeded

    async def _check_config(self, namespace: str, name: str, request: dict[str, Any]) -> CheckConfig | None:
        inline = request.get("check")
        if isinstance(inline, dict):
            try:
                check = CheckConfig.from_wire(inline)
            except ValidationError:
                return None
            check.metadata.namespace = check.metadata.namespace or namespace
            check.metadata.name = check.metadata.name or name
            return check
        kv = await self._store.get(keys.key_for("checks", namespace, str(inline or name)))
        return decode(CheckConfig, kv.value) if kv is not None else None
