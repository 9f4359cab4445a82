"""The import structure of the core: no import cycle in ``dfabench/`` (issue 9).

Two checks, because each misses what the other sees:

- a **static** one: every module under ``dfabench/`` is parsed with :mod:`ast` and every import of a
  dfabench module is collected, at module level *and inside functions* (a function-level import that
  dodges a cycle at import time is still a cycle in the design: the two modules cannot be understood or
  moved apart). ``from dfabench.x import y`` where ``y`` is a submodule is an edge to ``dfabench.x.y``;
  imports under ``if TYPE_CHECKING:`` are not executed and are left out. Every strongly connected
  component of more than one module is reported with one concrete cycle through it;
- a **dynamic** one: each module imported alone in a fresh interpreter (one subprocess per module, run
  in parallel), so an import that only works in a lucky order fails here.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import dfabench

PACKAGE_ROOT = Path(dfabench.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def core_modules() -> dict[str, Path]:
    """Every module of the dfabench package: dotted name -> file."""
    return {_module_name(p): p for p in sorted(PACKAGE_ROOT.rglob("*.py")) if "__pycache__" not in p.parts}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool, known: set[str]) -> set[str]:
    """The dfabench modules that ``module`` imports anywhere in its body."""
    found: set[str] = set()
    package = module if is_package else module.rpartition(".")[0]

    def add(name: str) -> None:
        # the deepest known module the name refers to (``dfabench.x.attr`` -> ``dfabench.x``)
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name:
            found.add(name)

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "dfabench":
                    add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] == "dfabench":
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    add(sub if sub in known else target)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    found.discard(module)
    return found


def import_graph() -> dict[str, set[str]]:
    """dfabench module -> the dfabench modules it imports (static, module- and function-level)."""
    modules = core_modules()
    known = set(modules)
    return {name: _imports(ast.parse(path.read_text(encoding="utf-8"), str(path)), name,
                           path.name == "__init__.py", known)
            for name, path in modules.items()}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm: the components of more than one module (each one holds a cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def connect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return out


def a_cycle(graph: dict[str, set[str]], component: list[str]) -> list[str]:
    """One concrete cycle inside a strongly connected component: the shortest one back to its first module."""
    members = set(component)
    start = component[0]
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle in {component}")  # pragma: no cover - Tarjan's components have one


def describe_cycles(graph: dict[str, set[str]]) -> list[str]:
    return [" -> ".join(a_cycle(graph, c)) + f"   (component: {', '.join(c)})" for c in strongly_connected(graph)]


# ---------------------------------------------------------------------- the checker checks itself


def test_the_static_check_sees_function_level_and_submodule_imports(tmp_path: Path) -> None:
    known = {"dfabench", "dfabench.a", "dfabench.b", "dfabench.pkg", "dfabench.pkg.c"}
    source = ("import os\nfrom typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import dfabench.pkg.c\n"
              "def f():\n    from dfabench import b\n    from dfabench.pkg import c as _c\n"
              "    from . import __version__\n")
    assert _imports(ast.parse(source), "dfabench.a", False, known) == {"dfabench.b", "dfabench.pkg.c", "dfabench"}
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert strongly_connected(graph) == [["a", "b", "c"]]
    assert a_cycle(graph, ["a", "b", "c"]) == ["a", "b", "c", "a"]


# ---------------------------------------------------------------------- the checks


def test_no_import_cycle_in_the_core_static() -> None:
    """Any cycle left is printed as ``a -> b -> ... -> a``: that is the one to break."""
    cycles = describe_cycles(import_graph())
    assert not cycles, "import cycles in dfabench/ (module- or function-level imports):\n  " + "\n  ".join(cycles)


def test_each_module_imports_alone_in_a_fresh_interpreter() -> None:
    # a ``__main__`` module is a program (importing it runs the command line): checked statically only
    modules = sorted(name for name in core_modules() if not name.endswith(".__main__"))

    def try_import(name: str) -> tuple[str, int, str]:
        proc = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, timeout=120)
        return name, proc.returncode, (proc.stderr.strip().splitlines() or [""])[-1]

    with ThreadPoolExecutor(max_workers=max(4, (os.cpu_count() or 2) * 2)) as pool:
        results = list(pool.map(try_import, modules))
    failed = [f"{name}: {last}" for name, code, last in results if code != 0]
    assert not failed, "modules that do not import alone:\n  " + "\n  ".join(failed)


@pytest.mark.parametrize("module", ["dfabench.tasks", "dfabench.vocab"])
def test_pure_modules_import_no_registry(module: str) -> None:
    """The task spec and the vocabulary are pure data: they never reach the plugin manager."""
    graph = import_graph()
    seen, todo = set(), [module]
    while todo:
        for dep in graph.get(todo.pop(), ()):
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    assert "dfabench.plugins" not in seen and "dfabench.builtin" not in seen, sorted(seen)


def test_labels_and_categories_are_defined_once_in_the_vocabulary() -> None:
    """No module but :mod:`dfabench.vocab` spells out the category or label list (a tuple, list or set
    literal holding all four categories, or both labels and nothing else)."""
    from dfabench import parsing, vocab
    from dfabench.data import manifest
    from dfabench.metrics import classification

    assert manifest.CATEGORIES is parsing.CATEGORIES is classification.CATEGORIES is vocab.CATEGORIES
    assert manifest.LABELS is classification.DETECTION_LABELS is vocab.LABELS
    assert parsing.TECHNIQUE_CATEGORY is vocab.TECHNIQUE_CATEGORY
    spelled = []
    for name, path in core_modules().items():
        if name == "dfabench.vocab":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                strings = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
                if {"FS", "FR", "FE", "EFS"} <= set(strings) or (len(node.elts) == 2
                                                                 and sorted(strings) == ["fake", "real"]):
                    spelled.append(f"{name}:{node.lineno}")
    assert not spelled, f"category / label lists outside dfabench.vocab: {spelled}"
