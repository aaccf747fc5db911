"""Tools: the ``@tool`` decorator, validation, and the context handed to each call."""

from ._context import ToolContext
from ._tool import NOT_APPLIED, Tool, serialize_result, tool
from ._working import WorkingMemory

__all__ = ["NOT_APPLIED", "Tool", "ToolContext", "WorkingMemory", "serialize_result", "tool"]
