"""Tools: the ``@tool`` decorator, toolsets and their wrappers, and the context handed
to each call."""

from ._context import RunHandle, RunnerView, RunView, ToolContext
from ._definition import ToolDef
from ._tool import NOT_APPLIED, Tool, as_result, serialize_result, still_running, tool
from ._toolset import (
    ApprovalRequiredToolset,
    BaseToolset,
    FilteredToolset,
    FunctionToolset,
    PrefixedToolset,
    StepContext,
    Toolset,
    WrapperToolset,
)
from ._working import WorkingMemory

__all__ = [
    "NOT_APPLIED",
    "ApprovalRequiredToolset",
    "BaseToolset",
    "FilteredToolset",
    "FunctionToolset",
    "PrefixedToolset",
    "RunHandle",
    "RunView",
    "RunnerView",
    "StepContext",
    "Tool",
    "ToolContext",
    "ToolDef",
    "Toolset",
    "WorkingMemory",
    "WrapperToolset",
    "as_result",
    "serialize_result",
    "still_running",
    "tool",
]
