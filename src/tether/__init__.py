"""Tether: a durable, observable runtime for production LLM agents.

The names most programs need are here; each package (``tether.core``,
``tether.store``, ``tether.models``, ``tether.tools``, ``tether.runtime``,
``tether.observe``) exports the rest.
"""

from .core import Message, Redactor, RunStatus, TetherError, ToolCall, Usage
from .models import FunctionModel, ScriptedModel, select_model
from .runtime import Agent, Budget, Policy, RetryPolicy, Runner, RunResult
from .store import SQLiteStore, open_store
from .tools import NOT_APPLIED, ToolContext, tool

__all__ = [
    "NOT_APPLIED",
    "Agent",
    "Budget",
    "FunctionModel",
    "Message",
    "Policy",
    "Redactor",
    "RetryPolicy",
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
    "select_model",
    "tool",
]
