"""Load an agent from a ``module:attribute`` spec (CLI, resume in a fresh process)."""

from __future__ import annotations

import importlib
import os
import sys

from ..core import AgentSpecError
from ._agent import Agent


def load_agent(spec: str) -> Agent:
    """Import ``module:attribute`` and return the Agent it names.

    The current directory is importable, as for ``python -m``.
    """
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AgentSpecError(
            f"agent spec {spec!r} is not of the form MODULE:ATTRIBUTE",
            hint="e.g. `tether run examples.calculator:agent \"What is 2+2?\"`",
        )
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
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
