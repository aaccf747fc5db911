"""Toolsets: where a run's tools come from at each step, and how a call reaches them.

A :class:`Toolset` lists the tools it offers for a step and runs a call of one of
them; it may hold a resource for the length of a drive (``async with``: an MCP
connection, a browser). ``Agent(tools=[...])`` takes tools, plain functions and
toolsets; the runtime asks the toolsets for their tools at every step, enters them
when a drive starts and exits them when it ends (also when it fails or is
interrupted; a process that is killed exits nothing, and a resume enters them again).

Behaviour comes by wrapping (as pydantic-ai's wrapper toolsets): :class:`FilteredToolset`,
:class:`PrefixedToolset`, :class:`ApprovalRequiredToolset`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from ..core import ApprovalRequired, ToolDefinitionError
from ._context import ToolContext
from ._definition import ToolDef
from ._tool import Tool, tool


@dataclass(frozen=True, slots=True, kw_only=True)
class StepContext:
    """What a toolset knows when it is asked for the tools of a step.

    ``step`` is 0 when the run starts (the tools recorded in ``run.started``), then the
    number of the step whose model request the tools go with.
    """

    run_id: str
    agent: str
    step: int


@runtime_checkable
class Toolset(Protocol):
    """Tools for a run, listed at each step. Subclass :class:`BaseToolset` for the
    lifecycle and reconcile defaults, or implement all five members."""

    async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
        """The tools offered at this step (names unique across the agent's toolsets)."""
        ...

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Run a call of tool ``name`` with validated ``arguments``; return its result
        (a ``str``, a JSON-compatible value, or a :class:`~tether.core.ToolResult`).
        Raise ``ModelRetry``, ``ApprovalRequired`` or ``CallDeferred`` to signal, any
        other exception to fail the call."""
        ...

    async def reconcile(self, name: str, key: str) -> Any:
        """For a tool listed as ``reconcilable``: whether the call with idempotency
        ``key`` took effect (its result) or not (:data:`~tether.tools.NOT_APPLIED`)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> bool | None: ...


class BaseToolset:
    """Defaults for :class:`Toolset`: no lifecycle, no reconcile hooks."""

    async def reconcile(self, name: str, key: str) -> Any:
        """No reconcile hooks here."""
        raise ToolDefinitionError(f"tool {name!r} has no reconcile hook",
                                  hint="list it with reconcilable=False")

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        return None


class FunctionToolset(BaseToolset):
    """A fixed list of ``@tool`` functions (plain functions become tools).

    Args:
        tools: The tools, offered at every step in this order.

    Raises:
        ToolDefinitionError: two tools share a name.
    """

    def __init__(self, tools: Sequence[Tool | Callable[..., Any]]) -> None:
        built = [t if isinstance(t, Tool) else tool(t) for t in tools]
        self.tools: dict[str, Tool] = {t.name: t for t in built}
        if len(self.tools) != len(built):
            twice = sorted({t.name for t in built if sum(u.name == t.name for u in built) > 1})
            raise ToolDefinitionError(f"more than one tool named {', '.join(twice)}",
                                      hint="give each tool its own name: @tool(name=...)")

    async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
        """Every tool, at every step."""
        return [t.definition for t in self.tools.values()]

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Run the tool; resolves once its code has stopped (see :meth:`Tool.start`)."""
        found = self.tools.get(name)
        return await (found or self._tool(name)).start(arguments, ctx)

    async def reconcile(self, name: str, key: str) -> Any:
        """The tool's own ``reconcile`` hook."""
        return await self._tool(name).run_reconcile(key)

    def _tool(self, name: str) -> Tool:
        found = self.tools.get(name)
        if found is None:
            raise ToolDefinitionError(f"this toolset has no tool named {name!r}",
                                      hint=f"its tools: {', '.join(self.tools) or 'none'}")
        return found


class WrapperToolset(BaseToolset):
    """Delegates everything to ``wrapped``; subclasses change one behaviour.

    Entering a wrapper enters the wrapped toolset.
    """

    def __init__(self, wrapped: Toolset) -> None:
        self.wrapped = wrapped

    async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
        """The wrapped toolset's tools."""
        return await self.wrapped.list_tools(ctx)

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """The wrapped toolset's call."""
        return await self.wrapped.call(name, arguments, ctx)

    async def reconcile(self, name: str, key: str) -> Any:
        """The wrapped toolset's reconcile."""
        return await self.wrapped.reconcile(name, key)

    async def __aenter__(self) -> Self:
        await self.wrapped.__aenter__()
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> bool | None:
        return await self.wrapped.__aexit__(kind, error, tb)


class FilteredToolset(WrapperToolset):
    """Offers the wrapped toolset's tools that ``keep(step_context, tool)`` accepts,
    decided again at every step.

    Args:
        wrapped: The toolset to filter.
        keep: Whether to offer a tool at this step.
    """

    def __init__(self, wrapped: Toolset, keep: Callable[[StepContext, ToolDef], bool]) -> None:
        super().__init__(wrapped)
        self.keep = keep

    async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
        """The wrapped tools ``keep`` accepts."""
        return [t for t in await self.wrapped.list_tools(ctx) if self.keep(ctx, t)]


class PrefixedToolset(WrapperToolset):
    """Offers the wrapped toolset's tools as ``{prefix}_{name}`` (fallbacks too) and
    strips the prefix on the way back: the model and the journal see the prefixed
    names, the wrapped toolset its own.

    Args:
        wrapped: The toolset whose names to prefix.
        prefix: Letters, digits, ``_`` or ``-``.
    """

    def __init__(self, wrapped: Toolset, prefix: str) -> None:
        if not prefix or not all(c.isalnum() or c in "_-" for c in prefix):
            raise ToolDefinitionError(f"a tool name prefix is letters, digits, _ or -, "
                                      f"not {prefix!r}", hint='e.g. prefix="github"')
        super().__init__(wrapped)
        self.prefix = prefix

    def outer(self, name: str) -> str:
        """The name the model sees for the wrapped tool ``name``."""
        return f"{self.prefix}_{name}"

    def inner(self, name: str) -> str:
        """The wrapped tool's name for the name the model saw."""
        head = f"{self.prefix}_"
        if not name.startswith(head):
            raise ToolDefinitionError(f"tool {name!r} does not carry the prefix {head!r}",
                                      hint="call tools by the names they were offered under")
        return name[len(head):]

    async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
        """The wrapped tools, renamed."""
        return [t.renamed(self.outer(t.name),
                          fallback=None if t.fallback is None else self.outer(t.fallback))
                for t in await self.wrapped.list_tools(ctx)]

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """The wrapped tool's call, under its own name."""
        return await self.wrapped.call(self.inner(name), arguments, ctx)

    async def reconcile(self, name: str, key: str) -> Any:
        """The wrapped tool's reconcile, under its own name."""
        return await self.wrapped.reconcile(self.inner(name), key)


class ApprovalRequiredToolset(WrapperToolset):
    """Calls of the wrapped tools wait for a human's approval: until one is given the
    call raises :class:`~tether.core.ApprovalRequired` before anything runs, and the run
    stops as ``needs_attention`` naming it (``tether approve RUN_ID CALL_ID``).

    Args:
        wrapped: The toolset whose calls need approval.
        requires: Whether this call needs it (``requires(ctx, arguments)``, e.g. only
            above an amount); default: every call.
    """

    def __init__(self, wrapped: Toolset,
                 requires: Callable[[ToolContext, dict[str, Any]], bool] | None = None) -> None:
        super().__init__(wrapped)
        self.requires = requires

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """The wrapped call once approved (or when no approval is required)."""
        if not ctx.approved and (self.requires is None or self.requires(ctx, arguments)):
            raise ApprovalRequired(f"a call of {name!r} needs a human's approval")
        return await self.wrapped.call(name, arguments, ctx)
