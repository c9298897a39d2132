"""The agent's entity: local configuration, adopted ``entity_config`` and fresh system facts.

Why this shape (runtime.md §1.8, §2.2): after registration the entity stored in the
backend (editable through the API) is authoritative, so the agent keeps *two*
definitions -- its local one from configuration and the last ``entity_config``
the backend sent -- and builds every entity it sends from the adopted one (or
the local one while there is none), plus system facts that it refreshes every
:data:`SYSTEM_REFRESH_S` seconds and ``last_seen = now``. With
``agent-managed-entity`` the backend's config is ignored and the entity carries
the label ``sensu.io/managed_by: sensu-agent``.

System facts come from :func:`core.system.collect_system` (shared with the
backend's asset filters); gathering them reads files, so callers run it in a
worker thread.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Final

from core.resources.entity import (
    ENTITY_CLASS_AGENT,
    MANAGED_BY_LABEL,
    Deregistration,
    Entity,
    System,
    entity_subscription,
)
from core.resources.meta import ObjectMeta
from core.system import collect_system
from core.tokens import token_data

from .config import AgentConfig
from .version import AGENT_VERSION

__all__ = [
    "MANAGED_BY_AGENT",
    "NOT_FOUND_NAME",
    "SYSTEM_REFRESH_S",
    "EntityState",
    "collect_system",
    "local_entity",
]

logger = logging.getLogger(__name__)

SYSTEM_REFRESH_S: Final = 20.0
"""How often system facts are gathered again (runtime.md §2.2, §10)."""

NOT_FOUND_NAME: Final = "not found"
"""``entity_config.metadata.name`` when the backend has no stored entity yet (§1.8)."""

MANAGED_BY_AGENT: Final = "sensu-agent"

# ---------------------------------------------------------------------------------
# The entity
# ---------------------------------------------------------------------------------


def local_entity(config: AgentConfig) -> Entity:
    """The entity as configured locally (no system facts, no ``last_seen``).

    Subscriptions get ``entity:<name>`` appended, as the Go agent does, so the
    entity can always be targeted on its own.
    """
    labels = dict(config.labels)
    if config.agent_managed_entity:
        labels[MANAGED_BY_LABEL] = MANAGED_BY_AGENT
    subscriptions = list(dict.fromkeys(config.subscriptions))
    own = entity_subscription(config.name)
    if own not in subscriptions:
        subscriptions.append(own)
    return Entity(
        metadata=ObjectMeta(
            name=config.name,
            namespace=config.namespace,
            labels=labels,
            annotations=dict(config.annotations),
        ),
        entity_class=ENTITY_CLASS_AGENT,
        subscriptions=subscriptions,
        deregister=config.deregister,
        deregistration=Deregistration(handler=config.deregistration_handler),
        user=config.user,
        redact=list(config.redact),
        sensu_agent_version=AGENT_VERSION,
        keepalive_handlers=list(config.keepalive_handlers) or None,
    )


class EntityState:
    """What the agent says it is: local or adopted definition + latest system facts.

    Sync and in-memory: only the session task mutates it, everything else reads
    :meth:`current`. Why not one object: a reconnect drops the adopted config
    (the next ``entity_config`` decides again) but keeps the system facts.
    """

    def __init__(self, config: AgentConfig, system: System | None = None) -> None:
        self._config = config
        self._local = local_entity(config)
        self._adopted: Entity | None = None
        self._system = system if system is not None else System(hostname=config.name)

    @property
    def name(self) -> str:
        return self._config.name

    @property
    def namespace(self) -> str:
        return self._config.namespace

    @property
    def adopted(self) -> bool:
        """Whether the backend's stored entity config is in use."""
        return self._adopted is not None

    def set_system(self, system: System) -> None:
        """Replace the system facts (called by the refresher every 20 s)."""
        self._system = system

    def reset(self) -> None:
        """Drop the adopted config: on every (re)connect the backend decides again (§1.8)."""
        self._adopted = None

    def adopt(self, doc: dict[str, Any]) -> bool:
        """Apply an ``entity_config`` payload; returns whether it was adopted.

        ``metadata.name == "not found"`` keeps the local definition. With
        ``agent-managed-entity`` every config is ignored. The class is always
        ``agent`` and name/namespace always the agent's own: a config for another
        name is refused (logged) rather than letting the agent impersonate it.
        Raises ``WireTypeError`` for a malformed payload.
        """
        if self._config.agent_managed_entity:
            logger.debug("ignoring entity_config: agent-managed-entity is set", extra={"entity": self.name})
            return False
        received = Entity.from_wire(doc, path="entity_config")
        if received.metadata.name == NOT_FOUND_NAME:
            logger.info("backend has no entity config yet; using the local definition",
                        extra={"entity": self.name, "namespace": self.namespace})
            self._adopted = None
            return False
        if received.metadata.name and received.metadata.name != self.name:
            logger.error("ignoring entity_config for another entity",
                         extra={"entity": self.name, "received": received.metadata.name})
            return False
        received.metadata.name = self.name
        received.metadata.namespace = self.namespace
        received.metadata.labels.pop(MANAGED_BY_LABEL, None)
        received.entity_class = ENTITY_CLASS_AGENT
        received.user = received.user or self._config.user
        subs = list(received.subscriptions or ())
        own = entity_subscription(self.name)
        if own not in subs:
            subs.append(own)
        received.subscriptions = subs
        self._adopted = received
        logger.info("adopted entity config from the backend",
                    extra={"entity": self.name, "namespace": self.namespace, "subscriptions": subs})
        return True

    def current(self, now: int) -> Entity:
        """A fresh copy to send: definition + system facts + version + ``last_seen``."""
        base = self._adopted if self._adopted is not None else self._local
        entity = copy.deepcopy(base)
        entity.system = copy.deepcopy(self._system)
        entity.sensu_agent_version = AGENT_VERSION
        entity.last_seen = now
        return entity

    def template_data(self, now: int) -> dict[str, Any]:
        """The data check tokens are substituted with: the entity's JSON with
        ``metadata`` keys also at the top level (``{{ .name }}``, ``{{ .labels.x }}``)."""
        return token_data(self.current(now).to_store())
