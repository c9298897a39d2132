"""The agent's entity: local configuration, adopted ``entity_config`` and fresh system facts.

Why this shape (runtime.md §1.8, §2.2): after registration the entity stored in the
backend (editable through the API) is authoritative, so the agent keeps *two*
definitions -- its local one from configuration and the last ``entity_config``
the backend sent -- and builds every entity it sends from the adopted one (or
the local one while there is none), plus system facts that it refreshes every
:data:`SYSTEM_REFRESH_S` seconds and ``last_seen = now``. With
``agent-managed-entity`` the backend's config is ignored and the entity carries
the label ``sensu.io/managed_by: sensu-agent``.

System facts come from the standard library only (``socket``, ``platform``,
``/etc/os-release``, ``/proc/net/if_inet6``, ``/sys/class/net`` and the
``SIOCGIF*`` ioctls on Linux). Gathering them reads files, so
:func:`collect_system` is synchronous and callers run it in a worker thread.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
import platform
import socket
import struct
import sys
from typing import Any, Final

from core.resources.entity import (
    ENTITY_CLASS_AGENT,
    MANAGED_BY_LABEL,
    Deregistration,
    Entity,
    Network,
    NetworkInterface,
    System,
    entity_subscription,
)
from core.resources.meta import ObjectMeta
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

_ARCH: Final = {
    "x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
    "i386": "386", "i486": "386", "i586": "386", "i686": "386", "x86": "386",
    "armv6l": "arm", "armv7l": "arm", "armv8l": "arm", "ppc64le": "ppc64le", "ppc64": "ppc64",
    "s390x": "s390x", "mips": "mips", "mipsel": "mipsle", "mips64": "mips64", "riscv64": "riscv64",
}
_FAMILIES: Final = {
    "debian": "debian", "ubuntu": "debian", "linuxmint": "debian", "raspbian": "debian", "pop": "debian",
    "rhel": "rhel", "centos": "rhel", "rocky": "rhel", "almalinux": "rhel", "ol": "rhel", "amzn": "rhel",
    "scientific": "rhel", "fedora": "fedora", "opensuse": "suse", "opensuse-leap": "suse", "sles": "suse",
    "arch": "arch", "manjaro": "arch", "alpine": "alpine", "gentoo": "gentoo",
}


# ---------------------------------------------------------------------------------
# System facts
# ---------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except OSError:
        return ""


def _os_release() -> dict[str, str]:
    out: dict[str, str] = {}
    for line in (_read("/etc/os-release") or _read("/usr/lib/os-release")).splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"').strip("'")
    return out


def _platform() -> tuple[str, str, str]:
    """(platform, platform_family, platform_version) the way gopsutil names them."""
    if sys.platform.startswith("linux"):
        release = _os_release()
        ident = release.get("ID", "").lower()
        family = _FAMILIES.get(ident, "")
        if not family:
            for like in release.get("ID_LIKE", "").lower().split():
                if like in _FAMILIES:
                    family = _FAMILIES[like]
                    break
        version = release.get("VERSION_ID", "")
        if ident == "debian":
            version = _read("/etc/debian_version").strip() or version
        return ident, family, version
    if sys.platform == "darwin":
        return "darwin", "Standalone Workstation", platform.mac_ver()[0]
    return platform.system().lower(), "", platform.release()


def _arch() -> tuple[str, int]:
    machine = platform.machine().lower()
    arm_version = 0
    if machine.startswith("armv") and machine[4:5].isdigit():
        arm_version = int(machine[4])
    return _ARCH.get(machine, machine), arm_version


def _ipv4(name: str) -> str | None:
    """The primary IPv4 address of ``name`` as ``a.b.c.d/prefix`` (Linux ioctls)."""
    if not sys.platform.startswith("linux"):
        return None
    import fcntl

    packed = struct.pack("256s", name.encode()[:15])
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            addr = fcntl.ioctl(s.fileno(), 0x8915, packed)  # SIOCGIFADDR
            mask = fcntl.ioctl(s.fileno(), 0x891B, packed)  # SIOCGIFNETMASK
    except OSError:
        return None
    ip = socket.inet_ntoa(addr[20:24])
    prefix = ipaddress.IPv4Network(f"0.0.0.0/{socket.inet_ntoa(mask[20:24])}").prefixlen
    return f"{ip}/{prefix}"


def _ipv6_by_interface() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in _read("/proc/net/if_inet6").splitlines():
        parts = line.split()
        if len(parts) < 6:
            continue
        try:
            addr = ipaddress.IPv6Address(int(parts[0], 16))
            prefix = int(parts[2], 16)
        except ValueError:
            continue
        out.setdefault(parts[5], []).append(f"{addr}/{prefix}")
    return out


def _interfaces() -> list[NetworkInterface]:
    try:
        names = [name for _, name in socket.if_nameindex()]
    except OSError:
        return []
    v6 = _ipv6_by_interface()
    out: list[NetworkInterface] = []
    for name in names:
        addresses = [a for a in [_ipv4(name)] if a] + v6.get(name, [])
        mac = _read(f"/sys/class/net/{name}/address").strip()
        if mac == "00:00:00:00:00:00":
            mac = ""
        out.append(NetworkInterface(name=name, mac=mac, addresses=addresses or None))
    return out


def collect_system(*, strip_networks: bool = False) -> System:
    """Gather this host's facts now. Blocking (reads small files): run it in a thread.

    Never raises: a fact that cannot be read is left empty.
    """
    ident, family, version = _platform()
    arch, arm_version = _arch()
    interfaces = [] if strip_networks else _interfaces()
    return System(
        hostname=socket.gethostname(),
        os=sys.platform if not sys.platform.startswith("linux") else "linux",
        platform=ident,
        platform_family=family,
        platform_version=version,
        arch=arch,
        arm_version=arm_version,
        network=Network(interfaces=interfaces or None),
        libc_type="glibc" if platform.libc_ver()[0] == "glibc" else "",
        processes=None,
    )


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
