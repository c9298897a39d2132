"""The intake gate: count- and byte-bounded admission, in arrival order, released exactly once."""

from __future__ import annotations

import trio
import trio.testing

from backend.agentd.intake import IntakeGate


async def test_admits_up_to_the_count_then_waiters_enter_in_arrival_order() -> None:
    gate = IntakeGate("event", max_items=2, max_bytes=1000)
    first, second = gate.acquire_nowait(10, 0.0), gate.acquire_nowait(10, 0.0)
    assert first is not None and second is not None
    assert gate.acquire_nowait(10, 0.0) is None  # full by count: nothing reserved
    order: list[str] = []
    tickets = []

    async def waiter(name: str) -> None:
        tickets.append(await gate.acquire(10, trio.current_time()))
        order.append(name)

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(waiter, "a")
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(waiter, "b")
            await trio.testing.wait_all_tasks_blocked()
            assert gate.statistics()["waiting"] == 2 and gate.stats["waits"] == 2
            first.finished()  # room for one: the first to wait
            await trio.testing.wait_all_tasks_blocked()
            assert order == ["a"]
            second.release()
    assert order == ["a", "b"]
    for ticket in tickets:
        ticket.finished()
    st = gate.statistics()
    assert st["in_flight"] == 0 and st["in_flight_bytes"] == 0
    assert st["finished"] == 3 and st["ended"] == 1 and st["admitted"] == 4
    assert sum(gate.latency_counts) == 3


async def test_bytes_bound_and_an_oversized_message_goes_alone() -> None:
    gate = IntakeGate("event", max_items=10, max_bytes=100)
    small = gate.acquire_nowait(60, 0.0)
    assert small is not None
    assert gate.acquire_nowait(50, 0.0) is None  # 110 bytes would exceed the bound
    small.release()
    small.release()  # idempotent: room is given back once
    big = gate.acquire_nowait(500, 0.0)  # larger than the bound, but nothing else is in flight
    assert big is not None and gate.statistics()["in_flight_bytes"] == 500
    assert gate.acquire_nowait(1, 0.0) is None
    big.finished()
    assert gate.statistics()["in_flight"] == 0


async def test_a_waiter_that_is_cancelled_leaves_nothing_reserved_and_does_not_block_the_next() -> None:
    gate = IntakeGate("event", max_items=1, max_bytes=100)
    held = gate.acquire_nowait(10, 0.0)
    assert held is not None
    got: list[str] = []

    async def later() -> None:
        (await gate.acquire(10, 0.0)).release()
        got.append("later")

    with trio.fail_after(5):
        async with trio.open_nursery() as nursery:
            cancelled = trio.CancelScope()

            async def doomed() -> None:
                with cancelled:
                    await gate.acquire(10, 0.0)

            nursery.start_soon(doomed)  # first in line, then cancelled
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(later)
            await trio.testing.wait_all_tasks_blocked()
            cancelled.cancel()
            await trio.testing.wait_all_tasks_blocked()
            assert gate.statistics()["waiting"] == 1
            held.finished()
    assert got == ["later"] and gate.statistics()["in_flight"] == 0
