import gzip as _gzip
from typing import Any, Callable, Protocol

from .journal import Entry
from .node import Node

#: A full dump: (consumers' data, last applied entry, the entry before it, the cluster's nodes).
Dump = tuple[Any, Entry, Entry, set[Node]]

class _Gzip(Protocol):
    """What the serializer uses of ``gzip`` (cluster/raft/journal.py replaces it)."""

    def GzipFile(self, filename: Any = ..., mode: str | None = ..., compresslevel: int = ...,
                 fileobj: Any = ..., mtime: float | None = ...) -> _gzip.GzipFile: ...

class _Processes(Protocol):
    """What the serializer's dump writer uses of ``os`` (cluster/raft/journal.py replaces it)."""

    def fork(self) -> int: ...
    def waitpid(self, pid: int, options: int) -> tuple[int, int]: ...

gzip: _Gzip
os: _Processes

class Serializer:
    _Serializer__fileName: str | None
    _Serializer__pid: int
    _Serializer__currentID: int
    # methods that cluster/raft replaces on an instance, so declared as attributes
    serialize: Callable[[Dump, int], None]
    deserialize: Callable[[], Dump]
