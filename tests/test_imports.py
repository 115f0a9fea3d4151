"""The import graph of ``nas``: no cycles, leaves that stay leaves, and every module
importable first in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import nas

PKG = Path(nas.__file__).parent
# None: latency_coeffs lives in nas.latency, which uses nas.enumerate (estimate_range
# runs the scoring kernel) and is never used by it.
KNOWN_CYCLES: list[set[str]] = []


def _modules() -> dict[str, Path]:
    """Every module of the package: dotted name -> file (packages by __init__.py)."""
    out = {}
    for path in sorted(PKG.rglob("*.py")):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING"
    )


def _imports(tree: ast.AST):
    """Every import statement, at any depth (function-level ones too: they run), but
    not under ``if TYPE_CHECKING:`` (they never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (n for s in node.orelse for n in _imports_of(s))
            continue
        yield from _imports_of(node)


def _imports_of(node: ast.AST):
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        yield node
    else:
        yield from _imports(node)


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of the package it imports (``from pkg import name`` counts
    as importing ``pkg.name`` when that is a module, else ``pkg`` itself). A module's
    own ancestors are left out: Python imports them before the module anyway."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in _imports(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                targets = [
                    f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base for a in node.names
                ]
            for t in targets:  # importing a.b.c runs a.b's __init__ too
                parts = t.split(".")
                for k in range(1, len(parts) + 1):
                    dep = ".".join(parts[:k])
                    if dep in mods and dep != name and not name.startswith(dep + "."):
                        deps.add(dep)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected components of more than one module: each is a set of
    modules that import each other, directly or through the others."""

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reachable = {m: reach(m) for m in graph}
    comps = {frozenset(m2 for m2 in reachable[m] if m in reachable[m2]) for m in graph}
    return sorted((set(c) for c in comps if len(c) > 1), key=sorted)


def test_the_walk_finds_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert _cycles(graph) == [{"a", "b", "c"}]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert "nas.space" in graph and "nas.ops._reference" in graph  # the walk sees them
    assert "nas.ops" in graph["nas.space"]  # space.decode's function-level import counts
    cycles = [c for c in _cycles(graph) if c not in KNOWN_CYCLES]
    assert not cycles, "modules importing each other: " + "; ".join(map(str, map(sorted, cycles)))


def test_leaves_import_nothing_from_nas():
    # _native dispatches to references it is given; optypes is what everyone shares
    graph = import_graph()
    for leaf in ("nas._native", "nas.optypes", "nas._io"):
        assert graph[leaf] == set(), (leaf, graph[leaf])
    # the references depend on op types only (the pools live there, signal_ops imports them)
    assert graph["nas.ops._reference"] == {"nas.optypes"}


def test_every_module_imports_first_in_a_fresh_interpreter():
    names = sorted(_modules())
    code = (
        "import importlib, sys, warnings\n"
        "import torch\n"
        "warnings.simplefilter('ignore')\n"  # re-registering the fakes warns
        f"for name in {names!r}:\n"
        "    for k in [k for k in sys.modules if k.split('.')[0] == 'nas' and k != 'nas._C']:\n"
        "        del sys.modules[k]\n"
        "    importlib.import_module(name)\n"
        "print('ok', len(sys.modules) > 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "ok True" in r.stdout, r.stderr[-3000:]
