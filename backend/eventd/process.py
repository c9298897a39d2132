"""Event processing (runtime.md §5.1): validate, proxy entity, silence, merge, CAS write, TTL upkeep.

Why one function for every source: agent results, keepalive OK and failure
events and the events API must all produce the same stored state (history,
occurrences, silencing), so they all call :func:`process_event`. It is a
function rather than a daemon because each caller already provides the
concurrency limit (agentd's bounded eventd/keepalived worker pools,
keepalived's expiry workers, the API's request handling).

Concurrency: two nodes may handle results for the same ``(entity, check)``
at once (a proxy check run by agents on different nodes, a keepalive
failure racing a returning agent). Each write is a compare-and-swap on the
stored event's ``mod_revision``; on conflict the stored event is read again
and the merge redone, so no update is lost and history stays in order.

After the write, the check's TTL deadline is re-armed (or disarmed) through
:func:`backend.eventd.ttl.arm_ttl` (§5.1 step 7; keepalives are skipped).

The pipeline is not run here: callers hand the returned event to a
:class:`PipelineHook` (STYLE §2: eventd -> store -> pipeline). The node's
hook is :class:`RecordingPipelineHook`, which records handled incidents and
forwards every event to pipelined.
"""

from __future__ import annotations

import copy
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Final, Protocol

import trio

from core.resources import Entity, Event, ValidationError, entity_subscription, keys
from core.resources.entity import ENTITY_CLASS_AGENT, ENTITY_CLASS_PROXY
from core.resources.event import is_incident, is_resolution
from core.resources.storage import (
    decode,
    decode_cached,
    decode_dict,
    decode_dict_cached,
    derive_cached,
    encode,
    encode_dict,
    remember_cached,
)
from backend.silenced.silenced import entries_to_clear_on_resolve, silenced_by
from cluster import codec
from cluster.errors import CompareFailedError, LeaseNotFoundError, StoreError
from cluster.statemachine import KeyValue
from cluster.store import Store

from .merge import (
    OUTPUT_TRUNCATED_LABEL,
    merge_event,
    merge_event_in_place,
    output_truncated_bytes,
    persisted_copy,
)
from .ttl import arm_ttl

__all__ = [
    "CAS_ATTEMPTS",
    "EventConflictError",
    "PipelineHook",
    "RecordingPipelineHook",
    "handled_prefix",
    "process_event",
    "process_valid_event",
]

logger = logging.getLogger(__name__)

#: Compare-and-swap attempts before giving up (each retry re-reads and re-merges).
CAS_ATTEMPTS: Final = 20


class EventConflictError(StoreError):
    """The stored event kept changing under us for :data:`CAS_ATTEMPTS` attempts."""


class PipelineHook(Protocol):
    """Where processed events go next: the pipeline daemon, once it exists.

    Called with every event :func:`process_event` returned, and with the
    events that skip eventd (registration, deregistration and deregistration
    resolutions, runtime.md §3/§5.1). Must not raise for a bad event; may
    raise ``StoreError``.

    ``done``, when given, is called exactly once when the event has been
    through the pipeline (handlers run or failed), *if the call returned*:
    agentd gives the event's intake room back with it, so its bound covers
    the pipeline too. If the call raises, the caller still owns ``done``.
    """

    async def __call__(self, event: dict[str, Any], *, done: Callable[[], None] | None = None) -> None: ...


def handled_prefix(namespace: str | None = None, entity: str | None = None) -> str:
    """Where :class:`RecordingPipelineHook` records handler runs."""
    return keys.internal_prefix("handled", *[p for p in (namespace, entity) if p])


