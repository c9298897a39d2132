"""What the API needs from the node, passed in explicitly (the API imports no daemon)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from api.jwtkeys import JwtKeyPair
from api.settings import ApiSettings
from core.event_processing import EventProcessor
from cluster.membership import Member
from cluster.store import Store

__all__ = ["ApiContext"]


@dataclass
class ApiContext:
    store: Store
    settings: ApiSettings
    node_name: str
    initial_members: list[Member]
    cluster_id: int
    #: eventd's door (``POST``/``PUT`` events go through it, as agent results do)
    events: EventProcessor
    #: ``jwt-*-key-file`` keys, loaded at start-up; None: HS256 with the stored secret only
    jwt_keys: JwtKeyPair | None = None
    #: free-form per-node services the API may use (bus, metrics registry, ...)
    services: dict[str, Any] = field(default_factory=dict)
