"""The package's dependencies flow one way: each sub-package imports only those below it.

Read from the source with ``ast`` (every ``import`` and ``from ... import``, at module
level or inside functions), so a lazy import inside a function counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import mollifier

ROOT = Path(mollifier.__file__).parent

ALLOWED: dict[str, set[str]] = {
    "runtime": set(),
    "core": set(),
    "plotting": {"runtime"},
    "backbones": {"core"},
    "network_free": {"core"},
    "distributed": {"core", "runtime"},
    "inverse": {"core", "backbones", "distributed", "network_free", "runtime", "plotting"},
    "problems": {"core", "inverse", "runtime"},
    "imaging": {"core", "problems", "runtime"},
    "chromatin": {"core", "inverse", "network_free", "problems", "imaging", "distributed", "runtime"},
    "bench": {"core", "backbones", "inverse", "network_free", "problems", "distributed", "runtime"},
    "cli": {"core", "backbones", "inverse", "network_free", "problems", "imaging", "chromatin", "distributed", "bench",
            "plotting", "runtime"},
}
"""What each sub-package may import from the others (``data`` holds files only; the
top-level ``mollifier/__init__.py`` re-exports the core)."""


def _package_of(path: Path) -> str | None:
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else None


def _imported_packages(path: Path) -> set[tuple[str, int]]:
    tree = ast.parse(path.read_text(), filename=str(path))
    module_parts = path.relative_to(ROOT).with_suffix("").parts
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = list(module_parts[: len(module_parts) - node.level])
                target = base + (node.module.split(".") if node.module else [])
                if not target:  # "from .. import x" at the top level
                    target = [alias.name for alias in node.names][:1]
            elif node.module and node.module.split(".")[0] == "mollifier":
                target = node.module.split(".")[1:] or [alias.name for alias in node.names][:1]
            else:
                continue
            if target:
                found.add((target[0], node.lineno))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "mollifier" and len(parts) > 1:
                    found.add((parts[1], node.lineno))
    return found


SOURCES = sorted(p for p in ROOT.rglob("*.py") if _package_of(p) is not None)


def test_every_package_is_in_the_table():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages - {"data"} == set(ALLOWED), "add the new package to ALLOWED, with what it may import"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_flow_down(path: Path):
    own = _package_of(path)
    bad = sorted(
        (pkg, line) for pkg, line in _imported_packages(path)
        if pkg != own and pkg in ALLOWED and pkg not in ALLOWED[own]
    )
    assert not bad, f"{path.relative_to(ROOT)} imports {bad} (package, line); {own} may import only {sorted(ALLOWED[own])}"


def test_no_import_cycles_between_packages():
    # ALLOWED itself must be acyclic: then no chain of imports can loop between packages
    order: list[str] = []
    remaining = {k: set(v) for k, v in ALLOWED.items()}
    while remaining:
        free = sorted(k for k, deps in remaining.items() if not deps - set(order))
        assert free, f"the allowed imports form a cycle among {sorted(remaining)}"
        order.extend(free)
        for k in free:
            del remaining[k]


def test_no_import_cycles_between_modules():
    """Module-level imports (the ones executed at import time) form no cycle."""
    graph: dict[str, set[str]] = {}
    modules = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in ROOT.rglob("*.py")}
    for name, path in modules.items():
        tree = ast.parse(path.read_text())
        deps = set()
        parts = name.split(".")
        package = parts if path.name == "__init__.py" else parts[:-1]
        if path.name == "__init__.py":
            package = parts[:-1]
        for node in tree.body:  # module level only
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[: len(package) - node.level + 1] if node.level > 1 else package
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                for alias in node.names:
                    full = f"{target}.{alias.name}" if target else alias.name
                    hit = full if full in modules else (target if target in modules else f"{target}.__init__")
                    if hit in modules and hit != name:
                        deps.add(hit)
        graph[name] = deps
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):] + [dep]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
