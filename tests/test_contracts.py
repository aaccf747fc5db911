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
