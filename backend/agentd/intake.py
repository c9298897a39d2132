"""The intake gate: how many agent messages a node holds between reading them and finishing them.

Why a gate and not only the worker queues: past saturation every queue
between the agent socket and the handler fills, and whatever a node accepts
beyond what it can finish soon only waits longer. So a node admits at most
``max_items`` messages and ``max_bytes`` bytes (frame sizes) *from the read
until the message is finished* (for an event: stored and through the
pipeline, handler included; for a keepalive: processed). A session that
cannot get room stops reading its socket until it can, so TCP pushes back
on the agent, which queues on its side (as Sensu agents do). Nothing read
is dropped for lack of room.

The bound this gives (docs/agents.md, "Overload"): an event a node accepted
waits at most about ``max_items / events finished per second`` before its
handler runs, because at most ``max_items`` are ahead of it.

Fairness: waiters are admitted strictly in arrival order, and each session
waits with at most one message, so every backlogged agent gets its turn and
none starves (a big message at the head waits for its bytes; the ones
behind it wait too rather than overtake it).

Bytes: one message larger than ``max_bytes`` (the per-message cap is 16 MiB)
is admitted when nothing else is in flight, so it can never wait forever.

A message read but never admitted, because its session ended while it
waited, is lost to the agent's view of it: it is counted as ``shed`` and
logged (rate-limited) by the session.
"""

from __future__ import annotations

import bisect
import logging
from collections import deque
from typing import Final

import trio

__all__ = ["IntakeGate", "LATENCY_BUCKETS", "Ticket"]

logger = logging.getLogger(__name__)

#: Upper bounds (seconds) of the read-to-finished latency histogram exported in ``/metrics``.
LATENCY_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 7.5,
                          10.0, 15.0, 30.0, 60.0)


class Ticket:
    """Room for one admitted message; gives it back exactly once, whoever finishes the message."""

    __slots__ = ("_gate", "nbytes", "read_at", "_released")

    def __init__(self, gate: IntakeGate, nbytes: int, read_at: float) -> None:
        self._gate = gate
        self.nbytes = nbytes
        self.read_at = read_at
        self._released = False

    def release(self) -> None:
        """The message ended without being finished (rejected, store error, abandoned)."""
        if not self._released:
            self._released = True
            self._gate._give_back(self, finished=False)

    def finished(self) -> None:
        """The message was finished (its pipeline ran): give the room back and record its latency."""
        if not self._released:
            self._released = True
            self._gate._give_back(self, finished=True)


class IntakeGate:
    """Count- and byte-bounded admission, first come first served, with ``statistics()``.

    ``acquire_nowait`` / ``acquire`` follow trio's ``X`` / ``X_nowait``
    naming; only the trio thread uses a gate.
    """

    def __init__(self, name: str, *, max_items: int, max_bytes: int, node: str = "") -> None:
        self.name = name
        self.max_items = max(1, max_items)
        self.max_bytes = max(1, max_bytes)
        self._node = node
        self._items = 0
        self._bytes = 0
        self._waiters: deque[tuple[int, trio.Event]] = deque()
        #: ``waits`` admissions that had to wait (a session stopped reading), ``blocked_s`` their total
        #: wait, ``shed`` messages read but abandoned while waiting, ``finished`` / ``ended`` tickets
        #: given back after or without finishing.
        self.stats = {"admitted": 0, "waits": 0, "blocked_s": 0.0, "shed": 0, "finished": 0, "ended": 0,
                      "latency_sum": 0.0}
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)

    def _fits(self, nbytes: int) -> bool:
        if self._items == 0:
            return True  # an oversized message goes alone rather than never
        return self._items + 1 <= self.max_items and self._bytes + nbytes <= self.max_bytes

    def acquire_nowait(self, nbytes: int, read_at: float) -> Ticket | None:
        """Room for a message of ``nbytes`` now, or None (nothing reserved) if it must wait.

        Never jumps the queue: with waiters ahead, a message waits even if it would fit.
        """
        if self._waiters or not self._fits(nbytes):
            return None
        return self._take(nbytes, read_at)

    async def acquire(self, nbytes: int, read_at: float) -> Ticket:
        """Wait for room in arrival order; the caller stops reading its socket meanwhile.

        Cancellation (the session ends) leaves nothing reserved; the caller
        counts the message as shed (:meth:`shed`).
        """
        ticket = self.acquire_nowait(nbytes, read_at)
        if ticket is not None:
            return ticket
        self.stats["waits"] += 1
        started = trio.current_time()
        entry = (nbytes, trio.Event())
        self._waiters.append(entry)
        try:
            await entry[1].wait()
        except BaseException:
            if entry[1].is_set():  # woken with room reserved for it, then cancelled: hand the room back
                self._items -= 1
                self._bytes -= nbytes
                self.stats["admitted"] -= 1
            else:
                self._waiters.remove(entry)
            self._wake()
            raise
        finally:
            self.stats["blocked_s"] += trio.current_time() - started
        return Ticket(self, nbytes, read_at)

    def shed(self) -> None:
        """Count one message read from an agent and never admitted (its session ended first)."""
        self.stats["shed"] += 1

    def _take(self, nbytes: int, read_at: float) -> Ticket:
        self._items += 1
        self._bytes += nbytes
        self.stats["admitted"] += 1
        return Ticket(self, nbytes, read_at)

    def _give_back(self, ticket: Ticket, *, finished: bool) -> None:
        self._items -= 1
        self._bytes -= ticket.nbytes
        if finished:
            latency = max(0.0, trio.current_time() - ticket.read_at)
            self.stats["finished"] += 1
            self.stats["latency_sum"] += latency
            self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, latency)] += 1
        else:
            self.stats["ended"] += 1
        self._wake()

    def _wake(self) -> None:
        """Reserve room for waiters at the head, in order, while they fit."""
        while self._waiters and self._fits(self._waiters[0][0]):
            nbytes, event = self._waiters.popleft()
            self._items += 1
            self._bytes += nbytes
            self.stats["admitted"] += 1
            event.set()

    @staticmethod
    def latency_bounds() -> tuple[float, ...]:
        """Upper bounds of :attr:`latency_counts` (the last count is above them all)."""
        return LATENCY_BUCKETS

    def statistics(self) -> dict[str, float]:
        """Room in use, waiters and counters, for ``/metrics`` and ``/debug``."""
        return {**self.stats, "in_flight": self._items, "in_flight_bytes": self._bytes,
                "waiting": len(self._waiters), "max_items": self.max_items, "max_bytes": self.max_bytes}
