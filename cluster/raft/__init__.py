"""The Raft member behind the store: the one package that imports pysyncobj.

Everything that depends on pysyncobj, and every correction of it, lives here:

* ``node``: :class:`RaftNode`, which owns the ``SyncObj`` and answers
  :meth:`~RaftNode.is_leader`, :meth:`~RaftNode.leader`,
  :meth:`~RaftNode.members` and :meth:`~RaftNode.status`; it installs
  pysyncobj's module-level replacements;
* ``consumer``: the replicated map (:class:`cluster.statemachine.KVState`) as
  a pysyncobj consumer with its one ``@replicated`` method;
* ``transport``: the peer transport (cluster token, syncing before sending,
  chunk reassembly, follower log safety, stored zlib frames);
* ``peer_tls``: TLS under pysyncobj's non-blocking sockets;
* ``journal``: the durable journal, dumps written by a thread;
* ``outcome``: the codes a proposal ends with;
* ``compat``: the pinned version and every pysyncobj name used above.

:func:`~cluster.raft.compat.check_pysyncobj` runs first, before any module
here imports a name from pysyncobj, so a different pysyncobj stops the start
with one message naming every missing name. The rest of the backend holds a
:class:`cluster.store.Store` and never sees the ``SyncObj``; only this package
imports pysyncobj (tests/unit/test_raft_seam.py).

Loggers keep the names they had before this package existed
(``cluster.membership``, ``cluster.journal``), so log lines keep their
``component``.
"""

from __future__ import annotations

from .compat import check_pysyncobj

check_pysyncobj()  # before anything below relies on pysyncobj's internals: one clear error instead

from .node import ProposalCallback, RaftNode, RaftStatus  # noqa: E402
from .outcome import RETRYABLE, ProposalOutcome, outcome_name  # noqa: E402

__all__ = [
    "ProposalCallback",
    "ProposalOutcome",
    "RETRYABLE",
    "RaftNode",
    "RaftStatus",
    "check_pysyncobj",
    "outcome_name",
]
