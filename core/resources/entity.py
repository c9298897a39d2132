"""Entities (spec §2.4): agents, proxies, the backend itself; and their redaction.

Why redaction lives here: every path that shows an entity (entity GET, event GET, the
pipeline's view of an event) must hide the same label and annotation values, so the rule
is one method, :meth:`Entity.redacted`, applied by :meth:`Entity.to_wire`.  The store keeps
the real values (:meth:`Entity.to_store`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar, Final, Self

from .common import bool_field, join_field
from .meta import (
    NAME_RE,
    ObjectMeta,
    WireReader,
    check_name,
    decode_meta,
    list_or_none,
)

__all__ = [
    "DEFAULT_REDACT",
    "ENTITY_CLASS_AGENT",
    "ENTITY_CLASS_BACKEND",
    "ENTITY_CLASS_PROXY",
    "ENTITY_CLASS_SERVICE",
    "MANAGED_BY_LABEL",
    "REDACTED",
    "Deregistration",
    "Entity",
    "Network",
    "NetworkInterface",
    "Process",
    "System",
    "entity_fields",
    "entity_subscription",
    "redact_map",
]

ENTITY_CLASS_AGENT: Final = "agent"
ENTITY_CLASS_PROXY: Final = "proxy"
ENTITY_CLASS_BACKEND: Final = "backend"
ENTITY_CLASS_SERVICE: Final = "service"

MANAGED_BY_LABEL: Final = "sensu.io/managed_by"
"""Label an agent puts on its entity; the API refuses to replace such an entity (409)."""

REDACTED: Final = "REDACTED"

DEFAULT_REDACT: Final = (
    "password", "passwd", "pass", "api_key", "api_token", "access_key", "secret_key", "private_key", "secret",
)
"""Keys redacted when an entity's own ``redact`` list is empty (spec §2.4)."""


def entity_subscription(name: str) -> str:
    """``entity:<name>``: the subscription that targets one entity."""
    return f"entity:{name}"


def redact_map(values: dict[str, str], redact: list[str] | tuple[str, ...]) -> dict[str, str]:
    """A copy of ``values`` with the values of redacted keys (case-insensitive) replaced."""
    keys = {k.lower() for k in redact}
    return {k: (REDACTED if k.lower() in keys else v) for k, v in values.items()}


@dataclass(slots=True, kw_only=True)
class NetworkInterface:
    name: str = ""
    mac: str = ""
    addresses: list[str] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(name=r.get_str("name"), mac=r.get_str("mac"), addresses=r.get_str_list("addresses"))

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.name:
            out["name"] = self.name
        if self.mac:
            out["mac"] = self.mac
        out["addresses"] = list_or_none(self.addresses)
        return out


@dataclass(slots=True, kw_only=True)
class Network:
    interfaces: list[NetworkInterface] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(interfaces=r.get_list("interfaces", NetworkInterface.from_wire))

    def to_wire(self) -> dict[str, Any]:
        return {"interfaces": None if self.interfaces is None else [i.to_wire() for i in self.interfaces]}


@dataclass(slots=True, kw_only=True)
class Process:
    name: str = ""

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        return cls(name=WireReader(data, path).get_str("name"))

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name}


@dataclass(slots=True, kw_only=True)
class System:
    """What the agent knows about its host.  Unknown keys are dropped, as in Go."""

    hostname: str = ""
    os: str = ""
    platform: str = ""
    platform_family: str = ""
    platform_version: str = ""
    network: Network = field(default_factory=Network)
    arch: str = ""
    arm_version: int = 0
    libc_type: str = ""
    vm_system: str = ""
    vm_role: str = ""
    cloud_provider: str = ""
    float_type: str = ""
    processes: list[Process] | None = None

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            hostname=r.get_str("hostname"),
            os=r.get_str("os"),
            platform=r.get_str("platform"),
            platform_family=r.get_str("platform_family"),
            platform_version=r.get_str("platform_version"),
            network=r.get_obj("network", Network.from_wire),
            arch=r.get_str("arch"),
            arm_version=r.get_int("arm_version", "int32"),
            libc_type=r.get_str("libc_type"),
            vm_system=r.get_str("vm_system"),
            vm_role=r.get_str("vm_role"),
            cloud_provider=r.get_str("cloud_provider"),
            float_type=r.get_str("float_type"),
            processes=r.get_list("processes", Process.from_wire),
        )

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key in ("hostname", "os", "platform", "platform_family", "platform_version"):
            value = getattr(self, key)
            if value:
                out[key] = value
        out["network"] = self.network.to_wire()
        if self.arch:
            out["arch"] = self.arch
        if self.arm_version:
            out["arm_version"] = self.arm_version
        out["libc_type"] = self.libc_type
        out["vm_system"] = self.vm_system
        out["vm_role"] = self.vm_role
        out["cloud_provider"] = self.cloud_provider
        if self.float_type:
            out["float_type"] = self.float_type
        out["processes"] = None if self.processes is None else [p.to_wire() for p in self.processes]
        return out


