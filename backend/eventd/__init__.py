"""eventd: validate -> merge (pure, ``merge.py``) -> store -> publish to the pipeline.

The door every event source uses is :class:`backend.eventd.eventd.Eventd` (``submit``).
"""

from backend.eventd.merge import (
    HISTORY_LENGTH,
    OUTPUT_TRUNCATED_LABEL,
    merge_event,
    output_truncated_bytes,
    persisted_copy,
    total_state_change,
)

__all__ = [
    "HISTORY_LENGTH",
    "OUTPUT_TRUNCATED_LABEL",
    "merge_event",
    "output_truncated_bytes",
    "persisted_copy",
    "total_state_change",
]
