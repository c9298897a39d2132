"""A lone member leads at once; members with peers still wait their election timeout.

Real stores in a child process (``run_store_script``), as in a node.
"""

from __future__ import annotations

from pathlib import Path

from tests.harness.backend import free_port, run_store_script

_SCRIPT = r"""
import json, sys, trio
from tests.harness.stores import open_members

async def main(root, wait_s, *peers):
    # an election timeout far longer than the wait: only skipping it can make a leader in time
    async with open_members(root, peers, token="election-test", election_s=60.0, heartbeat_s=0.05) as stores:
        led = await stores[0].wait_leader(float(wait_s))
        print(json.dumps({"leader": led, "leaders": sum(s.is_leader() for s in stores)}))

trio.run(main, *sys.argv[1:])
"""


def _peer() -> str:
    return f"http://127.0.0.1:{free_port('127.0.0.1')}"


async def test_a_lone_member_does_not_wait_its_election_timeout(tmp_path: Path) -> None:
    out = await run_store_script(_SCRIPT, str(tmp_path), "20", _peer(), timeout=120)
    assert out == {"leader": True, "leaders": 1}


async def test_members_with_peers_still_wait_their_election_timeout(tmp_path: Path) -> None:
    # all three run and could vote at once; with a 60 s timeout none stands within 3 s
    out = await run_store_script(_SCRIPT, str(tmp_path), "3", _peer(), _peer(), _peer(), timeout=120)
    assert out == {"leader": False, "leaders": 0}
