"""The event log: every processed event appended to ``event-log-file`` as one JSON line.

Why: operators ship this file to their log pipeline (Sensu Go's
``event-log-file``); it must keep up with the event rate, survive logrotate
and never slow the pipeline down.

Shape (Sensu Go's ``backend/eventd/logger.go``: a ring buffer and one writer):

* :meth:`EventLog.log_nowait` is called (by ``Eventd.publish``) for every
  event on its way to the pipeline and never waits: the event goes into a ring buffer of
  ``event-log-buffer-size`` entries. When the buffer is full the **oldest**
  entry is dropped to make room (as Go's ring buffer does), counted in
  ``statistics()["dropped"]``, and an error line says how many were lost, at
  most once a second.
* One writer task takes everything buffered, waits up to
  ``event-log-buffer-wait`` for more to arrive so that a burst becomes one
  write, and appends the batch in a worker thread (the event loop never
  touches the disk). Go uses the wait as how long a producer may block for
  room; our producers never block (a pipeline must not wait on a log file),
  so the wait bounds how long an event may sit before it is written.
* ``event-log-parallel-encoders``: off (the default), the writer thread
  encodes the batch with one encoder; on, each event is encoded where it is
  logged (by the many tasks that process events, as Go's parallel encoders
  encode in the callers) and the buffer holds bytes.
* :meth:`EventLog.reopen_nowait` (SIGHUP, see ``backend/node.py``) closes and
  reopens the file by name before the next write, so ``logrotate`` can move
  the file away and the next lines go to a fresh file.

Error handling: a file that cannot be opened at start is a start-up error
naming the key; a write error later is logged and the batch dropped
(counted), and the file is reopened on the next batch.
"""

from __future__ import annotations

import collections
import json
import logging
from typing import IO, Any, Final

import trio

__all__ = ["EventLog", "EventLogError"]

logger = logging.getLogger(__name__)

#: At most one "events lost" error line per this many seconds.
DROP_REPORT_INTERVAL_S: Final = 1.0

_ENCODER: Final = json.JSONEncoder(separators=(",", ":"), check_circular=False)


class EventLogError(Exception):
    """The event log file cannot be used; ``str()`` names the file and the reason."""


class EventLog:
    """A ring buffer and its writer for one ``event-log-file``."""

    def __init__(self, path: str, *, buffer_size: int = 100_000, buffer_wait: float = 0.01,
                 parallel_encoders: bool = False) -> None:
        if buffer_size < 1:
            raise ValueError("buffer_size must be at least 1")
        self.path = path
        self._wait = max(0.0, float(buffer_wait))
        self._parallel = parallel_encoders
        self._buffer: collections.deque[Any] = collections.deque(maxlen=buffer_size)
        self._wakeup = trio.Event()
        self._reopen = False
        self._file: IO[bytes] | None = None
        self._dropped_unreported = 0
        self._last_report = -1e9
        self._stats = {"logged": 0, "written": 0, "dropped": 0, "write_errors": 0, "reopened": 0}

    def statistics(self) -> dict[str, int]:
        """Counters since start, plus the number of entries waiting in the buffer."""
        return {**self._stats, "buffered": len(self._buffer)}

    # ------------------------------------------------------------------ producers

    def log_nowait(self, event: dict[str, Any]) -> None:
        """Buffer ``event`` for the file; never waits. A full buffer loses its oldest entry."""
        item: Any = (_ENCODER.encode(event) + "\n").encode() if self._parallel else event
        if len(self._buffer) == self._buffer.maxlen:
            self._stats["dropped"] += 1
            self._dropped_unreported += 1
        self._buffer.append(item)
        self._stats["logged"] += 1
        self._wakeup.set()

    def reopen_nowait(self) -> None:
        """Reopen the file by name before the next write (after logrotate moved it)."""
        self._reopen = True
        self._wakeup.set()

    # ------------------------------------------------------------------ the writer

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the file, report started, then write batches until cancelled.

        Raises :class:`EventLogError` before ``started()`` if the file cannot
        be opened. Cleanup: what is still buffered is written (shielded) and
        the file is closed.
        """
        try:
            await trio.to_thread.run_sync(self._open)
        except OSError as exc:
            raise EventLogError(f"event-log-file: cannot open {self.path}: {exc.strerror or exc}") from None
        logger.info("event logging is enabled", extra={"path": self.path})
        task_status.started()
        try:
            while True:
                await self._wakeup.wait()
                if self._wait > 0 and not self._reopen:
                    await trio.sleep(self._wait)  # let a burst gather into one write
                await self._flush()
        finally:
            with trio.CancelScope(shield=True):
                await self._flush()
                if self._file is not None:
                    await trio.to_thread.run_sync(self._file.close)
                    self._file = None

    async def _flush(self) -> None:
        self._wakeup = trio.Event()
        batch = list(self._buffer)
        self._buffer.clear()
        reopen, self._reopen = self._reopen, False
        if reopen:
            self._stats["reopened"] += 1
        if batch or reopen:
            try:
                # shielded: the batch has left the buffer, so a cancel here (node stopping)
                # must not lose it between the buffer and the file
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(self._write, batch, reopen)
                self._stats["written"] += len(batch)
            except OSError as exc:
                self._stats["write_errors"] += 1
                self._stats["dropped"] += len(batch)
                self._dropped_unreported += len(batch)
                logger.error("cannot write the event log %s: %s", self.path, exc.strerror or exc)
                self._close_quietly()
        self._report_drops()

    def _report_drops(self) -> None:
        now = trio.current_time()
        if self._dropped_unreported and now - self._last_report >= DROP_REPORT_INTERVAL_S:
            logger.error("the event log buffer is full, %d event(s) lost", self._dropped_unreported,
                         extra={"path": self.path, "dropped_total": self._stats["dropped"]})
            self._dropped_unreported = 0
            self._last_report = now

    # ------------------------------------------------------------------ thread side

    def _open(self) -> None:
        self._file = open(self.path, "ab")  # noqa: SIM115 - kept open across writes, closed in run()

    def _close_quietly(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def _write(self, batch: list[Any], reopen: bool) -> None:
        """Worker thread: reopen if asked (or after an error), encode, append, flush."""
        if reopen:
            self._close_quietly()
        if self._file is None:
            self._open()
        assert self._file is not None
        if self._parallel:
            data = b"".join(batch)
        else:
            data = "".join(_ENCODER.encode(event) + "\n" for event in batch).encode()
        if data:
            self._file.write(data)
            self._file.flush()

