"""This host's system facts (``entity.system``), gathered the way the Go agent does.

Shared because two programs need one definition: the agent sends them in every
entity, and the backend matches runtime asset filters (``entity.system.os``...)
against its own host when it runs a handler's assets.

Facts come from the standard library only (``socket``, ``platform``,
``/etc/os-release``, ``/proc/net/if_inet6``, ``/sys/class/net`` and the
``SIOCGIF*`` ioctls on Linux). Gathering them reads files, so
:func:`collect_system` is synchronous and callers run it in a worker thread.
"""

from __future__ import annotations

import ipaddress
import platform
import socket
import struct
import sys
from typing import Final

from core.resources.entity import Network, NetworkInterface, System

__all__ = ["collect_system"]

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
