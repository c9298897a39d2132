"""Several real stores of one cluster in one process, for the store scripts of ``run_store_script``.

Imported inside those child processes (never by the test process itself),
so pysyncobj's process-wide state stays out of pytest.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import trio

from cluster.membership import Member, RaftSettings
from cluster.store import Store, open_store

__all__ = ["leader_of", "open_members"]


@asynccontextmanager
async def open_members(root: str, peers: Sequence[str], *, token: str, **settings: Any) -> AsyncIterator[list[Store]]:
    """Member ``m<i>`` on ``peers[i]`` with its state in ``<root>/m<i>``; ``settings`` go to every RaftSettings."""
    members = tuple(Member(f"m{i}", p) for i, p in enumerate(peers))
    async with AsyncExitStack() as stack:
        stores = []
        for m in members:
            stores.append(await stack.enter_async_context(open_store(RaftSettings(
                name=m.name, advertise_url=m.peer_url, listen_url=m.peer_url, members=members, token=token,
                state_dir=f"{root}/{m.name}", **settings))))
        yield stores


async def leader_of(stores: Sequence[Store], timeout: float = 30.0) -> Store:
    """The store whose node leads, once one does and a write commits through it."""
    with trio.fail_after(timeout):
        while not any(s.is_leader() for s in stores):
            await trio.sleep(0.05)
    leader = next(s for s in stores if s.is_leader())
    await leader.wait_leader(timeout)
    return leader