class RecordingPipelineHook:
    """The hook eventd callers use: records handled keepalive incidents, then hands every event on.

    Counts every event, and for keepalive incidents and resolutions and for
    deregistrations writes ``internal_key("handled", ns, entity, check, event id)``
    with the handler names, under a shared one-hour lease. That makes "the
    keepalive failure was handled once" observable from any node even when
    the node that held the agent died (the keepalive failover test relies on
    it). Check results are not recorded: that would be a second Raft write
    per incident, and their handlers' own effects show what ran. Every event
    is then passed to ``forward`` (the pipeline daemon) when one is given.
    """

    RECORD_TTL_S: Final = 3600.0

    def __init__(self, store: Store, *, node: str = "", forward: PipelineHook | None = None) -> None:
        self._store = store
        self._node = node
        self._forward = forward
        self._lease = 0
        self._lease_at = -1e9
        self._lock = trio.Lock()
        self.stats = {"events": 0, "recorded": 0, "events_check": 0, "events_metrics": 0}

    async def __call__(self, event: dict[str, Any], *, done: Callable[[], None] | None = None) -> None:
        self.stats["events"] += 1
        if event.get("check"):  # by Sensu Go's event_type label: check, else metrics
            self.stats["events_check"] += 1
        elif event.get("metrics"):
            self.stats["events_metrics"] += 1
        await self._record(event)
        if self._forward is not None:
            await self._forward(event, done=done)
        elif done is not None:
            done()

    async def _record(self, event: dict[str, Any]) -> None:
        check = event.get("check") or {}
        check_name = str((check.get("metadata") or {}).get("name") or "")
        recorded = check_name == "deregistration" or (
            check_name == "keepalive" and (is_incident(event) or is_resolution(event)))
        if not check or not recorded:
            return
        entity = event.get("entity") or {}
        ns = str((entity.get("metadata") or {}).get("namespace") or (event.get("metadata") or {}).get("namespace") or "")
        name = str((entity.get("metadata") or {}).get("name") or "")
        if not ns or not name or not check_name:
            return
        handlers = list(check.get("handlers") or [])
        key = keys.internal_key("handled", ns, name, check_name, str(event.get("id") or uuid.uuid4()))
        value = encode_dict({"handlers": handlers, "status": check.get("status", 0), "node": self._node,
                             "at": int(time.time())})
        for _ in range(2):
            lease = await self._shared_lease()
            try:
                await self._store.put(key, value, lease=lease)
                break
            except LeaseNotFoundError:
                self._lease = 0
        self.stats["recorded"] += 1
        logger.info("incident handed to the pipeline", extra={
            "namespace": ns, "entity": name, "check": check_name, "status": check.get("status", 0),
            "handlers": handlers, "node": self._node})

    async def _shared_lease(self) -> int:
        async with self._lock:
            now = trio.current_time()
            if not self._lease or now - self._lease_at > 60:
                self._lease = await self._store.grant_lease(self.RECORD_TTL_S)
                self._lease_at = now
            return self._lease


async def _silenced_entries(store: Store, namespace: str) -> list[dict[str, Any]]:
    """The namespace's silences, decoded once per revision (shared: read only)."""
    res = await store.range(keys.prefix_for("silenced", namespace))
    return [decode_dict_cached(store, kv) for kv in res.items]


async def _proxy_entity(store: Store, event: Event, now: int) -> None:
    """§5.1 step 3: resolve the entity a proxy (or non-agent) result belongs to.

    With ``check.proxy_entity_name`` the named entity is loaded or created as
    class ``proxy`` with ``entity:<name>``; an event whose own entity is not
    an agent gets its entity created the same way the first time. The stored
    entity then replaces the one in the event, so silencing and handlers see
    the authoritative subscriptions.
    """
    assert event.entity is not None and event.check is not None
    namespace = event.metadata.namespace
    proxy_name = event.check.proxy_entity_name
    if proxy_name:
        template = Entity.from_wire({
            "metadata": {"name": proxy_name, "namespace": namespace,
                         "created_by": event.entity.metadata.created_by or event.entity.user},
            "entity_class": ENTITY_CLASS_PROXY,
        })
    elif event.entity.entity_class != ENTITY_CLASS_AGENT:
        template = Entity.from_wire(event.entity.to_store())
    else:
        kv = await store.get(keys.key_for("entities", namespace, event.entity.metadata.name))
        if kv is not None:  # the stored agent entity is authoritative (subscriptions, labels)
            stored = copy.copy(decode_cached(store, Entity, kv))  # shared decode: only top-level fields are set
            if event.entity.system.hostname:
                stored.system = event.entity.system
            event.entity = stored
        return
    template.metadata.namespace = namespace
    key = keys.key_for("entities", namespace, template.metadata.name)
    kv = await store.get(key)
    if kv is None:
        subs = list(template.subscriptions or [])
        own = entity_subscription(template.metadata.name)
        if own not in subs:
            subs.append(own)
        template.subscriptions = subs
        if not template.entity_class:
            template.entity_class = ENTITY_CLASS_PROXY
        template.last_seen = template.last_seen or now
        try:
            await store.create(key, encode(template))
            logger.info("created proxy entity", extra={"namespace": namespace,
                                                       "entity": template.metadata.name})
            event.entity = template
            return
        except CompareFailedError:
            kv = await store.get(key)
    if kv is not None:
        event.entity = decode(Entity, kv.value)


#: The stored event's check fields the merge reads from the previous event.
_PREVIOUS_FIELDS: Final = ("history", "last_ok", "occurrences", "occurrences_watermark")
#: The decoder name under which the merge state of stored events is cached.
_MERGE_STATE: Final = "eventd-merge-state"


