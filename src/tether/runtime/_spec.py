"""Load an agent from a spec: ``module:attribute`` or ``path/to/file.py:attribute``
(the CLI, and resume in a fresh process from any directory)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

from ..core import AgentSpecError
from ._agent import Agent


def _split(spec: str) -> tuple[str, str]:
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute or "/" in attribute:
        raise AgentSpecError(
            f"agent spec {spec!r} is not of the form MODULE:ATTRIBUTE or FILE.py:ATTRIBUTE",
            hint="e.g. `tether run examples.calculator:agent \"What is 2+2?\"` or "
                 "`tether run examples/calculator.py:agent ...`",
        )
    return module_name, attribute


def _is_path(module_name: str) -> bool:
    return module_name.endswith(".py") or os.sep in module_name or "/" in module_name


def _import_file(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise AgentSpecError(f"agent spec {spec!r} names {path}, which is not a file",
                             hint="check the path, or use MODULE:ATTRIBUTE")
    # Its directory is importable, so the file's own sibling imports work.
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    name = f"_tether_agent_{path.stem}"
    loader = importlib.util.spec_from_file_location(name, path)
    if loader is None or loader.loader is None:
        raise AgentSpecError(f"cannot load {path} as a Python module", hint="use a .py file")
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    loader.loader.exec_module(module)
    return module


def absolute_spec(spec: str) -> str:
    """``spec`` in a form that loads from any directory: the file of its module, with an
    absolute path (``/home/me/agents/calculator.py:agent``), when it has one."""
    module_name, attribute = _split(spec)
    if _is_path(module_name):
        return f"{Path(module_name).resolve()}:{attribute}"
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    return f"{Path(filename).resolve()}:{attribute}" if filename else spec


def load_agent(spec: str) -> Agent:
    """Import the module or file a spec names and return the Agent it holds.

    For ``module:attribute`` the current directory is importable, as for ``python -m``.
    """
    module_name, attribute = _split(spec)
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        if _is_path(module_name):
            module = _import_file(Path(module_name), spec)
        else:
            module = importlib.import_module(module_name)
    except AgentSpecError:
        raise
    except ImportError as e:
        raise AgentSpecError(
            f"cannot import module {module_name!r} of agent spec {spec!r}: {e}",
            hint="run from the directory that contains the module, or fix the module path",
        ) from e
    except Exception as e:  # the module itself is broken: say where
        raise AgentSpecError(
            f"importing module {module_name!r} of agent spec {spec!r} raised "
            f"{type(e).__name__}: {e}",
            hint=f"fix the error in {module_name} (run `python -c 'import {module_name}'` "
                 "for the full traceback)",
        ) from e
    try:
        value = getattr(module, attribute)
    except AttributeError as e:
        raise AgentSpecError(
            f"module {module_name!r} has no attribute {attribute!r}",
            hint=f"define `{attribute} = Agent(...)` in {module_name}",
        ) from e
    if callable(value) and not isinstance(value, Agent):
        value = value()
    if not isinstance(value, Agent):
        raise AgentSpecError(
            f"{spec!r} is a {type(value).__name__}, not a tether Agent",
            hint="point the spec at an Agent instance or a function returning one",
        )
    return value
