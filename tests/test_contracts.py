"""Rules that cut across packages: one-way imports, module size, keyword-only public data."""

from __future__ import annotations

import ast
import dataclasses
import importlib
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tether"

#: What each package may import of ours (ARCHITECTURE.md's arrows).
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "store": {"core"},
    "models": {"core"},
    "tools": {"core"},
    "sandbox": {"core", "tools"},
    "net": {"core", "tools"},
    "memory": {"core", "store", "models", "tools"},
    "runtime": {"core", "store", "models", "tools", "memory"},
    "observe": {"core", "store", "models"},
    "orchestration": {"core", "store", "models", "tools", "memory", "sandbox", "net",
                      "runtime"},
    "cli": {"core", "store", "models", "tools", "memory", "runtime", "observe", "orchestration"},
    "testing": set(),
}
PACKAGES = sorted(ALLOWED)


def _tether_imports(path: Path, package: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 2 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 0 and node.module and node.module.startswith("tether."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("tether.")}
    return found - {package}


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_point_one_way(package: str) -> None:
    for path in (SRC / package).rglob("*.py"):
        bad = _tether_imports(path, package) - ALLOWED[package]
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"


def test_modules_stay_small() -> None:
    for path in SRC.rglob("*.py"):
        lines = len(path.read_text().splitlines())
        assert lines <= 800, f"{path.relative_to(SRC)} has {lines} lines; split it by concept"


@pytest.mark.parametrize("package", PACKAGES)
def test_public_dataclasses_are_keyword_only(package: str) -> None:
    module = importlib.import_module(f"tether.{package}")
    for name in module.__all__:
        value = getattr(module, name)
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            fields = [f for f in dataclasses.fields(value) if f.init]
            assert all(f.kw_only for f in fields), f"tether.{package}.{name}"


# --- the runtime's own modules: the call path sits outside every import cycle ----------

#: The call path's leaf: what it may import of the runtime (plain data, no driver).
CALL_LEAF_MAY_IMPORT = {"_breaker", "_budget", "_policy", "_state", "_working"}


def _runtime_imports(path: Path) -> set[str]:
    """The runtime modules ``path`` imports, ``TYPE_CHECKING`` imports included (a cycle
    of annotations is still a cycle of concepts)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                found.add(node.module.split(".")[0])
            elif node.level == 1:
                found |= {a.name for a in node.names}
            elif node.module and node.module.startswith("tether.runtime._"):
                found.add(node.module.split(".")[2])
    return found - {path.stem}


def _runtime_graph() -> dict[str, set[str]]:
    return {p.stem: _runtime_imports(p) for p in (SRC / "runtime").glob("_*.py")
            if p.stem != "__init__"}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> list[str] | None:
        if node in path:
            return [*path[path.index(node):], node]
        if node in done or node not in graph:
            return None
        for target in sorted(graph[node]):
            found = visit(target, [*path, node])
            if found:
                return found
        done.add(node)
        return None

    for start in sorted(graph):
        found = visit(start, [])
        if found:
            return found
    return None


def test_the_call_context_module_is_a_leaf() -> None:
    imports = _runtime_imports(SRC / "runtime" / "_call.py")
    assert imports <= CALL_LEAF_MAY_IMPORT, sorted(imports - CALL_LEAF_MAY_IMPORT)
    for leaf in CALL_LEAF_MAY_IMPORT:
        assert not _runtime_imports(SRC / "runtime" / f"{leaf}.py") - CALL_LEAF_MAY_IMPORT


@pytest.mark.parametrize("module", ["_model_call", "_tool_call", "_compaction", "_journal"])
def test_the_call_path_never_reaches_back_to_its_driver(module: str) -> None:
    graph = _runtime_graph()
    reached, todo = set(), [module]
    while todo:
        for target in graph.get(todo.pop(), set()) - reached:
            reached.add(target)
            todo.append(target)
    assert not reached & {"_execution", "_runner", module}, sorted(reached)


def test_the_runtime_has_no_import_cycle() -> None:
    """Helpers of a run (memory, toolsets, the stream, the call path) are typed by the
    protocols of ``_call``, never by the ``Execution`` that imports them."""
    graph = _runtime_graph()
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None