def _merge_state(event: dict[str, Any]) -> dict[str, Any]:
    """What the merge reads of a stored event: its check's counters and history.

    Why cached: results of one check usually arrive through the same node,
    which wrote the stored event itself (and seeds the cache with this, see
    :func:`remember_cached`); decoding the whole stored event again, entity
    and all, for four check fields was a visible share of an event's CPU.
    """
    check = event.get("check")
    if not check:
        return {}  # no check: the merge replaces it
    # a check with none of those fields is kept whole: an empty projection would read as "no check"
    return {"check": {f: check[f] for f in _PREVIOUS_FIELDS if f in check} or dict(check)}


def _decode_merge_state(value: bytes) -> dict[str, Any]:
    return _merge_state(decode_dict(value))


def _previous(store: Store, kv: KeyValue) -> dict[str, Any]:
    """The stored event as the merge needs it, decoded once per revision (shared: read only)."""
    return derive_cached(store, kv, _MERGE_STATE, _decode_merge_state)


def _remember(store: Store, key: str, revision: int, merged: dict[str, Any]) -> None:
    remember_cached(store, key, revision, _MERGE_STATE, _merge_state(merged))


#: The check fields :func:`merge_event` reads; it writes only :data:`_MERGE_OUTPUTS` (and ``timestamp``).
_MERGE_INPUTS: Final = ("status", "executed", "history", "last_ok", "occurrences", "occurrences_watermark",
                        "low_flap_threshold", "high_flap_threshold")
_MERGE_OUTPUTS: Final = ("history", "total_state_change", "state", "last_ok", "occurrences",
                         "occurrences_watermark")


def _merge(new: dict[str, Any], prev: dict[str, Any] | None, now: int) -> dict[str, Any]:
    """``merge_event(new, prev, now)`` without deep-copying the whole event.

    Why: ``merge_event`` deep-copies its input, about 80 objects for a
    keepalive, which was the largest single CPU cost of event processing.
    It only reads a few check fields and writes a few others, so it is given
    just those, and its results are copied onto a shallow copy of ``new``.
    ``tests/unit/test_eventd_process.py`` holds this equal to ``merge_event``.
    """
    check = new.get("check")
    if not check:
        return merge_event(new, prev, now)
    inputs = {k: check[k] for k in _MERGE_INPUTS if k in check}
    inputs.setdefault("status", 0)  # never empty: an empty check would read as "no check"
    projected = merge_event_in_place({"timestamp": new.get("timestamp"), "check": inputs}, prev, now)
    out = dict(new)
    out["timestamp"] = projected["timestamp"]
    merged_check = dict(check)
    for field in _MERGE_OUTPUTS:
        merged_check[field] = projected["check"][field]
    out["check"] = merged_check
    return out


def _fill_namespace(ev: Event) -> str:
    namespace = ev.metadata.namespace or (ev.entity.metadata.namespace if ev.entity else "")
    ev.metadata.namespace = namespace
    if ev.entity is not None and not ev.entity.metadata.namespace:
        ev.entity.metadata.namespace = namespace
    if ev.check is not None and not ev.check.metadata.namespace:
        ev.check.metadata.namespace = namespace
    return namespace


async def process_event(store: Store, event: dict[str, Any], *, now: int,
                        if_unchanged: int | None = None) -> dict[str, Any]:
    """Validate, enrich, merge and store ``event``; returns the merged event for the pipeline.

    ``event`` is a core/v2 event in wire form; its namespace comes from
    ``metadata.namespace`` or, failing that, from the entity's. ``now`` is
    the backend clock (Unix seconds) used for an empty ``timestamp`` and for
    silence activity.

    ``if_unchanged`` (a ``mod_revision``; 0 = no stored event) turns the
    write into a single compare-and-swap without retry: it is for callers
    whose event is only valid against the state they read (a keepalive
    failure must not overwrite a keepalive that arrived meanwhile) and makes
    a conflict raise :class:`~cluster.errors.CompareFailedError`.

    Raises :class:`ValidationError` for an invalid event (nothing stored),
    :class:`EventConflictError` after :data:`CAS_ATTEMPTS` conflicts, and the
    store's errors. Metrics-only events are not stored (§5.1 step 2).
    """
    ev = Event.from_wire(event)
    _fill_namespace(ev)
    ev.validate()
    return await process_valid_event(store, ev, now=now, if_unchanged=if_unchanged)


