"""The runtime: agents, the Runner and its step loop, and the policies around it."""

from ._agent import Agent
from ._budget import Budget
from ._result import RunResult
from ._runner import Observer, Runner
from ._spec import load_agent
from ._state import OpenCall, RunState, fold

__all__ = [
    "Agent",
    "Budget",
    "Observer",
    "OpenCall",
    "RunResult",
    "RunState",
    "Runner",
    "fold",
    "load_agent",
]
