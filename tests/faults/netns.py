"""Separate hosts for backend members: network namespaces on one bridge, with cuttable links.

Each host is a network namespace with one veth link to a bridge in the
caller's namespace, which also holds the address clients use, so clients
reach every member whatever is cut between members. Addresses are
link-local (169.254.0.0/16): they are never routed off the bridge.

A cut from host A to host B makes A's packets for B vanish silently, as on a
real network that drops them: A's neighbour entry for B is pinned to a MAC
address no interface has (``ip neigh replace ... nud permanent``). This needs
no traffic-control modules, leaves B -> A untouched (one-way loss) and is
undone by deleting the entry (``heal``). A full partition is a cut in both
directions between every pair across the split.

Everything is made by :func:`open_network` and removed on exit, even after a
failure; names carry the creating process's id, so runs never collide, and
leftovers of a killed run are removed by the next one with the same id.
Needs root (``ip netns``), as ``make test`` runs.
"""

from __future__ import annotations

import os
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator, Sequence

__all__ = ["Host", "Network", "open_network", "NOWHERE_MAC"]

#: A locally administered unicast MAC that no interface here has: frames sent to it go nowhere.
NOWHERE_MAC = "02:00:5e:00:53:01"
#: The clients' address on the bridge; hosts get .11, .12, ...
SUBNET = "169.254.77"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, timeout=20, check=check)


@dataclass(frozen=True)
class Host:
    name: str
    namespace: str
    address: str
    veth: str  # the bridge side, in the caller's namespace

    @property
    def exec_prefix(self) -> list[str]:
        """Run a command inside this host: ``[*host.exec_prefix, program, ...]`` (the same pid)."""
        return ["ip", "netns", "exec", self.namespace]


@dataclass
class Network:
    bridge: str
    hosts: list[Host]
    cuts: set[tuple[str, str]] = field(default_factory=set)

    def host(self, name: str) -> Host:
        return next(h for h in self.hosts if h.name == name)

    def cut(self, source: str, target: str) -> None:
        """Drop every packet ``source`` sends to ``target`` (one way)."""
        a, b = self.host(source), self.host(target)
        _ip("-n", a.namespace, "neigh", "replace", b.address, "lladdr", NOWHERE_MAC, "dev", "eth0",
            "nud", "permanent")
        self.cuts.add((source, target))

    def mend(self, source: str, target: str) -> None:
        a, b = self.host(source), self.host(target)
        _ip("-n", a.namespace, "neigh", "del", b.address, "dev", "eth0", check=False)
        self.cuts.discard((source, target))

    def partition(self, *groups: Sequence[str]) -> None:
        """Cut both ways between hosts in different groups; hosts in no group keep their links."""
        for i, group in enumerate(groups):
            for other in groups[i + 1:]:
                for a in group:
                    for b in other:
                        self.cut(a, b)
                        self.cut(b, a)

    def isolate(self, name: str) -> None:
        """Cut ``name`` off from every other host (clients still reach it)."""
        self.partition([name], [h.name for h in self.hosts if h.name != name])

    def heal(self) -> None:
        for source, target in sorted(self.cuts):
            self.mend(source, target)


def _remove(bridge: str, namespaces: Sequence[str], veths: Sequence[str]) -> None:
    for veth in veths:
        _ip("link", "del", veth, check=False)
    for ns in namespaces:
        _ip("netns", "del", ns, check=False)
    _ip("link", "del", bridge, check=False)


@contextmanager
def open_network(names: Sequence[str], *, tag: str | None = None) -> Iterator[Network]:
    """A bridge and one namespace per name; removed on exit."""
    if os.geteuid() != 0:
        raise RuntimeError("network namespaces need root (run as make test does)")
    tag = tag or str(os.getpid() % 100000)
    bridge = f"sfb{tag}"
    hosts = [Host(name, f"sensu-fault-{tag}-{i}", f"{SUBNET}.{11 + i}", f"sfv{tag}x{i}")
             for i, name in enumerate(names)]
    _remove(bridge, [h.namespace for h in hosts], [h.veth for h in hosts])  # a killed run's leftovers
    try:
        _ip("link", "add", bridge, "type", "bridge")
        _ip("addr", "add", f"{SUBNET}.1/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        for host in hosts:
            _ip("netns", "add", host.namespace)
            _ip("link", "add", host.veth, "type", "veth", "peer", "name", f"{host.veth}p")
            _ip("link", "set", f"{host.veth}p", "netns", host.namespace)
            _ip("link", "set", host.veth, "master", bridge, "up")
            _ip("-n", host.namespace, "link", "set", f"{host.veth}p", "name", "eth0")
            _ip("-n", host.namespace, "addr", "add", f"{host.address}/24", "dev", "eth0")
            _ip("-n", host.namespace, "link", "set", "eth0", "up")
            _ip("-n", host.namespace, "link", "set", "lo", "up")
        yield Network(bridge, hosts)
    finally:
        _remove(bridge, [h.namespace for h in hosts], [h.veth for h in hosts])
