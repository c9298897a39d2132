"""The one door into event processing, as the code that feeds it sees it.

Why a Protocol here: agent sessions, keepalived, the TTL monitor and the
events API all hand events to eventd, and none of them should depend on
eventd's module (the API imports no daemon at all, STYLE §2). They are given
an :class:`EventProcessor` by the composition root (``backend/node.py``
builds ``backend.eventd.Eventd``) and see only this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from core.resources.event import Event

__all__ = ["EventProcessor"]


class EventProcessor(Protocol):
    """Validate, merge, store and hand to the pipeline: every event goes through :meth:`submit`."""

    async def submit(self, event: Event | Mapping[str, Any], *, now: int,
                     done: Callable[[], None] | None = None,
                     entity_is_stored: bool = False,
                     if_unchanged: int | None = None,
                     write_with: tuple[str, bytes, int] | None = None,
                     log_handoff_errors: bool = False) -> dict[str, Any]:
        """Process one check result or metrics event and hand it to the pipeline; returns the merged event.

        ``event`` is either wire form (decoded and validated here) or an
        :class:`Event` its builder already validated (agent sessions, the
        API, keepalived), which is not validated again. ``now`` is the
        backend clock (Unix seconds) used for an empty ``timestamp`` and
        silence activity. ``done`` is called once the pipeline is finished
        with the event, if this returns; if it raises, the caller still owns
        ``done``.

        Keepalived's special cases: ``entity_is_stored`` (the event's entity
        is the stored copy, so the entity lookup is skipped), ``if_unchanged``
        (a ``mod_revision``, 0 = no stored event: a single compare-and-swap,
        a conflict raises ``CompareFailedError``) and ``write_with`` (one more
        ``(key, value, mod_revision)`` written in the same transaction).

        ``log_handoff_errors``: once the event is stored, a store error while
        handing it on is logged instead of raised (the API then answers 201:
        a retry would count the event twice).

        Raises ``ValidationError`` for an invalid event (nothing stored) and
        the store's errors (``StoreError`` and its subclasses).
        """
        ...

    async def publish(self, event: dict[str, Any], *, done: Callable[[], None] | None = None) -> None:
        """Hand an event that is not stored straight to the pipeline (registration, deregistration,
        the resolutions of a deregistered entity's events). Raises ``StoreError``."""
        ...