async def process_valid_event(store: Store, ev: Event, *, now: int, if_unchanged: int | None = None,
                              entity_is_stored: bool = False,
                              write_with: tuple[str, bytes, int] | None = None) -> dict[str, Any]:
    """:func:`process_event` for an :class:`Event` the caller already decoded and validated.

    Why: agent sessions validate every message as it arrives and keepalived
    builds its events from validated parts; decoding them again would be
    most of the per-event cost. ``entity_is_stored`` says the event's entity
    is the stored copy just read or written (keepalived), so the proxy/agent
    entity lookup of step 3 is skipped. ``ev`` may be modified.

    ``write_with = (key, value, mod_revision)`` puts one more key in the same
    transaction as the event, compare-and-swapped on its own
    ``mod_revision``: keepalived writes the entity's ``last_seen`` with its
    keepalive event in one Raft operation instead of two. If that key
    changed meanwhile, nothing is written and ``CompareFailedError`` is
    raised for it (the caller re-reads and retries); a changed event is
    re-merged and retried here as usual.
    """
    namespace = _fill_namespace(ev)
    if not namespace:
        raise ValidationError("metadata.namespace", "must not be empty")
    if ev.entity is None:
        raise ValidationError("entity", "event must contain an entity", verbatim=True)
    if ev.id is None:
        ev.id = str(uuid.uuid4())
    if ev.check is None:  # metrics only: straight to the pipeline
        out = ev.to_store()
        out["timestamp"] = out.get("timestamp") or now
        return out
    if not entity_is_stored:
        await _proxy_entity(store, ev, now)
    entries = await _silenced_entries(store, namespace)
    new = ev.to_store()
    silenced = silenced_by(new, entries, now) if entries else []
    new["check"]["silenced"] = silenced or None
    new["check"]["is_silenced"] = bool(silenced)
    # merge_event deep-copies its input; the entity plays no part in the merge, so keep it out
    entity_wire = new.pop("entity")
    key = keys.event_key(namespace, ev.entity_name, ev.check_name)

    for attempt in range(CAS_ATTEMPTS):
        kv = await store.get(key)
        prev = _previous(store, kv) if kv is not None else None
        current = kv.mod_revision if kv is not None else 0
        if if_unchanged is not None and current != if_unchanged:
            raise CompareFailedError(key, if_unchanged, current)
        try:
            merged = _merge(new, prev, now)
        except ValueError:  # a stored event without a check: replace it
            merged = _merge(new, None, now)
        merged["entity"] = entity_wire
        to_clear = entries_to_clear_on_resolve(merged, entries) if entries else []
        if to_clear:
            remaining = [s for s in merged["check"].get("silenced") or [] if s not in to_clear]
            merged["check"]["silenced"] = remaining or None
        truncated = output_truncated_bytes(merged)
        if truncated:
            metadata = dict(merged.get("metadata") or {})
            metadata["labels"] = {**(metadata.get("labels") or {}), OUTPUT_TRUNCATED_LABEL: str(truncated)}
            merged["metadata"] = metadata
            persisted = persisted_copy(merged)
        else:  # what persisted_copy does, without copying what is only read
            persisted = {k: v for k, v in merged.items() if k != "metrics"}
        try:
            if write_with is None:
                _remember(store, key, await store.update(key, encode_dict(persisted), mod_revision=current), merged)
            else:
                other_key, other_value, other_revision = write_with
                result = await store.txn(
                    [codec.compare(key, "mod", "==", current), codec.compare(other_key, "mod", "==", other_revision)],
                    [codec.put_op(key, encode_dict(persisted)), codec.put_op(other_key, other_value)])
                if result.succeeded:
                    _remember(store, key, result.revision, merged)
                else:
                    other = await store.get(other_key)  # applied here already: local state is current enough
                    other_now = other.mod_revision if other is not None else 0
                    if other_now != other_revision:
                        raise CompareFailedError(other_key, other_revision, other_now)
                    raise CompareFailedError(key, current, -1)
        except CompareFailedError as exc:
            if if_unchanged is not None or exc.key != key:
                raise
            logger.debug("event changed while merging; retrying", extra={
                "namespace": namespace, "entity": ev.entity_name, "check": ev.check_name, "attempt": attempt})
            continue
        for name in to_clear:
            try:
                await store.delete(keys.key_for("silenced", namespace, name))
            except StoreError as exc:
                logger.warning("could not delete expire_on_resolve silence: %s", exc, extra={
                    "namespace": namespace, "silenced": name, "entity": ev.entity_name, "check": ev.check_name})
        await arm_ttl(store, merged)
        return merged
    raise EventConflictError(f"{key}: still changing after {CAS_ATTEMPTS} attempts")
