"""The table of REST collections: class, scope, selector prefix and field functions.

Routes, RBAC, selectors and the store all look resources up here by their URL
collection name (``checks``, ``clusterrolebindings``, ...), so adding a type is one row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Generic, Protocol, Self, TypeVar

from . import keys, storage
from .apikey import APIKey, apikey_fields
from .asset import Asset, asset_fields
from .check import CheckConfig, check_fields
from .entity import Entity, entity_fields
from .event import Event, event_fields, event_labels
from .filter import EventFilter, filter_fields
from .handler import Handler, handler_fields
from .hook import HookConfig, hook_fields
from .mutator import Mutator, mutator_fields
from .namespace import Namespace, namespace_fields
from .pipeline import Pipeline, pipeline_fields
from .rbac import ClusterRole, ClusterRoleBinding, Role, RoleBinding, binding_fields, role_fields
from .silenced import Silenced, silenced_fields
from .user import User, user_fields

__all__ = ["RESOURCES", "Resource", "ResourceType", "resource_type"]


class Resource(Protocol):
    """What every core/v2 resource class provides."""

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self: ...

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self: ...

    def validate(self) -> None: ...

    def to_wire(self) -> dict[str, Any]: ...

    def to_store(self) -> dict[str, Any]: ...


R = TypeVar("R", bound=Resource)


@dataclass(frozen=True, slots=True)
class ResourceType(Generic[R]):
    """One REST collection.

    ``fields(obj)`` gives the field-selector values (spec §1.9) and ``labels(obj)`` the
    label-selector set (for events: event, entity and check labels merged).
    ``name_of`` is the name used in keys and continue tokens (``<entity>/<check>`` for
    events); ``namespace_of`` is ``""`` for cluster-wide types.
    """

    collection: str
    cls: type[R]
    namespaced: bool
    selector_prefix: str
    fields: Callable[[R], dict[str, str]]
    labels: Callable[[R], dict[str, str]]
    name_of: Callable[[R], str]
    namespace_of: Callable[[R], str]
    patchable: bool = True

    @property
    def kind(self) -> str:
        """Go's type name (``CheckConfig``), as used in wrapped bodies."""
        kind: str = getattr(self.cls, "KIND")
        return kind

    def key_of(self, obj: R) -> str:
        """The store key of ``obj``; ``ValueError`` if it has no name yet (validate first)."""
        if self.collection == "events":
            assert isinstance(obj, Event)
            return keys.event_key(obj.metadata.namespace, obj.entity_name, obj.check_name)
        return keys.key_for(self.collection, self.namespace_of(obj) or None, self.name_of(obj))

    def from_wire(self, data: Any) -> R:
        """Lenient decode of a request body; raises :class:`WireTypeError` only."""
        return self.cls.from_wire(data)

    def encode(self, obj: R) -> bytes:
        """Store bytes of ``obj`` (:mod:`.storage`: the one encoding every node reads)."""
        return storage.encode(obj)

    def decode(self, data: bytes) -> R:
        """Inverse of :meth:`encode`."""
        return self.cls.from_store(storage.decode_dict(data))


def _meta_name(obj: Any) -> str:
    name: str = obj.metadata.name
    return name


def _meta_namespace(obj: Any) -> str:
    namespace: str = obj.metadata.namespace
    return namespace


def _no_namespace(obj: Any) -> str:
    return ""


def _meta_labels(obj: Any) -> dict[str, str]:
    labels: dict[str, str] = obj.metadata.labels
    return dict(labels)


def _no_labels(obj: Any) -> dict[str, str]:
    return {}


def _event_name(event: Event) -> str:
    return f"{event.entity_name}/{event.check_name}"


def _namespaced(collection: str, cls: type[Any], prefix: str, fields: Callable[[Any], dict[str, str]],
                *, patchable: bool = True) -> ResourceType[Any]:
    return ResourceType(collection, cls, True, prefix, fields, _meta_labels, _meta_name, _meta_namespace, patchable)


def _cluster(collection: str, cls: type[Any], prefix: str, fields: Callable[[Any], dict[str, str]]) -> ResourceType[Any]:
    return ResourceType(collection, cls, False, prefix, fields, _meta_labels, _meta_name, _no_namespace)


RESOURCES: Final[dict[str, ResourceType[Any]]] = {
    "assets": _namespaced("assets", Asset, "asset", asset_fields),
    "checks": _namespaced("checks", CheckConfig, "check", check_fields),
    "entities": _namespaced("entities", Entity, "entity", entity_fields),
    "events": ResourceType("events", Event, True, "event", event_fields, event_labels, _event_name,
                           _meta_namespace, patchable=False),
    "filters": _namespaced("filters", EventFilter, "filter", filter_fields),
    "handlers": _namespaced("handlers", Handler, "handler", handler_fields),
    "hooks": _namespaced("hooks", HookConfig, "hook", hook_fields),
    "mutators": _namespaced("mutators", Mutator, "mutator", mutator_fields),
    "pipelines": _namespaced("pipelines", Pipeline, "pipeline", pipeline_fields),
    "rolebindings": _namespaced("rolebindings", RoleBinding, "rolebinding",
                                lambda b: binding_fields("rolebinding", b)),
    "roles": _namespaced("roles", Role, "role", lambda r: role_fields("role", r)),
    "silenced": _namespaced("silenced", Silenced, "silenced", silenced_fields, patchable=False),
    "apikeys": _cluster("apikeys", APIKey, "api_key", apikey_fields),
    "clusterrolebindings": _cluster("clusterrolebindings", ClusterRoleBinding, "clusterrolebinding",
                                    lambda b: binding_fields("clusterrolebinding", b)),
    "clusterroles": _cluster("clusterroles", ClusterRole, "clusterrole", lambda r: role_fields("clusterrole", r)),
    "namespaces": ResourceType("namespaces", Namespace, False, "namespace", namespace_fields, _no_labels,
                               lambda ns: ns.name, _no_namespace),
    "users": ResourceType("users", User, False, "user", user_fields, _no_labels, lambda u: u.username,
                          _no_namespace, patchable=False),
}
"""Keyed by URL collection name.  ``patchable`` is false where spec §1.10 has no PATCH."""

assert set(RESOURCES) == keys.COLLECTIONS
assert {c for c, t in RESOURCES.items() if t.namespaced} == keys.NAMESPACED_COLLECTIONS


def resource_type(collection: str) -> ResourceType[Any]:
    """``RESOURCES[collection]``, raising ``KeyError`` with a readable message."""
    try:
        return RESOURCES[collection]
    except KeyError:
        raise KeyError(f"unknown resource collection {collection!r}") from None
