"""The import graph of ``tessera/``: no cycles, and no import from a lower layer into a higher one.

Every ``import`` counts: at the top of a module, inside a function (lazy) and under ``TYPE_CHECKING``.
The layers are those of ``ARCHITECTURE.md``; a module belongs to the longest prefix listed in ``LAYERS``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import REPO

LAYERS: dict[str, int] = {
    # 0: the root helpers, types, errors and config that every layer uses
    "tessera._version": 0,
    "tessera._async": 0,
    "tessera._words": 0,
    "tessera._system": 0,
    "tessera._imports": 0,
    "tessera._hops": 0,
    "tessera._progress": 0,
    "tessera._output": 0,
    "tessera._config_sections": 0,
    "tessera.errors": 0,
    "tessera.types": 0,
    "tessera.config": 0,
    "tessera.events": 0,
    # 1: one clock for a run; test doubles that need nothing above the root
    "tessera.tracing": 1,
    "tessera.testing": 1,
    # 2: model backends and the pool; Ray's pool builds on it
    "tessera.models": 2,
    "tessera.distributed": 3,
    # 4: what specialists use: tools, memory, MCP clients
    "tessera.tools": 4,
    "tessera.memory": 4,
    "tessera.mcp": 4,
    # 5..7: specialists, the state machine, the team
    "tessera.agents": 5,
    "tessera.graphs": 6,
    "tessera.team": 7,
    # 8, 9: the shells over a team: servers and benchmarks, then the command line over all of them
    "tessera.serve": 8,
    "tessera.mcp.server": 8,
    "tessera.bench": 8,
    "tessera.cli": 9,
    # the package's face imports lazily from every layer, and nothing imports it
    "tessera": 10,
}

KNOWN_CYCLES: list[set[str]] = []


def import_graph(package: Path) -> dict[str, set[str]]:
    """``{module: modules it imports}`` for every module under ``package`` (imports of other packages left out)."""
    modules: dict[str, Path] = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str | None] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(known(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*anchor, *([node.module] if node.module else [])])
                for alias in node.names:
                    full = f"{base}.{alias.name}"
                    targets.add(full if full in modules else known(base))
        graph[name] = {t for t in targets if t is not None and t != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected group of two or more modules, as one cycle through it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = set()
            while True:
                member = stack.pop()
                group.add(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_cycle_in(graph, group) for group in groups]


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A path ``a -> b -> ... -> a`` inside one strongly connected ``group``."""
    start = min(group)
    paths = {start: [start]}
    todo = [start]
    while todo:
        node = todo.pop(0)
        for nxt in sorted(graph[node] & group):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                todo.append(nxt)
    raise AssertionError(f"no cycle in {group}")


def layer_of(module: str, layers: dict[str, int]) -> int:
    """The layer of the longest prefix of ``module`` listed in ``layers``."""
    name = module
    while name not in layers:
        if "." not in name:
            raise KeyError(f"{module}: in no layer; add it to LAYERS (and to ARCHITECTURE.md)")
        name = name.rpartition(".")[0]
    return layers[name]


def upward_imports(graph: dict[str, set[str]], layers: dict[str, int]) -> list[str]:
    """``a (layer) -> b (layer)`` for each import of a higher layer from a lower one."""
    return [
        f"{module} ({layer_of(module, layers)}) -> {target} ({layer_of(target, layers)})"
        for module in sorted(graph)
        for target in sorted(graph[module])
        if layer_of(target, layers) > layer_of(module, layers)
    ]


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(REPO / "tessera")


def test_tessera_has_no_import_cycles(graph: dict[str, set[str]]) -> None:
    cycles = [c for c in find_cycles(graph) if set(c) not in KNOWN_CYCLES]
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_known_cycles_are_still_there(graph: dict[str, set[str]]) -> None:
    """An entry of ``KNOWN_CYCLES`` that is fixed must leave the list."""
    found = [set(c) for c in find_cycles(graph)]
    assert all(known in found for known in KNOWN_CYCLES)


def test_no_layer_imports_a_higher_one(graph: dict[str, set[str]]) -> None:
    upward = upward_imports(graph, LAYERS)
    assert not upward, "imports from a lower layer into a higher one:\n" + "\n".join(upward)


def test_every_module_has_a_layer(graph: dict[str, set[str]]) -> None:
    for module in graph:
        layer_of(module, LAYERS)


def write_package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "pkg"


def test_the_scan_finds_a_cycle_closed_by_a_lazy_import(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/a.py": "from pkg.b import f\n",
            "pkg/b.py": "def f():\n    from pkg import c\n",
            "pkg/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import a\n",
            "pkg/d.py": "import pkg.a\n",
        },
    )
    graph = import_graph(package)
    assert graph["pkg.d"] == {"pkg.a"}
    assert find_cycles(graph) == [["pkg.a", "pkg.b", "pkg.c", "pkg.a"]]


def test_the_scan_finds_an_upward_import(tmp_path: Path) -> None:
    package = write_package(
        tmp_path,
        {
            "pkg/__init__.py": "",
            "pkg/low/__init__.py": "",
            "pkg/low/x.py": "def f():\n    from ..high.y import g\n",
            "pkg/high/__init__.py": "",
            "pkg/high/y.py": "from pkg.low import x\n",
        },
    )
    layers = {"pkg": 9, "pkg.low": 0, "pkg.high": 1}
    assert upward_imports(import_graph(package), layers) == ["pkg.low.x (0) -> pkg.high.y (1)"]
