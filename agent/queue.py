"""The durable event queue in ``cache-dir``: results are never lost while disconnected.

Why: a monitoring agent whose backend is restarting or failing over must not
lose the check results and API events produced meanwhile (runtime.md §2.6:
"queued durably in cache-dir ... re-queued on send failure"). Every outgoing
event except keepalives goes through this queue; it leaves the queue only after
it was written to the websocket. A crash or restart of the agent keeps it.

Design (one file per event):

* ``<cache-dir>/events/<seq:016d>-<origin>.json`` holds the exact payload to
  send. ``seq`` increases monotonically (recovered from the file names on
  open), so the oldest event is the one with the smallest number and events go
  out in the order they were produced. ``origin`` is ``check`` or ``api`` (API
  events are rate limited by ``events-rate-limit`` when forwarded).
* A write goes to ``.tmp-<seq>`` first and is renamed into place
  (``os.replace`` is atomic), so a crash never leaves a half-written event
  behind; leftover temp files are removed on open. No fsync: the queue
  survives a process crash or restart, not a power loss (the brief's bar).
* ``<cache-dir>/events/.lock`` is held with ``flock`` while the queue is open:
  two agents sharing a cache-dir would send each other's events twice.
* Delivery is at-least-once: an event written to the socket just before the
  agent died is sent again after restart (eventd tolerates duplicates: same id).

Bound and what happens when full: at most ``cache-max-events`` events (10,000)
and ``cache-max-bytes`` bytes (100 MiB). When full, nothing already accepted is
dropped: :meth:`EventQueue.put` raises :class:`QueueFullError`; the local API
answers **503** (the client keeps its event and retries) and a check result is
discarded with a counted error log (the check runs again next interval).

Threads: file I/O runs in ``trio.to_thread`` (STYLE: no blocking calls in async
code). The index lives on the trio side only, so it needs no lock.
"""

from __future__ import annotations

import bisect
import errno
import fcntl
import logging
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import trio

__all__ = [
    "ORIGIN_API",
    "ORIGIN_CHECK",
    "EventQueue",
    "Origin",
    "QueueError",
    "QueueFullError",
    "QueueItem",
    "QueueLockedError",
    "open_event_queue",
]

logger = logging.getLogger(__name__)

Origin = Literal["check", "api"]
ORIGIN_CHECK: Final = "check"
ORIGIN_API: Final = "api"

QUEUE_SUBDIR: Final = "events"
_NAME_RE: Final = re.compile(r"\A(\d{16})-(check|api)\.json\Z")
_TMP_PREFIX: Final = ".tmp-"
_LOCK_NAME: Final = ".lock"


class QueueError(Exception):
    """Base of the queue's errors."""


class QueueFullError(QueueError):
    """The queue is at ``cache-max-events`` or ``cache-max-bytes``; nothing was written."""


class QueueLockedError(QueueError):
    """Another process holds the queue directory's lock."""


@dataclass(frozen=True, slots=True, order=True)
class QueueItem:
    """One queued event: its sequence number, where it came from, and its size."""

    seq: int
    origin: Origin
    size: int

    @property
    def filename(self) -> str:
        return f"{self.seq:016d}-{self.origin}.json"


# ---------------------------------------------------------------------------------
# The file layer: synchronous, called from worker threads
# ---------------------------------------------------------------------------------


def _lock_dir(directory: Path) -> int:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / _LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise QueueLockedError(f"{directory} is in use by another sensu-agent") from None
        raise
    return fd


def _scan(directory: Path) -> list[QueueItem]:
    """The events on disk, oldest first; removes temp files and empty leftovers."""
    items: list[QueueItem] = []
    for entry in os.scandir(directory):
        if entry.name.startswith(_TMP_PREFIX):
            os.unlink(entry.path)
            continue
        m = _NAME_RE.match(entry.name)
        if m is None:
            continue
        size = entry.stat().st_size
        if size == 0:
            logger.warning("removing empty queued event file", extra={"file": entry.path})
            os.unlink(entry.path)
            continue
        origin: Origin = "api" if m.group(2) == "api" else "check"
        items.append(QueueItem(int(m.group(1)), origin, size))
    items.sort()
    return items


def _write(directory: Path, item: QueueItem, payload: bytes) -> None:
    tmp = directory / f"{_TMP_PREFIX}{item.seq:016d}"
    with open(tmp, "wb") as fh:
        fh.write(payload)
    os.replace(tmp, directory / item.filename)


def _read(directory: Path, item: QueueItem) -> bytes | None:
    try:
        with open(directory / item.filename, "rb") as fh:
            return fh.read()
    except FileNotFoundError:
        return None


def _delete(directory: Path, item: QueueItem) -> None:
    try:
        os.unlink(directory / item.filename)
    except FileNotFoundError:
        pass


# ---------------------------------------------------------------------------------
# The queue
# ---------------------------------------------------------------------------------