@dataclass(slots=True, kw_only=True)
class Deregistration:
    """``{}`` or ``{"handler": "..."}``: the handler told when the entity deregisters."""

    handler: str = ""

    @classmethod
    def from_wire(cls, data: Any, path: str = "") -> Self:
        return cls(handler=WireReader(data, path).get_str("handler"))

    def to_wire(self) -> dict[str, Any]:
        return {"handler": self.handler} if self.handler else {}


@dataclass(slots=True, kw_only=True)
class Entity:
    """A monitored thing.  ``entity_class`` is required (``agent``, ``proxy``, ...)."""

    KIND: ClassVar[str] = "Entity"

    metadata: ObjectMeta = field(default_factory=ObjectMeta)
    entity_class: str = ""
    system: System = field(default_factory=System)
    subscriptions: list[str] | None = None
    last_seen: int = 0
    deregister: bool = False
    deregistration: Deregistration = field(default_factory=Deregistration)
    user: str = ""
    redact: list[str] | None = None
    sensu_agent_version: str = ""
    keepalive_handlers: list[str] | None = None

    @classmethod
    def from_wire(cls, data: Any, *, path: str = "") -> Self:
        r = WireReader(data, path)
        return cls(
            metadata=r.get_obj("metadata", decode_meta),
            entity_class=r.get_str("entity_class"),
            system=r.get_obj("system", System.from_wire),
            subscriptions=r.get_str_list("subscriptions"),
            last_seen=r.get_int("last_seen", "int64"),
            deregister=r.get_bool("deregister"),
            deregistration=r.get_obj("deregistration", Deregistration.from_wire),
            user=r.get_str("user"),
            redact=r.get_str_list("redact"),
            sensu_agent_version=r.get_str("sensu_agent_version"),
            keepalive_handlers=r.get_str_list("keepalive_handlers"),
        )

    @classmethod
    def decode(cls, data: Any, path: str) -> Self:
        """Positional-path decoder for nested fields."""
        return cls.from_wire(data, path=path)

    @classmethod
    def from_store(cls, d: dict[str, Any]) -> Self:
        return cls.from_wire(d)

    def to_store(self) -> dict[str, Any]:
        """The unredacted shape: what the store keeps."""
        return self._wire_shape()

    def to_wire(self) -> dict[str, Any]:
        """The GET shape, with redacted label and annotation values."""
        return self.redacted()._wire_shape()

    def _wire_shape(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "entity_class": self.entity_class,
            "system": self.system.to_wire(),
            "subscriptions": list_or_none(self.subscriptions),
            "last_seen": self.last_seen,
            "deregister": self.deregister,
            "deregistration": self.deregistration.to_wire(),
        }
        if self.user:
            out["user"] = self.user
        if self.redact:
            out["redact"] = list(self.redact)
        out["metadata"] = self.metadata.to_wire()
        out["sensu_agent_version"] = self.sensu_agent_version
        if self.keepalive_handlers:
            out["keepalive_handlers"] = list(self.keepalive_handlers)
        return out

    def redaction_keys(self) -> tuple[str, ...]:
        """The entity's ``redact`` list, or :data:`DEFAULT_REDACT` when it is empty."""
        return tuple(self.redact) if self.redact else DEFAULT_REDACT

    def redacted(self) -> Entity:
        """A copy whose label/annotation values under redacted keys read ``REDACTED``."""
        keys = self.redaction_keys()
        meta = self.metadata.copy()
        meta.labels = redact_map(meta.labels, keys)
        meta.annotations = redact_map(meta.annotations, keys)
        return replace(self, metadata=meta)

    def validate(self) -> None:
        """The name and ``entity_class`` match the name regex; the namespace is set."""
        self.metadata.validate(namespaced=True)
        check_name(self.entity_class, "entity_class", NAME_RE)


def entity_fields(entity: Entity) -> dict[str, str]:
    """Field-selector values of an entity (spec §1.9)."""
    fields = {
        "entity.name": entity.metadata.name,
        "entity.namespace": entity.metadata.namespace,
        "entity.deregister": bool_field(entity.deregister),
        "entity.entity_class": entity.entity_class,
        "entity.subscriptions": join_field(entity.subscriptions),
    }
    for k, v in entity.metadata.labels.items():
        fields[f"entity.labels.{k}"] = v
    return fields
