"""The keepalive event (runtime.md §2.3), built purely so its shape is unit-tested.

Why the odd fields: the backend arms the agent's liveness timer from the
keepalive itself, reusing ``check.timeout`` for the *warning* timeout and
``check.ttl`` for the *critical* timeout (0 = off). ``interval`` tells it how
often to expect one. The keepalive handlers ride on the entity
(``keepalive_handlers``), not on the check.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from core.resources.common import ResourceReference
from core.resources.entity import Entity
from core.resources.event import Check, Event
from core.resources.meta import ObjectMeta

from .config import AgentConfig

__all__ = ["KEEPALIVE_CHECK", "build_keepalive", "keepalive_pipelines"]

KEEPALIVE_CHECK = "keepalive"


def keepalive_pipelines(names: tuple[str, ...]) -> list[ResourceReference] | None:
    """``keepalive-pipelines`` as core/v2 Pipeline references."""
    if not names:
        return None
    return [ResourceReference(api_version="core/v2", type="Pipeline", name=n) for n in names]


def build_keepalive(
    config: AgentConfig,
    entity: Entity,
    *,
    sequence: int,
    now: int,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> Event:
    """A keepalive event for ``entity`` at Unix time ``now`` with per-connection ``sequence``."""
    pipelines = keepalive_pipelines(config.keepalive_pipelines)
    check = Check(
        metadata=ObjectMeta(
            name=KEEPALIVE_CHECK,
            namespace=config.namespace,
            labels=dict(config.keepalive_check_labels),
            annotations=dict(config.keepalive_check_annotations),
        ),
        interval=config.keepalive_interval,
        timeout=config.keepalive_warning_timeout,
        ttl=config.keepalive_critical_timeout,
        handlers=list(entity.keepalive_handlers or ()),
        executed=now,
        issued=now,
        processed_by=config.name,
        pipelines=pipelines,
    )
    return Event(
        metadata=ObjectMeta(
            namespace=config.namespace,
            labels=dict(config.keepalive_check_labels),
            annotations=dict(config.keepalive_check_annotations),
        ),
        timestamp=now,
        entity=entity,
        check=check,
        id=new_id(),
        sequence=sequence,
        pipelines=pipelines,
    )