class EventQueue:
    """A bounded FIFO of event payloads on disk; one consumer, many producers.

    Use :func:`open_event_queue`. Producers call :meth:`put`; the connected
    session calls :meth:`wait_oldest`, :meth:`read`, sends, then :meth:`remove`.
    """

    def __init__(self, directory: Path, *, max_events: int, max_bytes: int) -> None:
        self.directory = directory
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._items: list[QueueItem] = []
        self._bytes = 0
        self._reserved_events = 0
        self._reserved_bytes = 0
        self._next_seq = 1
        self._changed = trio.Event()
        self._refused = 0
        self._lost = 0
        self._sent = 0
        self._lock_fd: int | None = None

    # --- lifecycle -------------------------------------------------------------------

    async def _open(self) -> None:
        self._lock_fd = await trio.to_thread.run_sync(_lock_dir, self.directory)
        items = await trio.to_thread.run_sync(_scan, self.directory)
        self._items = items
        self._bytes = sum(i.size for i in items)
        self._next_seq = (items[-1].seq + 1) if items else 1
        if items:
            logger.info("resuming durable event queue", extra={
                "events": len(items), "bytes": self._bytes, "dir": str(self.directory)})

    def _close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock; instant, no I/O wait
            self._lock_fd = None

    # --- state -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._items)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def statistics(self) -> dict[str, Any]:
        """Counters for logs and ``/metrics``."""
        return {
            "events": len(self._items),
            "bytes": self._bytes,
            "max_events": self.max_events,
            "max_bytes": self.max_bytes,
            "refused": self._refused,
            "lost": self._lost,
            "sent": self._sent,
        }

    def _wake(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # --- producers ---------------------------------------------------------------------

    def check_capacity(self, size: int) -> None:
        """Raise :class:`QueueFullError` if an event of ``size`` bytes would not fit."""
        events = len(self._items) + self._reserved_events
        used = self._bytes + self._reserved_bytes
        if events >= self.max_events:
            raise QueueFullError(f"event queue is full ({events} of {self.max_events} events)")
        if used + size > self.max_bytes:
            raise QueueFullError(
                f"event queue is full ({used} + {size} bytes would exceed {self.max_bytes})")

    async def put(self, payload: bytes, origin: Origin) -> QueueItem:
        """Write one event durably; returns once it is on disk.

        Raises :class:`QueueFullError` (counted; nothing written) or ``OSError``
        when the disk refuses the write (nothing queued).
        """
        try:
            self.check_capacity(len(payload))
        except QueueFullError:
            self._refused += 1
            raise
        item = QueueItem(self._next_seq, origin, len(payload))
        self._next_seq += 1
        self._reserved_events += 1
        self._reserved_bytes += item.size
        try:
            await trio.to_thread.run_sync(_write, self.directory, item, payload)
        finally:
            self._reserved_events -= 1
            self._reserved_bytes -= item.size
        bisect.insort(self._items, item)
        self._bytes += item.size
        self._wake()
        return item

    # --- the consumer --------------------------------------------------------------------

    async def wait_oldest(self) -> QueueItem:
        """The oldest queued event, waiting until there is one (not removed)."""
        while not self._items:
            await self._changed.wait()
        return self._items[0]

    async def read(self, item: QueueItem) -> bytes | None:
        """The payload of ``item``; ``None`` (and the item dropped, counted, logged)
        if its file vanished or cannot be read, so one bad file never blocks the queue."""
        try:
            payload = await trio.to_thread.run_sync(_read, self.directory, item)
            problem = "the file disappeared"
        except OSError as exc:
            payload, problem = None, f"cannot read it: {exc.strerror or exc}"
        if payload is None:
            logger.error("dropping queued event: %s", problem, extra={"file": str(self.directory / item.filename)})
            self._lost += 1
            self._forget(item)
        return payload

    async def remove(self, item: QueueItem) -> None:
        """Forget ``item`` after it was sent, and delete its file."""
        self._forget(item)
        self._sent += 1
        try:
            await trio.to_thread.run_sync(_delete, self.directory, item)
        except OSError as exc:  # it was sent; at worst it is sent again after a restart
            logger.error("cannot delete sent event file: %s", exc.strerror or exc,
                         extra={"file": str(self.directory / item.filename)})

    def _forget(self, item: QueueItem) -> None:
        i = bisect.bisect_left(self._items, item)
        if i < len(self._items) and self._items[i] == item:
            del self._items[i]
            self._bytes -= item.size
            self._wake()


@asynccontextmanager
async def open_event_queue(cache_dir: str | os.PathLike[str], *, max_events: int,
                           max_bytes: int) -> AsyncIterator[EventQueue]:
    """Open (creating) the queue under ``<cache_dir>/events`` and hold its lock.

    Raises :class:`QueueLockedError` when another agent uses the directory, or
    ``OSError`` when it cannot be created or read. The lock is released on exit;
    queued events stay on disk.
    """
    queue = EventQueue(Path(cache_dir) / QUEUE_SUBDIR, max_events=max_events, max_bytes=max_bytes)
    await queue._open()
    try:
        yield queue
    finally:
        queue._close()
