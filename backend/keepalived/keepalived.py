"""Keepalives (runtime.md §3): registration, liveness deadlines in the store, failures.

Why deadlines live in the store: an agent's node may die with it, so the
timer that notices the silence must survive any one backend. Each agent has
a key ``internal_key("keepalives", ns, entity)`` attached to a lease whose
TTL is the keepalive's warning timeout (``check.timeout``, 120 s if 0). Every
keepalive pushes the lease's deadline forward (``keepalive_lease``, or a new
lease if it is gone). When the agent falls silent the lease expires through
the Raft log, the key is deleted cluster-wide, and every node's keepalived
sees the delete in its watch.

Exactly one node acts on each expiry: each tries
``store.create(internal_key("keepalive-fired", ns, entity, <delete revision>))``
and only one create can succeed (the claim carries a per-node token, so a
create whose acknowledgement was lost is still recognised as ours). The
winner re-arms the deadline (create-only, TTL = warning timeout, so failures
repeat every warning timeout and escalate) and submits the failure event
to eventd (:class:`~core.event_processing.EventProcessor`): status 1, or 2 once
the critical timeout (``check.ttl``) has elapsed, with ``elapsed`` measured
from the backend's receive time of the last keepalive (the stored event's
``last_ok``), never the agent's clock. The failure is written with a
compare-and-swap against the keepalive event it was computed from, so a
keepalive that arrives meanwhile wins and no stale failure overwrites it.

Entities with ``deregister: true`` are deregistered instead (entity deleted,
its events resolved through the pipeline, the deregistration handler or
``--deregistration-handler`` told) and their deadline is not re-armed. They
are also deregistered at once when their agent closes its connection on
purpose (agentd calls :meth:`Keepalived.agent_left`), which is what an
ephemeral agent stopping looks like.

Safety net: a watch that falls behind, or a whole-cluster restart during
which leases expired before anyone watched, could miss a delete. At start,
after a lag and every :data:`SCAN_INTERVAL_S`, each node re-arms (create-only)
the deadline of every agent entity that has a stored keepalive event but no
deadline key; the next expiry then follows the normal path. Re-arming never
emits an event itself, so the scan cannot cause a duplicate.
"""

from __future__ import annotations

import datetime as _dt
import logging
import secrets
import time
import uuid
from typing import Any, Final

import trio

from backend.eventd.process import EventConflictError
from core.event_processing import EventProcessor
from core.resources import Check, Entity, Event, ObjectMeta, ValidationError, entity_subscription, keys
from core.resources.entity import ENTITY_CLASS_AGENT, MANAGED_BY_LABEL
from core.resources.storage import decode, decode_dict, encode, encode_dict
from cluster.errors import CompareFailedError, LeaseNotFoundError, StoreError, WatchLaggedError
from cluster.statemachine import EVENT_DELETE
from cluster.store import Store

__all__ = [
    "CLAIM_TTL_S",
    "DEFAULT_WARNING_TIMEOUT_S",
    "Keepalived",
    "MIN_TIMEOUT_S",
    "SCAN_INTERVAL_S",
    "claim_prefix",
    "deadline_key",
    "deadline_prefix",
]

logger = logging.getLogger(__name__)

KEEPALIVE_CHECK: Final = "keepalive"
DEFAULT_WARNING_TIMEOUT_S: Final = 120
#: Minimum keepalive timeout (runtime.md §10); shorter ones are raised to it.
MIN_TIMEOUT_S: Final = 5
#: How long expiry claims are kept: far longer than any node needs to see a delete.
CLAIM_TTL_S: Final = 120.0
CLAIM_LEASE_REUSE_S: Final = 20.0
#: Period of the safety-net scan for agents without a deadline.
SCAN_INTERVAL_S: Final = 120.0
#: How long an expiry is retried while the store is unavailable.
EXPIRY_RETRY_S: Final = 60.0


def deadline_key(namespace: str, entity: str) -> str:
    return keys.internal_key("keepalives", namespace, entity)


def deadline_prefix() -> str:
    return keys.internal_prefix("keepalives")


def claim_prefix(namespace: str | None = None, entity: str | None = None) -> str:
    return keys.internal_prefix("keepalive-fired", *[p for p in (namespace, entity) if p])


def _parse_deadline_key(key: str) -> tuple[str, str] | None:
    prefix = deadline_prefix()
    if not key.startswith(prefix):
        return None
    parts = key[len(prefix):].split("/")
    if len(parts) != 2 or not all(parts):
        return None
    return keys.decode_segment(parts[0]), keys.decode_segment(parts[1])


