"""eventd: validate -> merge (pure, ``merge.py``) -> store -> publish to the pipeline."""

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
