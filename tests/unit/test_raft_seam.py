"""Only cluster/raft/ imports pysyncobj, and nothing else reaches for its ``SyncObj``.

pysyncobj is patched in many places (cluster/raft/compat.py lists every name
touched); the pinned-version check covers them only if no other module uses
pysyncobj on its own. Imports are read from each module's syntax tree, so a
docstring that mentions pysyncobj is fine and an import inside a function is
not.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
#: The packages that must reach pysyncobj only through cluster/raft/.
GUARDED = ("cluster", "backend", "api", "core", "agent")
SEAM = ROOT / "cluster" / "raft"


def _modules(*, seam: bool) -> list[Path]:
    """The guarded modules outside the seam, or (``seam``) the seam's own modules."""
    if seam:
        return sorted(SEAM.rglob("*.py"))
    found: list[Path] = []
    for package in GUARDED:
        found += [p for p in (ROOT / package).rglob("*.py") if SEAM not in p.parents]
    return sorted(found)


def _is_pysyncobj(name: str | None) -> bool:
    return name is not None and (name == "pysyncobj" or name.startswith("pysyncobj."))


def _pysyncobj_imports(path: Path) -> list[str]:
    """``path:line`` of every import of pysyncobj, including ``importlib.import_module``/``__import__`` of a literal."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(ROOT)
    hits: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            hits += [f"{where}:{node.lineno} import {a.name}" for a in node.names if _is_pysyncobj(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and _is_pysyncobj(node.module):
                hits.append(f"{where}:{node.lineno} from {node.module} import ...")
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in ("import_module", "__import__") and _is_pysyncobj(str(node.args[0].value)):
                hits.append(f"{where}:{node.lineno} {name}({node.args[0].value!r})")
    return hits


#: Name-mangled attributes of pysyncobj's classes (``_SyncObj__raftLog`` ...).
_PYSYNCOBJ_PRIVATE = ("_SyncObj__", "_SyncObjConsumer__", "_TcpConnection__", "_FileJournal__", "_ResizableFile__",
                      "_Serializer__")


def _syncobj_reaches(path: Path) -> list[str]:
    """``path:line`` of every attribute that is the seam's ``SyncObj`` or a name-mangled pysyncobj internal."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    where = path.relative_to(ROOT)
    return [f"{where}:{node.lineno} .{node.attr}" for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and (node.attr in ("syncobj", "_syncobj") or node.attr.startswith(_PYSYNCOBJ_PRIVATE))]


def test_only_cluster_raft_imports_pysyncobj() -> None:
    modules = _modules(seam=False)
    assert len(modules) > 100  # the walk found the code base
    offenders = [hit for path in modules for hit in _pysyncobj_imports(path)]
    assert offenders == [], "import pysyncobj only in cluster/raft/:\n" + "\n".join(offenders)


def test_the_check_sees_the_seams_own_imports() -> None:
    """The scan is not vacuous: the seam itself imports pysyncobj in the ways the scan looks for."""
    seen = {hit.split(" ", 1)[0].rsplit(":", 1)[0] for path in _modules(seam=True) for hit in _pysyncobj_imports(path)}
    assert {"cluster/raft/node.py", "cluster/raft/compat.py", "cluster/raft/journal.py",
            "cluster/raft/transport.py", "cluster/raft/consumer.py"} <= seen


def test_nothing_outside_cluster_raft_touches_the_syncobj() -> None:
    offenders = [hit for path in _modules(seam=False) for hit in _syncobj_reaches(path)]
    assert offenders == [], "ask cluster.store.Store (is_leader, leader, members, ...) instead:\n" + "\n".join(offenders)
