"""Tether: a durable, observable runtime for production LLM agents.

The names most programs need are here; each package (``tether.core``,
``tether.store``, ``tether.models``, ``tether.tools``, ``tether.runtime``,
``tether.observe``) exports the rest.
"""

from .core import Message, RunStatus, TetherError, ToolCall, Usage
from .models import FunctionModel, ScriptedModel
from .runtime import Agent, Budget, Runner, RunResult
from .store import SQLiteStore, open_store
from .tools import NOT_APPLIED, ToolContext, tool

__all__ = [
    "NOT_APPLIED",
    "Agent",
    "Budget",
    "FunctionModel",
    "Message",
    "RunResult",
    "RunStatus",
    "Runner",
    "SQLiteStore",
    "ScriptedModel",
    "TetherError",
    "ToolCall",
    "ToolContext",
    "Usage",
    "open_store",
    "tool",
]
