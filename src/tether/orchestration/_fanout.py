"""Agents as tools, and parallel fan-out of independent subtasks."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from ..runtime import Agent, Budget
from ..tools import Tool, ToolContext, tool
from ._brief import Brief, SubagentResult
from ._delegate import MAX_DEPTH, delegate, execution_of, ledger, remaining

#: Seconds a branch gets past its deadline to stop by itself before it is abandoned.
GRACE_S = 5.0


def as_tool(
    agent: Agent, *, name: str | None = None, description: str | None = None,
    output: type[BaseModel] | None = None, tools: Sequence[str] | None = None,
    budget: Budget | None = None, deadline_s: float | None = None, repairs: int = 0,
    max_depth: int = MAX_DEPTH,
) -> Tool:
    """A tool through which a model delegates to ``agent``: each call is a child run.

    The model gives an ``objective`` and ``inputs``; it gets the child's
    :class:`SubagentResult` as JSON. The tool is idempotent by construction: run again
    after a crash, it finds its child by id instead of starting another.

    Args:
        agent: The subagent.
        name: The tool's name (default ``agent.name``).
        description: What the model is told the subagent does.
        output: Pydantic model the subagent's answer must validate against.
        tools: The subagent's tools the briefs allow (default: all).
        budget: Each child's limits (capped by what the parent has left).
        deadline_s: Each child's deadline.
        repairs: Child runs allowed to repair an answer that does not validate.
        max_depth: How deep sub-runs may nest.
    """

    async def delegate_to(ctx: ToolContext, objective: str,
                          inputs: dict[str, Any] | None = None) -> str:
        brief = Brief(objective=objective, inputs=inputs or {}, output_schema=output,
                      tools=tuple(tools) if tools is not None else None, budget=budget,
                      deadline_s=deadline_s, repairs=repairs)
        result = await delegate(ctx, agent, brief, max_depth=max_depth)
        return result.model_dump_json(exclude_none=True)

    text = description or (f"Delegate one narrow subtask to the subagent "
                           f"{agent.name!r}: {agent.instructions}".strip())
    return tool(name=name or agent.name, description=text, idempotent=True)(delegate_to)


@dataclass(frozen=True, kw_only=True)
class Branch:
    """One independent subtask of a fan-out: its ``name`` (unique in the fan-out),
    subagent and brief."""

    name: str
    agent: Agent
    brief: Brief


def split(left: dict[str, float | None], n: int) -> dict[str, float | None]:
    """An ``n``-th of each limit that is left (time is not split: branches run at once)."""
    return {k: (None if v is None or k == "max_seconds" else v / n) for k, v in left.items()}


def capped(asked: Budget, parts: dict[str, float | None]) -> Budget:
    """``asked``, with each limit capped by ``parts`` (whole steps and tokens, at least 1)."""
    values: dict[str, Any] = {}
    for k in ("max_steps", "max_input_tokens", "max_output_tokens", "max_cost_usd"):
        want, part = getattr(asked, k), parts.get(k)
        value = want if part is None else (part if want is None else min(want, part))
        if value is not None and k != "max_cost_usd":
            value = max(1, int(value))
        values[k] = value
    return Budget(**values, max_seconds=asked.max_seconds)


async def fan_out(
    ctx: ToolContext, branches: Sequence[Branch], *, concurrency: int = 4,
    timeout_s: float | None = None,
) -> list[SubagentResult]:
    """Run independent subtasks as child runs, at most ``concurrency`` at once.

    A branch whose brief sets no budget gets an equal share of what the parent has left.
    ``timeout_s`` is each branch's deadline (its ``max_seconds``): a branch that reaches
    it stops cleanly as ``failed``; one that does not stop within ``GRACE_S`` more is
    abandoned and reported ``failed``, resumable. A branch never fails silently: its
    error is in its result.

    Returns:
        One result per branch, in order.
    """
    names = [b.name for b in branches]
    if len(set(names)) != len(names) or any("~" in n for n in names):
        from ..core import UsageError

        raise UsageError(f"fan-out branch names repeat or contain '~': {names}",
                         hint="give every branch a unique name without '~' (it marks "
                              "the branches of replans and repairs)")
    return await run_branches(ctx, branches, concurrency=concurrency, timeout_s=timeout_s)


async def run_branches(
    ctx: ToolContext, branches: Sequence[Branch], *, concurrency: int,
    timeout_s: float | None,
) -> list[SubagentResult]:
    """:func:`fan_out` without its check of the names (for the replans of a plan)."""
    ex = execution_of(ctx)
    led = await ledger(ex)
    parts = split(remaining(ex, led), max(1, len(branches)))
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(branch: Branch) -> SubagentResult:
        brief = branch.brief
        if brief.budget is None:
            brief = _with(brief, budget=capped(branch.agent.budget, parts))
        if timeout_s is not None:
            brief = _with(brief, deadline_s=timeout_s if brief.deadline_s is None
                          else min(brief.deadline_s, timeout_s))
        async with gate:
            try:
                work = delegate(ctx, branch.agent, brief, branch=branch.name)
                if timeout_s is None:
                    return await work
                return await asyncio.wait_for(work, timeout_s + GRACE_S)
            except TimeoutError:
                assert timeout_s is not None
                return SubagentResult(agent=branch.agent.name, child_run_id=None,
                                      status="failed", error={
                                          "type": "BranchTimeout",
                                          "message": f"branch {branch.name!r} did not stop "
                                                     f"within {timeout_s + GRACE_S:g} s",
                                          "hint": "resume the run to continue it"})
            except Exception as e:  # never silent: the failure is the branch's result
                return SubagentResult(agent=branch.agent.name, child_run_id=None,
                                      status="failed", error={
                                          "type": type(e).__name__, "message": str(e),
                                          "hint": getattr(e, "hint", None) or
                                          "see the parent's journal"})

    return list(await asyncio.gather(*(one(b) for b in branches)))


def _with(brief: Brief, **changes: Any) -> Brief:
    import dataclasses

    return dataclasses.replace(brief, **changes)
