"""The package rules of docs/architecture.md, checked on the source.

Why a test: a rule that nothing checks erodes one convenient import at a time
(the agent once imported 29 backend files because the shared model lived in
``backend/``). The imports are read with :mod:`ast`, not by importing the
modules, so a rule is checked even where a module would import lazily inside a
function, and relative imports are resolved to the module they name.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUR_PACKAGES = ("core", "cluster", "backend", "api", "agent")

# The composition root: it builds the store, the daemons and the API and wires
# them together, so it alone may import both backend daemons and api.
COMPOSITION_ROOT = {"backend.node"}

# Which of our top-level packages each may import (itself always).
ALLOWED: dict[str, set[str]] = {
    "core": {"cluster"},  # the store's interface only (see CORE_MAY_USE_CLUSTER); never a daemon or the API
    "cluster": set(),  # keys and bytes: it knows no Sensu type
    "agent": {"core"},
    "backend": {"core", "cluster"},  # daemons: never the REST layer
    "api": {"core", "cluster"},  # the REST layer: never a daemon
}

# core reaches the store only through these public modules, never Raft itself.
CORE_MAY_USE_CLUSTER = {"cluster", "cluster.store", "cluster.codec", "cluster.errors"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    """Every module of our packages, by dotted name."""
    found: dict[str, Path] = {}
    for package in OUR_PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found[_module_name(path)] = path
    return found


def _target(name: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` in module ``name`` names (relative levels resolved)."""
    if not node.level:
        return node.module or ""
    base = name.split(".")
    # from . import x in a package's __init__ means the package itself
    base = base[: len(base) - node.level + (1 if is_package else 0)]
    return ".".join(base + ([node.module] if node.module else []))


@cache
def imports_of(name: str) -> frozenset[str]:
    """The dotted names a module imports (absolute, with relative imports resolved)."""
    path = modules()[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _target(name, is_package, node)
            out.add(target)
            # "from package import module" imports the module too
            out.update(f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules())
    return frozenset(out)


def _ours(target: str) -> bool:
    return target.split(".")[0] in OUR_PACKAGES


def violations() -> list[str]:
    found = []
    for name in modules():
        if name in COMPOSITION_ROOT:
            continue
        package = name.split(".")[0]
        for target in sorted(imports_of(name)):
            top = target.split(".")[0]
            if not _ours(target) or top == package:
                continue
            if top not in ALLOWED[package]:
                found.append(f"{name} imports {target} ({package}/ may not import {top}/)")
            elif package == "core" and top == "cluster" and target not in CORE_MAY_USE_CLUSTER:
                found.append(f"{name} imports {target} (core/ uses only the store's interface: "
                             f"{', '.join(sorted(CORE_MAY_USE_CLUSTER))})")
    return found


def test_packages_import_only_what_the_architecture_allows() -> None:
    assert violations() == []


def closure(start: str) -> set[str]:
    """Our modules reachable from ``start`` by imports (what loading it loads)."""
    seen: set[str] = set()
    todo = [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in modules():
            continue
        seen.add(name)
        todo.extend(t for t in imports_of(name) if _ours(t))
        # importing a.b.c runs a/__init__ and a/b/__init__ first
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
    return seen


@pytest.mark.parametrize("entry", ["agent.cli", "agent.agent"])
def test_the_agent_loads_nothing_of_the_backend_api_or_store(entry: str) -> None:
    loaded = closure(entry)
    assert entry in loaded
    assert sorted(m for m in loaded if m.split(".")[0] not in {"agent", "core"}) == []


def _runtime_import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs at some point: at load or inside a function, but not
    under ``if TYPE_CHECKING`` (only the type checker follows those)."""
    found: list[ast.Import | ast.ImportFrom] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            todo.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


@cache
def runtime_imports(name: str) -> frozenset[str]:
    """Our modules that ``name`` imports when it runs, at load time or later (lazily, in a
    function). ``from package import module`` counts as the module only (the package is already
    loading when a submodule asks for a sibling)."""
    path = modules()[name]
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    out: set[str] = set()
    for node in _runtime_import_nodes(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
            continue
        target = _target(name, is_package, node)
        submodules = {f"{target}.{alias.name}" for alias in node.names} & modules().keys()
        out.update(submodules if len(submodules) == len(node.names) else {target})
    return frozenset(t for t in out if t in modules())


def import_cycles() -> list[list[str]]:
    """Strongly connected groups of modules that import each other (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in runtime_imports(v):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for name in modules():
        if name not in index:
            visit(name)
    return cycles


def test_no_import_circles() -> None:
    """A circle (it was ``api.app -> api.routes -> api.routes.auth -> api.app``, closed by an import
    inside a function) works only as long as each module happens to define what the others need
    before it imports them, and says two modules are really one."""
    assert import_cycles() == []


def test_the_checker_sees_relative_and_lazy_imports() -> None:
    """The rules are only as good as the import reader: check it on known modules."""
    assert "core.resources" in imports_of("core.resources.entity") or any(
        t.startswith("core.resources.") for t in imports_of("core.resources.entity"))
    assert any(t.startswith("api") for t in imports_of("backend.node"))  # the composition root
