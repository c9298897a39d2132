"""core/v2 resources: dataclasses with lenient decoding, validation and the exact wire shapes.

Every resource class has ``from_wire(data, *, path="")`` (raises only
:class:`WireTypeError`), ``validate()`` (raises only :class:`ValidationError`),
``to_wire()`` (the GET shape of spec §2), ``to_store()``/``from_store()``.  The
:data:`RESOURCES` registry maps URL collection names to them; :mod:`.keys` builds every
store key.  Pure code: no I/O, no clock (callers pass ``now``).
"""

from __future__ import annotations

from . import keys
from .apikey import APIKey
from .asset import Asset, AssetBuild
from .check import CheckConfig, HookList, MetricThreshold, MetricThresholdRule, ProxyRequests, Subdue
from .common import MetricTag, ResourceReference, Secret, TimeWindowDays, TimeWindowTimeRange, TimeWindowWhen
from .entity import (
    DEFAULT_REDACT,
    MANAGED_BY_LABEL,
    REDACTED,
    Deregistration,
    Entity,
    Network,
    NetworkInterface,
    Process,
    System,
    entity_subscription,
    redact_map,
)
from .errors import ValidationError, WireTypeError
from .event import Check, CheckHistory, Event, MetricPoint, Metrics, event_labels
from .filter import BUILTIN_FILTERS, EventFilter
from .handler import Handler, HandlerSocket
from .hook import Hook, HookConfig
from .meta import ASSET_NAME_RE, NAME_RE, SUBSCRIPTION_RE, USERNAME_RE, ObjectMeta
from .mutator import Mutator
from .namespace import DEFAULT_NAMESPACE, Namespace
from .pipeline import Pipeline, PipelineWorkflow
from .rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding, RoleRef, Rule, Subject
from .registry import RESOURCES, Resource, ResourceType, resource_type
from .silenced import Silenced, silenced_name
from .tessen import TessenConfig
from .user import HASH_MISMATCH, PASSWORD_REQUIRED, User

__all__ = [
    "APIKey",
    "ASSET_NAME_RE",
    "Asset",
    "AssetBuild",
    "BUILTIN_FILTERS",
    "Check",
    "CheckConfig",
    "CheckHistory",
    "ClusterRole",
    "ClusterRoleBinding",
    "DEFAULT_NAMESPACE",
    "DEFAULT_REDACT",
    "Deregistration",
    "Entity",
    "Event",
    "EventFilter",
    "HASH_MISMATCH",
    "Handler",
    "HandlerSocket",
    "Hook",
    "HookConfig",
    "HookList",
    "MANAGED_BY_LABEL",
    "MetricPoint",
    "MetricTag",
    "MetricThreshold",
    "MetricThresholdRule",
    "Metrics",
    "Mutator",
    "NAME_RE",
    "Namespace",
    "Network",
    "NetworkInterface",
    "ObjectMeta",
    "PASSWORD_REQUIRED",
    "Pipeline",
    "PipelineWorkflow",
    "Process",
    "ProxyRequests",
    "REDACTED",
    "RESOURCES",
    "Resource",
    "ResourceReference",
    "ResourceType",
    "Role",
    "RoleBinding",
    "RoleRef",
    "Rule",
    "SUBSCRIPTION_RE",
    "Secret",
    "Silenced",
    "Subdue",
    "Subject",
    "System",
    "TessenConfig",
    "TimeWindowDays",
    "TimeWindowTimeRange",
    "TimeWindowWhen",
    "USERNAME_RE",
    "User",
    "ValidationError",
    "WireTypeError",
    "entity_subscription",
    "event_labels",
    "keys",
    "redact_map",
    "resource_type",
    "silenced_name",
]
