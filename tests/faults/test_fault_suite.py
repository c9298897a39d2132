"""A short run of the fault suite (tests/faults/suite.py): every fault once, every history checked.

The long run, whose figures are in docs/store.md, is ``scripts/faults.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from .suite import FAULTS, run_suite

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.timeout(420)
async def test_every_fault_once_keeps_every_history_linearizable(tmp_path: Path) -> None:
    logs: list[str] = []
    report = await run_suite(tmp_path, seconds=len(FAULTS) * 6.0, clients=8, keys=3,
                             hold=(2.0, 3.0), rest=(1.0, 2.0), log=logs.append)
    summary = report.summary()
    print(json.dumps(summary, indent=1))
    assert {f.kind for f in report.faults} == set(FAULTS), summary
    assert report.ok_ops > 0
    assert all(k.linearizable is True for k in report.keys), summary["explanations"]
    assert not report.stale, [(r, w) for r, w in report.stale]
    assert not report.lost, report.lost
    # every fault was followed by an acknowledged write: the cluster came back each time
    assert all(f.unavailable_s is not None for f in report.faults), summary
