"""The runtime: agents, the Runner and its step loop, and the policies around it."""

from ._agent import Agent
from ._breaker import Breaker, BreakerBoard, Transition
from ._budget import Budget, parse_budget
from ._memory import MemoryConfig, list_threads, parse_thread_key, thread_key, thread_runs
from ._policy import BreakerSettings, Policy, RetryPolicy, error_class
from ._result import RunResult
from ._runner import Reviewer, Runner
from ._spec import absolute_spec, load_agent
from ._state import FoldHandler, OpenCall, RunState, check_format, fold, register_fold
from ._stream import Delta, EventStream, Lagged, Observer, StreamItem, Subscription

__all__ = [
    "Agent",
    "Breaker",
    "BreakerBoard",
    "BreakerSettings",
    "Budget",
    "Delta",
    "EventStream",
    "Lagged",
    "MemoryConfig",
    "Observer",
    "FoldHandler",
    "OpenCall",
    "Policy",
    "RetryPolicy",
    "Reviewer",
    "RunResult",
    "RunState",
    "Runner",
    "StreamItem",
    "Subscription",
    "Transition",
    "absolute_spec",
    "error_class",
    "check_format",
    "fold",
    "register_fold",
    "list_threads",
    "load_agent",
    "parse_budget",
    "parse_thread_key",
    "thread_key",
    "thread_runs",
]
