"""How a proposal ended: pysyncobj's ``FAIL_REASON`` codes, named, and which of them a retry may follow."""

from __future__ import annotations

import enum

from pysyncobj import FAIL_REASON

__all__ = ["ProposalOutcome", "RETRYABLE", "outcome_name"]


class ProposalOutcome(enum.IntEnum):
    """The ``reason`` a proposal callback receives (pysyncobj's ``FAIL_REASON``, same values and names)."""

    SUCCESS = FAIL_REASON.SUCCESS
    QUEUE_FULL = FAIL_REASON.QUEUE_FULL
    MISSING_LEADER = FAIL_REASON.MISSING_LEADER
    DISCARDED = FAIL_REASON.DISCARDED
    NOT_LEADER = FAIL_REASON.NOT_LEADER
    LEADER_CHANGED = FAIL_REASON.LEADER_CHANGED
    REQUEST_DENIED = FAIL_REASON.REQUEST_DENIED
    UNKNOWN_OUTCOME = FAIL_REASON.UNKNOWN_OUTCOME


#: Failures after which the same proposal (same batch id) may be sent again: the state machine
#: applies a batch id at most once, so a proposal that did commit after all is not applied twice.
RETRYABLE: frozenset[int] = frozenset(
    {
        ProposalOutcome.QUEUE_FULL,
        ProposalOutcome.MISSING_LEADER,
        ProposalOutcome.DISCARDED,
        ProposalOutcome.NOT_LEADER,
        ProposalOutcome.LEADER_CHANGED,
        ProposalOutcome.UNKNOWN_OUTCOME,
    }
)


def outcome_name(reason: int) -> str | int:
    """``QUEUE_FULL`` for 1, and so on; a code pysyncobj does not define is returned as it is."""
    try:
        return ProposalOutcome(reason).name
    except ValueError:
        return reason