def _go_time(ts: int) -> str:
    """``time.Unix(ts, 0).String()`` as Go prints it: ``2006-01-02 15:04:05 -0700 MST``."""
    moment = _dt.datetime.fromtimestamp(ts).astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S %z ") + (moment.tzname() or "UTC")


def _warning_timeout(check: dict[str, Any] | None) -> int:
    timeout = int((check or {}).get("timeout") or 0) or DEFAULT_WARNING_TIMEOUT_S
    return max(timeout, MIN_TIMEOUT_S)


class Keepalived:
    """Keepalive handling for sessions on this node, and expiry handling for the cluster."""

    name = "keepalived"

    def __init__(self, store: Store, *, node: str, eventd: EventProcessor, deregistration_handler: str = "",
                 workers: int = 100, buffer_size: int = 1000) -> None:
        self._store = store
        self._node = node
        self._eventd = eventd
        self._deregistration_handler = deregistration_handler
        self._workers = max(1, workers)
        self._buffer_size = max(1, buffer_size)
        self._token = f"{node}-{secrets.token_hex(4)}"
        self._claim_lease = 0
        self._claim_lease_at = -1e9
        self._claim_lock = trio.Lock()
        self.stats = {
            "keepalives": 0, "registrations": 0, "expiries": 0, "claims_won": 0, "claims_lost": 0,
            "failures": 0, "stale_failures": 0, "deregistrations": 0, "stopped": 0, "rearmed_by_scan": 0,
            "lagged": 0, "errors": 0,
        }

    # ------------------------------------------------------------------ keepalives in

    async def handle_keepalive(self, event: Event, *, received_at: float) -> None:
        """Register or refresh the entity, push its deadline, store the OK keepalive event.

        ``event`` was validated by the session (entity present, named after
        the agent, non-zero timestamp). A known entity's new state
        (``last_seen``, system facts) is written in the same transaction as
        the keepalive event, so a keepalive costs two Raft operations (that
        and the lease keepalive). Raises ``StoreError`` and ``ValidationError``.
        """
        assert event.entity is not None
        self.stats["keepalives"] += 1
        now = int(received_at)
        namespace, name = event.entity.metadata.namespace, event.entity.metadata.name
        warning = _warning_timeout({"timeout": event.check.timeout if event.check is not None else 0})
        key = keys.key_for("entities", namespace, name)
        for _ in range(10):
            kv = await self._store.get(key)
            if kv is None:
                entity = await self._register(event)
                if entity is None:
                    continue  # created concurrently: refresh it instead
                write_with = None
            else:
                stored = self._refreshed(decode_dict(kv.value), event)
                entity = Entity.from_wire(stored)
                write_with = (key, encode_dict(stored), kv.mod_revision)
            await self._arm(namespace, name, warning)
            ok = self._keepalive_event(event, entity, now)
            try:
                await self._eventd.submit(ok, now=now, entity_is_stored=True, write_with=write_with)
            except CompareFailedError as exc:
                if exc.key == key:
                    continue  # the entity was edited meanwhile (API, another keepalive): redo on the new copy
                raise
            return
        raise EventConflictError(f"{key}: entity kept changing during keepalive handling")

    async def _register(self, event: Event) -> Entity | None:
        """§3 step 2: create the entity from the first keepalive; None if it appeared meanwhile.

        Only class ``agent`` entities are registered by keepalives; others are
        returned unstored.
        """
        incoming = event.entity
        assert incoming is not None
        namespace, name = incoming.metadata.namespace, incoming.metadata.name
        entity = Entity.from_wire(incoming.to_store())
        entity.last_seen = event.timestamp
        if not entity.entity_class:
            entity.entity_class = ENTITY_CLASS_AGENT
        subs = list(entity.subscriptions or [])
        if entity_subscription(name) not in subs:
            subs.append(entity_subscription(name))
        entity.subscriptions = subs
        if entity.entity_class != ENTITY_CLASS_AGENT:
            return entity
        try:
            await self._store.create(keys.key_for("entities", namespace, name), encode(entity))
        except CompareFailedError:
            return None
        self.stats["registrations"] += 1
        logger.info("agent entity registered", extra={"namespace": namespace, "entity": name, "node": self._node})
        await self._eventd.publish(self._registration_event(entity, int(time.time())))
        return entity

    @staticmethod
    def _refreshed(stored: dict[str, Any], event: Event) -> dict[str, Any]:
        """§3 step 4: the stored entity (a plain dict) with the agent's new state.

        The stored entity is authoritative: only ``last_seen`` (agent clock),
        ``system`` and ``sensu_agent_version`` come from the agent, unless the
        entity is agent-managed (label ``sensu.io/managed_by``), whose whole
        configuration follows the agent on the first keepalive of a connection.
        """
        incoming = event.entity
        assert incoming is not None
        if MANAGED_BY_LABEL in incoming.metadata.labels and event.sequence == 1:
            created_by = (stored.get("metadata") or {}).get("created_by")
            stored = incoming.to_store()
            if created_by:
                stored["metadata"]["created_by"] = created_by
        else:
            stored["system"] = incoming.system.to_wire()
            stored["sensu_agent_version"] = incoming.sensu_agent_version or stored.get("sensu_agent_version", "")
        stored["last_seen"] = event.timestamp
        return stored

    async def _arm(self, namespace: str, name: str, ttl: int) -> None:
        """Push the deadline to now + ``ttl`` (the lease of the key, or a new one)."""
        key = deadline_key(namespace, name)
        kv = await self._store.get(key)
        if kv is not None and kv.lease:
            try:
                await self._store.keepalive_lease(kv.lease, ttl=float(ttl))
                return
            except LeaseNotFoundError:
                pass  # expired just now: the expiry path sees the delete; we start a new deadline
        lease = await self._store.grant_lease(float(ttl))
        await self._store.put(key, self._deadline_value(ttl), lease=lease)

    async def _rearm(self, namespace: str, name: str, ttl: int) -> bool:
        """Create the deadline if it does not exist; False if someone else did first."""
        lease = await self._store.grant_lease(float(ttl))
        try:
            await self._store.create(deadline_key(namespace, name), self._deadline_value(ttl), lease=lease)
            return True
        except CompareFailedError:
            await self._store.revoke_lease(lease)
            return False

    def _deadline_value(self, ttl: int) -> bytes:
        return encode_dict({"ttl": ttl, "node": self._node})

    # ------------------------------------------------------------------ events built here

    @staticmethod
    def _keepalive_event(event: Event, entity: Entity, now: int) -> Event:
        """§3 step 6: the status-0 keepalive event (built from validated parts, not re-parsed)."""
        incoming = event.check
        namespace, name = entity.metadata.namespace, entity.metadata.name
        check = Check(
            metadata=ObjectMeta(name=KEEPALIVE_CHECK, namespace=namespace),
            status=0,
            output=f"Keepalive last sent from {name} at {_go_time(entity.last_seen)}",
            interval=incoming.interval if incoming else 0,
            timeout=incoming.timeout if incoming else 0,
            ttl=incoming.ttl if incoming else 0,
            handlers=list(entity.keepalive_handlers or ["keepalive"]),
            executed=now,
            issued=now,
        )
        return Event(
            metadata=ObjectMeta(namespace=namespace, labels=dict(event.metadata.labels),
                                annotations=dict(event.metadata.annotations)),
            entity=entity,
            check=check,
            id=str(uuid.uuid4()),
            sequence=event.sequence,
            pipelines=event.pipelines,
            timestamp=now,
        )

    @staticmethod
    def _special_event(entity: Entity, check_name: str, handlers: list[str], now: int, *, status: int = 1,
                       output: str = "") -> dict[str, Any]:
        """Registration / deregistration events: straight to the pipeline, never stored."""
        namespace = entity.metadata.namespace
        return {
            "metadata": {"namespace": namespace},
            "entity": entity.to_store(),
            "check": {"metadata": {"name": check_name, "namespace": namespace}, "status": status,
                      "interval": 1, "handlers": handlers, "output": output, "executed": now, "issued": now},
            "id": str(uuid.uuid4()),
            "timestamp": now,
        }

    def _registration_event(self, entity: Entity, now: int) -> dict[str, Any]:
        return self._special_event(entity, "registration", ["registration"], now)

    # ------------------------------------------------------------------ expiry

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Watch deadline deletes and act on each once, until cancelled.

        ``started()`` once the watch is registered, so no expiry after start is
        missed. ``keepalived-workers`` tasks handle expiries from a queue of
        ``keepalived-buffer-size``; a full queue slows the watch, and a watch
        that falls behind triggers the safety-net scan.
        """
        send, recv = trio.open_memory_channel[tuple[str, str, int]](self._buffer_size)
        prefix = deadline_prefix()
        async with trio.open_nursery() as nursery:
            for _ in range(self._workers):
                nursery.start_soon(self._worker, recv)
            start = self._store.revision + 1
            started = False
            while True:
                with self._store.watch(prefix, start_revision=start, max_buffer=100_000) as watcher:
                    if not started:
                        started = True
                        task_status.started()
                        nursery.start_soon(self._scan_forever)
                    try:
                        async for events in watcher:
                            for ev in events:
                                if ev.revision < start or ev.kind != EVENT_DELETE:
                                    continue
                                parsed = _parse_deadline_key(ev.key)
                                if parsed is not None:
                                    self.stats["expiries"] += 1
                                    await send.send((parsed[0], parsed[1], ev.revision))
                    except WatchLaggedError as exc:
                        self.stats["lagged"] += 1
                        logger.warning("keepalive watch fell behind; scanning for agents without a deadline",
                                       extra={"node": self._node, "revision": exc.revision})
                        start = self._store.revision + 1
                        nursery.start_soon(self._scan_once)

    async def _worker(self, recv: trio.MemoryReceiveChannel[tuple[str, str, int]]) -> None:
        async for namespace, name, revision in recv:
            extra = {"namespace": namespace, "entity": name, "node": self._node, "revision": revision}
            deadline = trio.current_time() + EXPIRY_RETRY_S
            delay = 0.2
            while True:
                try:
                    await self._on_expiry(namespace, name, revision)
                    break
                except (StoreError, ValidationError) as exc:
                    if isinstance(exc, StoreError) and trio.current_time() < deadline:
                        await trio.sleep(delay)
                        delay = min(delay * 2, 5.0)
                        continue
                    self.stats["errors"] += 1
                    logger.error("could not handle keepalive expiry: %s", exc, extra=extra)
                    break

    async def _claim(self, namespace: str, name: str, revision: int) -> bool:
        """One create per delete revision wins cluster-wide; True if it is ours."""
        key = keys.internal_key("keepalive-fired", namespace, name, str(revision))
        value = encode_dict({"node": self._node, "token": self._token, "at": int(time.time())})
        for _ in range(2):
            lease = await self._shared_claim_lease()
            try:
                await self._store.create(key, value, lease=lease)
                return True
            except LeaseNotFoundError:
                self._claim_lease = 0
            except CompareFailedError:
                kv = await self._store.get(key)  # a retried create of ours may have won already
                return kv is not None and decode_dict(kv.value).get("token") == self._token
        return False

    async def _shared_claim_lease(self) -> int:
        async with self._claim_lock:
            now = trio.current_time()
            if not self._claim_lease or now - self._claim_lease_at > CLAIM_LEASE_REUSE_S:
                self._claim_lease = await self._store.grant_lease(CLAIM_TTL_S)
                self._claim_lease_at = now
            return self._claim_lease

    async def _on_expiry(self, namespace: str, name: str, revision: int) -> None:
        extra: dict[str, Any] = {"namespace": namespace, "entity": name, "node": self._node}
        if not await self._claim(namespace, name, revision):
            self.stats["claims_lost"] += 1
            return
        self.stats["claims_won"] += 1
        entity_kv = await self._store.get(keys.key_for("entities", namespace, name), linearizable=True)
        event_kv = await self._store.get(keys.event_key(namespace, name, KEEPALIVE_CHECK))
        if entity_kv is None or event_kv is None:
            self.stats["stopped"] += 1
            logger.info("keepalive deadline expired for an entity without %s; timer stopped",
                        "entity" if entity_kv is None else "keepalive event", extra=extra)
            return
        entity = decode(Entity, entity_kv.value)
        previous = decode_dict(event_kv.value)
        if entity.deregister:
            await self._deregister(entity, entity_kv.mod_revision, "its keepalive expired")
            return
        check = dict(previous.get("check") or {})
        warning = _warning_timeout(check)
        critical = int(check.get("ttl") or 0)
        now = int(time.time())
        last_ok = int(check.get("last_ok") or 0) or entity.last_seen
        elapsed = max(0, now - last_ok)
        # Expiry means silence for at least the warning timeout by the store's clock; never report
        # status 0 for it (the reference can, with an agent clock ahead of the backend).
        if critical and elapsed >= critical:
            status, threshold = 2, critical
        else:
            status, threshold = 1, warning
        if not await self._rearm(namespace, name, warning):
            logger.debug("deadline already re-armed (keepalive or scan)", extra=extra)
        check.update({
            "status": status,
            "output": f"No keepalive sent from {name} for {elapsed} seconds (>= {threshold})",
            "executed": now,
            "issued": now,
        })
        failure = {**previous, "check": check, "entity": entity.to_store(), "id": str(uuid.uuid4()),
                   "timestamp": now}
        try:
            await self._eventd.submit(failure, now=now, if_unchanged=event_kv.mod_revision)
        except CompareFailedError:
            self.stats["stale_failures"] += 1
            logger.info("keepalive arrived while the expiry was handled; no failure emitted", extra=extra)
            return
        self.stats["failures"] += 1
        logger.warning("keepalive timed out: no keepalive for %ds (status %d)", elapsed, status,
                       extra={**extra, "check": KEEPALIVE_CHECK, "status": status})

    async def agent_left(self, namespace: str, name: str) -> None:
        """An agent closed its connection on purpose (its process is stopping).

        An ephemeral (``deregister: true``) entity is deregistered at once
        rather than at its keepalive deadline; others keep their deadline.
        """
        kv = await self._store.get(keys.key_for("entities", namespace, name))
        if kv is None:
            return
        entity = decode(Entity, kv.value)
        if entity.deregister:
            await self._deregister(entity, kv.mod_revision, "it disconnected")

    async def _deregister(self, entity: Entity, mod_revision: int, why: str) -> None:
        """§3 expiry step 2: delete the entity, resolve its events, tell the handler.

        The entity is deleted only if unchanged since it was read, and only the
        node whose delete succeeds goes on: a disconnect and a deadline firing
        at the same moment deregister once.
        """
        namespace, name = entity.metadata.namespace, entity.metadata.name
        extra = {"namespace": namespace, "entity": name, "node": self._node}
        if not await self._store.delete_if(keys.key_for("entities", namespace, name), mod_revision=mod_revision):
            logger.info("entity changed or already deregistered; not deregistering", extra=extra)
            return
        now = int(time.time())
        listed = await self._store.range(keys.event_prefix(namespace, name))
        for kv in listed.items:
            if not await self._store.delete_if(kv.key, mod_revision=kv.mod_revision):
                continue  # changed or already gone: someone else resolves it
            resolved = decode_dict(kv.value)
            check = dict(resolved.get("check") or {})
            check.update({"status": 0, "output": "Resolving due to entity deregistering", "history": [],
                          "executed": now})
            await self._eventd.publish({**resolved, "check": check, "timestamp": now})
        handler = entity.deregistration.handler or self._deregistration_handler
        if handler:
            await self._eventd.publish(self._special_event(entity, "deregistration", [handler], now))
        self.stats["deregistrations"] += 1
        logger.warning("agent entity deregistered: %s", why, extra={
            **extra, "deregistration_handler": handler, "events_resolved": len(listed.items)})

    # ------------------------------------------------------------------ safety net

    async def _scan_forever(self) -> None:
        while True:
            try:
                await self._scan_once()
            except StoreError as exc:
                logger.warning("keepalive deadline scan failed: %s", exc, extra={"node": self._node})
            await trio.sleep(SCAN_INTERVAL_S)

    async def _scan_once(self) -> None:
        """Re-arm (create-only) deadlines missing for agents that have a keepalive event."""
        if not await self._store.wait_leader(30.0):
            return
        prefix = keys.prefix_for("entities")
        after: str | None = None
        while True:
            page = await self._store.range(prefix, start_after=after, limit=500)
            for kv in page.items:
                parts = keys.parse_key(kv.key)
                namespace, name = parts.namespace or "", parts.name
                if await self._store.get(deadline_key(namespace, name)) is not None:
                    continue
                event_kv = await self._store.get(keys.event_key(namespace, name, KEEPALIVE_CHECK))
                if event_kv is None:
                    continue
                try:
                    entity = decode(Entity, kv.value)
                except (ValueError, ValidationError):
                    continue
                if entity.entity_class != ENTITY_CLASS_AGENT:
                    continue
                warning = _warning_timeout(decode_dict(event_kv.value).get("check"))
                if await self._rearm(namespace, name, warning):
                    self.stats["rearmed_by_scan"] += 1
                    logger.info("re-armed a missing keepalive deadline", extra={
                        "namespace": namespace, "entity": name, "node": self._node, "ttl": warning})
            if not page.more or not page.items:
                return
            after = page.items[-1].key

    def statistics(self) -> dict[str, int]:
        return dict(self.stats)
