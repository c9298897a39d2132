#!/usr/bin/env python3
"""The long run of the fault suite: concurrent REST clients, a nemesis, a linearizability check.

    sudo .venv/bin/python scripts/faults.py --seconds 600

Runs three members in network namespaces (root needed), cycles through the
faults of tests/faults/suite.py for ``--seconds``, then prints one JSON
summary: operations, anomalies (non-linearizable keys, stale reads, lost
acknowledged writes) and unavailability after each kind of fault (median and
max seconds from the fault to the first acknowledged write begun after it).
Exits 1 when there is any anomaly.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.faults.suite import FAULTS, run_suite  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--faults", nargs="+", choices=FAULTS, default=list(FAULTS))
    parser.add_argument("--hold", type=float, nargs=2, default=(3.0, 8.0), metavar=("MIN", "MAX"))
    parser.add_argument("--keep", action="store_true", help="keep the state dirs and logs")
    parser.add_argument("--peer-tls", action="store_true", help="TLS between members (etcd-peer-*)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="sensu-faults-"))
    report = trio.run(lambda: run_suite(workdir, seconds=args.seconds, faults=args.faults, clients=args.clients,
                                        keys=args.keys, seed=args.seed, hold=tuple(args.hold), peer_tls=args.peer_tls,
                                        log=lambda text: print(text[-20000:], file=sys.stderr)))
    print(json.dumps(report.summary(), indent=1))
    if not args.keep:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    else:
        print(f"state and logs kept in {workdir}", file=sys.stderr)
    return 1 if report.anomalies else 0


if __name__ == "__main__":
    sys.exit(main())
