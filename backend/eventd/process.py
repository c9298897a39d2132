"""Event processing (runtime.md §5.1): validate, proxy entity, silence, merge, CAS write, TTL upkeep.

The steps behind :meth:`backend.eventd.Eventd.submit`, the one door every
event source uses (agent results, keepalive OK and failure events, TTL
failures, the events API), so that all of them produce the same stored state
(history, occurrences, silencing). Functions rather than a daemon because
each caller already provides the concurrency limit (agentd's bounded
eventd/keepalived worker pools, keepalived's expiry workers, the API's
request handling).

Concurrency: two nodes may handle results for the same ``(entity, check)``
at once (a proxy check run by agents on different nodes, a keepalive
failure racing a returning agent). Each write is a compare-and-swap on the
stored event's ``mod_revision``; on conflict the stored event is read again
and the merge redone, so no update is lost and history stays in order.

After the write, the check's TTL deadline is re-armed (or disarmed) through
:func:`backend.eventd.ttl.arm_ttl` (§5.1 step 7; keepalives are skipped).

The pipeline is not run here: :class:`~backend.eventd.Eventd` hands the
returned event on (STYLE §2: eventd -> store -> pipeline).
"""

from __future__ import annotations

import copy
import logging
import uuid
from collections.abc import Mapping
from typing import Any, Final

from core.resources import Entity, Event, ValidationError, entity_subscription, keys
from core.resources.entity import ENTITY_CLASS_AGENT, ENTITY_CLASS_PROXY
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
from cluster.errors import CompareFailedError, StoreError
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
    "process_event",
    "process_valid_event",
]

logger = logging.getLogger(__name__)

#: Compare-and-swap attempts before giving up (each retry re-reads and re-merges).
CAS_ATTEMPTS: Final = 20


class EventConflictError(StoreError):
    """The stored event kept changing under us for :data:`CAS_ATTEMPTS` attempts."""


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


async def process_event(store: Store, event: Mapping[str, Any], *, now: int, if_unchanged: int | None = None,
                        entity_is_stored: bool = False,
                        write_with: tuple[str, bytes, int] | None = None) -> dict[str, Any]:
    """Validate, enrich, merge and store ``event``; returns the merged event for the pipeline.

    ``event`` is a core/v2 event in wire form; its namespace comes from
    ``metadata.namespace`` or, failing that, from the entity's. ``now`` is
    the backend clock (Unix seconds) used for an empty ``timestamp`` and for
    silence activity. The keyword options are :func:`process_valid_event`'s.

    Raises :class:`ValidationError` for an invalid event (nothing stored),
    :class:`EventConflictError` after :data:`CAS_ATTEMPTS` conflicts, and the
    store's errors. Metrics-only events are not stored (§5.1 step 2).
    """
    ev = Event.from_wire(event)
    _fill_namespace(ev)
    ev.validate()
    return await process_valid_event(store, ev, now=now, if_unchanged=if_unchanged,
                                     entity_is_stored=entity_is_stored, write_with=write_with)


async def process_valid_event(store: Store, ev: Event, *, now: int, if_unchanged: int | None = None,
                              entity_is_stored: bool = False,
                              write_with: tuple[str, bytes, int] | None = None) -> dict[str, Any]:
    """:func:`process_event` for an :class:`Event` the caller already decoded and validated.

    Why: agent sessions validate every message as it arrives and keepalived
    builds its events from validated parts; decoding them again would be
    most of the per-event cost. ``ev`` may be modified.

    ``entity_is_stored`` says the event's entity is the stored copy just
    read or written (keepalived), so the proxy/agent entity lookup of step 3
    is skipped.

    ``if_unchanged`` (a ``mod_revision``; 0 = no stored event) turns the
    write into a single compare-and-swap without retry: it is for callers
    whose event is only valid against the state they read (a keepalive
    failure must not overwrite a keepalive that arrived meanwhile) and makes
    a conflict raise :class:`~cluster.errors.CompareFailedError`.

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
        current = kv.mod_revision if kv is not None else 0
        if if_unchanged is not None and current != if_unchanged:
            raise CompareFailedError(key, if_unchanged, current)
        merged, persisted, to_clear = _merged(new, _previous(store, kv) if kv is not None else None, entity_wire,
                                              entries, now)
        try:
            await _write(store, key, merged, persisted, current, write_with)
        except CompareFailedError as exc:
            if if_unchanged is not None or exc.key != key:
                raise
            logger.debug("event changed while merging; retrying", extra={
                "namespace": namespace, "entity": ev.entity_name, "check": ev.check_name, "attempt": attempt})
            continue
        if to_clear:
            await _delete_silences(store, ev, to_clear)
        await arm_ttl(store, merged)
        return merged
    raise EventConflictError(f"{key}: still changing after {CAS_ATTEMPTS} attempts")


def _merged(new: dict[str, Any], prev: dict[str, Any] | None, entity_wire: Any, entries: list[dict[str, Any]],
            now: int) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Steps 4-5 on one read of the stored event: the merged event, its persisted copy, the silences it resolves.

    A stored event without a check is replaced. Silences with
    ``expire_on_resolve`` that this result resolves are taken off
    ``check.silenced`` here and returned, to be deleted once the write
    succeeded. An output longer than ``max_output_size`` gets its label
    (and is cut in the persisted copy only).
    """
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
    return merged, persisted, to_clear


async def _write(store: Store, key: str, merged: dict[str, Any], persisted: dict[str, Any], current: int,
                 write_with: tuple[str, bytes, int] | None) -> None:
    """Compare-and-swap ``persisted`` at ``key`` (with ``write_with`` in one transaction); caches ``merged``.

    Raises :class:`CompareFailedError` naming the key that changed.
    """
    if write_with is None:
        _remember(store, key, await store.update(key, encode_dict(persisted), mod_revision=current), merged)
        return
    other_key, other_value, other_revision = write_with
    result = await store.txn(
        [codec.compare(key, "mod", "==", current), codec.compare(other_key, "mod", "==", other_revision)],
        [codec.put_op(key, encode_dict(persisted)), codec.put_op(other_key, other_value)])
    if result.succeeded:
        _remember(store, key, result.revision, merged)
        return
    other = await store.get(other_key)  # applied here already: local state is current enough
    other_now = other.mod_revision if other is not None else 0
    if other_now != other_revision:
        raise CompareFailedError(other_key, other_revision, other_now)
    raise CompareFailedError(key, current, -1)


async def _delete_silences(store: Store, ev: Event, names: list[str]) -> None:
    """Delete the ``expire_on_resolve`` silences a stored resolution cleared; a failure is only logged."""
    namespace = ev.metadata.namespace
    for name in names:
        try:
            await store.delete(keys.key_for("silenced", namespace, name))
        except StoreError as exc:
            logger.warning("could not delete expire_on_resolve silence: %s", exc, extra={
                "namespace": namespace, "silenced": name, "entity": ev.entity_name, "check": ev.check_name})
