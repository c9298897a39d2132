"""eventd's door: every event enters event processing through :meth:`Eventd.submit`.

Why one door: agent results, keepalives, keepalive failures, TTL failures and
the events API must all leave the same stored state (history, occurrences,
silencing) and reach the pipeline the same way. They used to call the
processing function and then a chain of pipeline hooks each (one recording
handled incidents, one writing the event log, then pipelined), wired in four
places; now each holds one :class:`~core.event_processing.EventProcessor`
(this class, built by ``backend/node.py``) and makes one call.

What :meth:`Eventd.submit` does, in order (runtime.md §5.1, STYLE §2
eventd -> store -> pipeline):

1. decode and validate wire-form events (an :class:`Event` was validated by
   whoever built it);
2. proxy entity, silencing, merge with the stored event, compare-and-swap
   write, expire_on_resolve, TTL deadline (:func:`.process.process_valid_event`);
3. :meth:`Eventd.publish`: count it, record handled keepalive incidents and
   deregistrations in the store, append it to the event log, queue it for
   pipelined.

Not a daemon: each caller brings its own concurrency bound (agentd's worker
pools, keepalived's expiry workers, the API's requests), and the event log
and pipelined it feeds are started by the node.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Final, Protocol

import trio

from core.resources import Event, keys
from core.resources.event import is_incident, is_resolution
from core.resources.storage import encode_dict
from cluster.errors import LeaseNotFoundError, StoreError
from cluster.store import Store

from .eventlog import EventLog
from .process import process_event, process_valid_event

__all__ = ["Eventd", "PipelineHook", "handled_prefix"]

logger = logging.getLogger(__name__)


class PipelineHook(Protocol):
    """Where eventd hands events on: pipelined's queue.

    Must not raise for a bad event. ``done``, when given, is called exactly
    once when the event has been through the pipeline (handlers run or
    failed), *if the call returned*.
    """

    async def __call__(self, event: dict[str, Any], *, done: Callable[[], None] | None = None) -> None: ...


def handled_prefix(namespace: str | None = None, entity: str | None = None) -> str:
    """Where :class:`Eventd` records handled keepalive incidents and deregistrations."""
    return keys.internal_prefix("handled", *[p for p in (namespace, entity) if p])


class Eventd:
    """The node's event processing: one :meth:`submit` for every event source.

    ``pipelined`` is where processed events go (None: nowhere, e.g. a node
    built only to serve the API's route table); ``event_log`` gets every
    event on its way there when ``event-log-file`` is set.
    """

    name = "eventd"

    #: How long a "handled" record lives (the keepalive failover test reads it from any node).
    RECORD_TTL_S: Final = 3600.0

    def __init__(self, store: Store, *, node: str = "", pipelined: PipelineHook | None = None,
                 event_log: EventLog | None = None) -> None:
        self._store = store
        self._node = node
        self._pipelined = pipelined
        self._event_log = event_log
        self._lease = 0
        self._lease_at = -1e9
        self._lock = trio.Lock()
        #: by Sensu Go's ``event_type`` label (check, else metrics); exported as ``sensu_go_events_processed``
        self.stats = {"events": 0, "recorded": 0, "events_check": 0, "events_metrics": 0}

    async def submit(self, event: Event | Mapping[str, Any], *, now: int,
                     done: Callable[[], None] | None = None,
                     entity_is_stored: bool = False,
                     if_unchanged: int | None = None,
                     write_with: tuple[str, bytes, int] | None = None,
                     log_handoff_errors: bool = False) -> dict[str, Any]:
        """Validate, merge, store, hand to the pipeline; see :class:`core.event_processing.EventProcessor`."""
        if isinstance(event, Event):
            merged = await process_valid_event(self._store, event, now=now, if_unchanged=if_unchanged,
                                               entity_is_stored=entity_is_stored, write_with=write_with)
        else:
            merged = await process_event(self._store, event, now=now, if_unchanged=if_unchanged,
                                         entity_is_stored=entity_is_stored, write_with=write_with)
        if not log_handoff_errors:
            await self.publish(merged, done=done)
            return merged
        try:
            await self.publish(merged, done=done)
        except StoreError as exc:  # stored: a retry by the caller would count the event twice
            namespace, entity, check = _names(merged)
            logger.warning("stored event not handed to the pipeline: %s", exc, extra={
                "namespace": namespace, "entity": entity, "check": check})
            if done is not None:
                done()
        return merged

    async def publish(self, event: dict[str, Any], *, done: Callable[[], None] | None = None) -> None:
        """Count, record, log and queue ``event`` for the pipeline (see :class:`core.event_processing.EventProcessor`).

        Raises ``StoreError`` when the record cannot be written; ``done`` is then still the caller's.
        """
        self.stats["events"] += 1
        if event.get("check"):
            self.stats["events_check"] += 1
        elif event.get("metrics"):
            self.stats["events_metrics"] += 1
        await self._record(event)
        if self._event_log is not None:
            self._event_log.log_nowait(event)
        if self._pipelined is not None:
            await self._pipelined(event, done=done)
        elif done is not None:
            done()

    async def _record(self, event: dict[str, Any]) -> None:
        """Record a handled keepalive incident, resolution or deregistration.

        Writes ``internal_key("handled", ns, entity, check, event id)`` with
        the handler names, under a shared one-hour lease, so "the keepalive
        failure was handled once" is observable from any node even when the
        node that held the agent died (the keepalive failover test relies on
        it). Check results are not recorded: that would be a second Raft write
        per incident, and their handlers' own effects show what ran.
        """
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


def _names(event: Mapping[str, Any]) -> tuple[str, str, str]:
    """``(namespace, entity, check)`` of a merged event, for log lines."""
    entity = event.get("entity") or {}
    check = event.get("check") or {}
    namespace = str((event.get("metadata") or {}).get("namespace") or "")
    return (namespace, str((entity.get("metadata") or {}).get("name") or ""),
            str((check.get("metadata") or {}).get("name") or ""))
