"""Prefix watchers that see every change once, in revision order.

The hub lives on the trio thread; the bridge calls :meth:`WatchHub.publish`
with each applied batch, in log order. A watcher has a bounded buffer: a slow
watcher never slows writers (etcd's ``watchable_store``); when its buffer
overflows it is marked lagged and its next read raises
:class:`~cluster.errors.WatchLaggedError`, so the consumer re-reads the prefix
and watches again instead of silently missing changes.

A watcher may start from a past revision; the hub keeps a ring of recent
events to replay from. Older than the ring means lagged at once.
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from typing import Iterator

import trio

from .errors import WatchLaggedError
from .statemachine import WatchEvent

__all__ = ["WatchHub", "Watcher"]


class Watcher:
    """One subscription: ``async for events in watcher`` yields lists of events."""

    def __init__(self, hub: "WatchHub", prefix: str, max_buffer: int) -> None:
        self.prefix = prefix
        self._hub = hub
        self._buffer: deque[WatchEvent] = deque()
        self._max_buffer = max_buffer
        self._lot = trio.lowlevel.ParkingLot()
        self._lagged_at: int | None = None
        self.delivered = 0

    def _push(self, events: list[WatchEvent]) -> None:
        if self._lagged_at is not None:
            return
        matched = [e for e in events if e.key.startswith(self.prefix)]
        if not matched:
            return
        if len(self._buffer) + len(matched) > self._max_buffer:
            self._buffer.clear()
            self._lagged_at = self._hub.revision
        else:
            self._buffer.extend(matched)
        self._lot.unpark_all()

    def _lag(self, revision: int) -> None:
        self._buffer.clear()
        self._lagged_at = revision
        self._lot.unpark_all()

    def receive_nowait(self) -> list[WatchEvent]:
        """Everything buffered; raises ``trio.WouldBlock`` if nothing is."""
        if self._lagged_at is not None:
            raise WatchLaggedError(self.prefix, self._lagged_at)
        if not self._buffer:
            raise trio.WouldBlock
        events = list(self._buffer)
        self._buffer.clear()
        self.delivered += len(events)
        return events

    async def receive(self) -> list[WatchEvent]:
        while True:
            try:
                return self.receive_nowait()
            except trio.WouldBlock:
                await self._lot.park()

    def __aiter__(self) -> "Watcher":
        return self

    async def __anext__(self) -> list[WatchEvent]:
        return await self.receive()


class WatchHub:
    """Fans applied changes out to watchers; trio thread only."""

    def __init__(self, history: int = 20_000) -> None:
        self._history: deque[WatchEvent] = deque()
        self._max_history = history
        # every event with a revision above the floor is in the history
        self._floor = 0
        self._watchers: set[Watcher] = set()
        self.revision = 0
        self.published = 0

    def publish(self, revision: int, events: list[WatchEvent]) -> None:
        self.revision = revision
        self.published += len(events)
        self._history.extend(events)
        while len(self._history) > self._max_history:
            self._floor = self._history.popleft().revision
        for watcher in tuple(self._watchers):
            watcher._push(events)

    def reset(self, revision: int) -> None:
        """The whole state was replaced by a snapshot: every watcher must re-list."""
        self.revision = revision
        self._history.clear()
        self._floor = revision
        for watcher in tuple(self._watchers):
            watcher._lag(revision)

    @contextmanager
    def watch(self, prefix: str, *, start_revision: int | None = None, max_buffer: int = 10_000) -> Iterator[Watcher]:
        """Watch ``prefix``; with ``start_revision``, replay changes from it on.

        Raises WatchLaggedError on the first read if ``start_revision`` is
        older than the retained history.
        """
        watcher = Watcher(self, prefix, max_buffer)
        if start_revision is not None and start_revision <= self.revision:
            if start_revision <= self._floor:
                watcher._lag(self.revision)
            else:
                watcher._push([e for e in self._history if e.revision >= start_revision])
        self._watchers.add(watcher)
        try:
            yield watcher
        finally:
            self._watchers.discard(watcher)

    def statistics(self) -> dict[str, int]:
        return {"watchers": len(self._watchers), "published": self.published, "revision": self.revision}
