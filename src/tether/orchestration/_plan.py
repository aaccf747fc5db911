"""Plans: a controller's task broken into a DAG of subtasks, run as child runs.

A plan is journaled in the parent as a ``decision`` (``decision: "plan"``). Each
subtask starts once its dependencies succeeded, with their outputs as its inputs;
independent subtasks run in parallel. A subtask that fails is replanned, alone and a
bounded number of times (each replan a ``decision``); finished work is kept.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..core import DecisionPayload, EventType, UsageError
from ..runtime import Agent, Budget
from ..tools import Tool, ToolContext, tool
from ._brief import Brief, Status, SubagentResult
from ._delegate import call_span, execution_of, ledger, remaining
from ._fanout import Branch, capped, run_branches, split


class Subtask(BaseModel):
    """One node of a plan."""

    model_config = ConfigDict(frozen=True)

    id: str = Field(description="unique name of the subtask, e.g. 'search_a'")
    objective: str = Field(description="the one narrow job, in words")
    agent: str = Field(description="name of the subagent that does it")
    depends_on: list[str] = Field(default_factory=list,
                                  description="ids of subtasks whose outputs it needs")
    inputs: dict[str, Any] = Field(default_factory=dict,
                                   description="further data the job needs")
    output_schema: str | None = Field(default=None,
                                      description="name of the output schema to answer in")
    max_steps: int | None = Field(default=None, description="its step budget")


class Plan(BaseModel):
    """A DAG of subtasks (ids unique, dependencies named, no cycles)."""

    model_config = ConfigDict(frozen=True)

    subtasks: list[Subtask]

    @model_validator(mode="after")
    def _is_dag(self) -> Plan:
        ids = [s.id for s in self.subtasks]
        if len(set(ids)) != len(ids):
            raise ValueError(f"subtask ids repeat: {ids}")
        marked = [i for i in ids if "~" in i]
        if marked:  # '~' names replan and repair branches: such an id would be one
            raise ValueError(f"subtask ids may not contain '~': {marked}")
        known = set(ids)
        for s in self.subtasks:
            missing = set(s.depends_on) - known
            if missing:
                raise ValueError(f"subtask {s.id!r} depends on unknown {sorted(missing)}")
        self.order()
        return self

    def order(self) -> list[list[Subtask]]:
        """The subtasks in waves: each wave depends only on earlier ones."""
        left = {s.id: s for s in self.subtasks}
        done: set[str] = set()
        waves: list[list[Subtask]] = []
        while left:
            wave = [s for s in left.values() if set(s.depends_on) <= done]
            if not wave:
                raise ValueError(f"the plan has a cycle among {sorted(left)}")
            waves.append(wave)
            for s in wave:
                done.add(s.id)
                del left[s.id]
        return waves


class PlanResult(BaseModel):
    """How a plan ended: ``ok`` (every subtask ok), ``partial`` (some failed; their
    ids in ``failed``) or ``failed`` (none succeeded); each subtask's last result."""

    status: Status
    results: dict[str, SubagentResult]
    failed: list[str] = Field(default_factory=list)
    replans: int = 0
    error: str | None = None


#: Decides how to retry a failed subtask: a changed subtask, or None to give up.
Replanner = Callable[[Subtask, SubagentResult, int], Subtask | None]


def retry_with_error(subtask: Subtask, result: SubagentResult, attempt: int) -> Subtask:
    """The default replanner: the same subtask, told what went wrong last time."""
    error = (result.error or {}).get("message", "it failed")
    return subtask.model_copy(update={"objective": f"{subtask.objective}\n\n(Attempt "
                                      f"{attempt + 1}; the previous attempt failed: {error})"})


async def _decide(ctx: ToolContext, key: str, payload: DecisionPayload) -> None:
    """Commit a ``decision`` once per key (a re-run after a crash does not repeat it)."""
    ex = execution_of(ctx)
    led = await ledger(ex)
    if key in led.decisions:
        return
    led.decisions.add(key)
    await ex.commit([ex.event(EventType.DECISION, ctx.step,
                              payload.model_copy(update={"key": key}).dump(),
                              span=call_span(ex, ctx))])


def _check_names(plan: Plan, agents: Mapping[str, Agent],
                 schemas: Mapping[str, type[BaseModel]]) -> None:
    """Refuse a plan naming a subagent or an output schema it was not given, before
    anything is journaled or started."""
    for s in plan.subtasks:
        if s.agent not in agents:
            raise UsageError(f"subtask {s.id!r} names unknown subagent {s.agent!r}",
                             hint=f"subagents: {sorted(agents)}")
        if s.output_schema is not None and s.output_schema not in schemas:
            raise UsageError(f"subtask {s.id!r} names unknown schema {s.output_schema!r}",
                             hint=f"schemas: {sorted(schemas)}")


async def run_plan(
    ctx: ToolContext, plan: Plan, agents: Mapping[str, Agent], *,
    schemas: Mapping[str, type[BaseModel]] | None = None, concurrency: int = 4,
    timeout_s: float | None = None, max_replans: int = 1,
    replanner: Replanner = retry_with_error,
) -> PlanResult:
    """Run ``plan``'s subtasks as child runs of the run ``ctx`` belongs to.

    Args:
        ctx: The context of the tool call that runs the plan (the controller's).
        plan: The DAG.
        agents: Subagents by name.
        schemas: Output schemas by name, for ``Subtask.output_schema``.
        concurrency: Children running at once.
        timeout_s: Each branch's deadline.
        max_replans: Replans allowed per failed subtask.
        replanner: Turns a failed subtask into the next attempt (None: give up).
    """
    schemas = schemas or {}
    _check_names(plan, agents, schemas)
    key = ctx.idempotency_key
    waves = plan.order()
    await _decide(ctx, f"{key}/plan", DecisionPayload(
        decision="plan", options=[s.id for s in plan.subtasks],
        chosen=[[s.id for s in w] for w in waves],
        reason="subtasks in dependency order; each wave runs in parallel",
        plan=plan.model_dump(mode="json"),
    ))
    # Each subtask's budget: what it asks for, capped by an equal part of what the
    # parent has left now (replans draw on what is left when they start).
    ex = execution_of(ctx)
    parts = split(remaining(ex, await ledger(ex)), len(plan.subtasks))
    results: dict[str, SubagentResult] = {}
    replans = 0
    by_id = {s.id: s for s in plan.subtasks}
    done: dict[str, asyncio.Event] = {s.id: asyncio.Event() for s in plan.subtasks}

    def brief_of(s: Subtask) -> Brief:
        inputs = {**s.inputs, **{d: _value(results[d]) for d in s.depends_on}}
        asked = agents[s.agent].budget
        if s.max_steps is not None:
            asked = dataclasses.replace(asked, max_steps=s.max_steps)
        budget = capped(asked, parts)
        return Brief(objective=s.objective, inputs=inputs, budget=budget,
                     output_schema=schemas.get(s.output_schema or ""))

    async def node(s: Subtask) -> None:
        nonlocal replans
        try:
            for dep in s.depends_on:
                await done[dep].wait()
            bad = [d for d in s.depends_on if results[d].status == "failed"]
            if bad:
                results[s.id] = SubagentResult(
                    agent=s.agent, child_run_id=None, status="failed",
                    error={"type": "DependencyFailed",
                           "message": f"not started: it needs {bad}, which failed"})
                return
            current = s
            for attempt in range(max_replans + 1):
                branch = s.id if attempt == 0 else f"{s.id}~replan{attempt}"
                [result] = await run_branches(ctx, [Branch(
                    name=branch, agent=agents[current.agent], brief=brief_of(current))],
                    concurrency=1, timeout_s=timeout_s)
                results[s.id] = result
                if result.status == "ok" or attempt == max_replans:
                    return
                try:
                    nxt = replanner(current, result, attempt + 1)
                except Exception as e:  # never silent, never orphaning the siblings
                    nxt = None
                    result = results[s.id] = result.model_copy(update={"error": {
                        **(result.error or {}), "type": "ReplanError",
                        "message": f"the replanner raised {type(e).__name__}: {e}; the "
                                   "last attempt: " + str((result.error or {}).get(
                                       "message", "it failed")),
                        "hint": "fix the replanner, then resume the run"}})
                await _decide(ctx, f"{key}/{s.id}/replan{attempt + 1}", DecisionPayload(
                    decision="replan", subtask=s.id, attempt=attempt + 1,
                    options=["replan", "give_up"],
                    chosen="give_up" if nxt is None else "replan",
                    reason=(result.error or {}).get("message", "the subtask failed"),
                    objective=None if nxt is None else nxt.objective,
                ))
                if nxt is None:
                    return
                if nxt.agent not in agents:
                    nxt = nxt.model_copy(update={"agent": current.agent})
                current = nxt
                replans += 1
        finally:
            done[s.id].set()

    gate = asyncio.Semaphore(max(1, concurrency))

    async def gated(s: Subtask) -> None:
        for dep in s.depends_on:
            await done[dep].wait()
        async with gate:
            await node(s)

    await asyncio.gather(*(gated(by_id[i]) for i in by_id))
    failed = [i for i in by_id if results[i].status != "ok"]
    ok = len(by_id) - len(failed)
    status: Status = "ok" if not failed else ("partial" if ok else "failed")
    error = None
    if failed:
        error = "subtasks that did not succeed: " + "; ".join(
            f"{i} ({results[i].status}: {(results[i].error or {}).get('message', '')})"
            for i in failed)
    return PlanResult(status=status, results=results, failed=failed, replans=replans,
                      error=error)


def _value(result: SubagentResult) -> Any:
    if result.output is None and result.artifacts:
        return {"artifacts": [a.model_dump() for a in result.artifacts]}
    return result.output


def plan_tool(
    agents: Sequence[Agent], *, schemas: Mapping[str, type[BaseModel]] | None = None,
    concurrency: int = 4, timeout_s: float | None = None, max_replans: int = 1,
    replanner: Replanner = retry_with_error, name: str = "run_plan",
) -> Tool:
    """The controller's tool: it takes a plan (a DAG of subtasks for ``agents``), runs
    it with :func:`run_plan`, and returns the :class:`PlanResult` as JSON. Idempotent
    by construction (children are found by id after a crash)."""
    by_name = {a.name: a for a in agents}
    catalogue = "; ".join(f"{a.name}: {a.instructions}" for a in agents)

    async def run(ctx: ToolContext, subtasks: list[Subtask]) -> str:
        try:
            plan = Plan(subtasks=subtasks)
        except ValueError as e:
            from ..core import ModelRetry

            raise ModelRetry(f"the plan is not a valid DAG: {e}") from e
        result = await run_plan(ctx, plan, by_name, schemas=schemas,
                                concurrency=concurrency, timeout_s=timeout_s,
                                max_replans=max_replans, replanner=replanner)
        return result.model_dump_json(exclude_none=True)

    return tool(name=name, idempotent=True, description=(
        "Run a plan: subtasks, each handed to one subagent, with the ids of the subtasks "
        f"whose outputs it needs. Subagents: {catalogue}"))(run)


def controller(
    name: str, *, model: Any, agents: Sequence[Agent], instructions: str = "",
    budget: Budget | None = None, **plan_options: Any,
) -> Agent:
    """An agent that breaks a task into a plan for ``agents`` and answers from the
    results (its one tool is :func:`plan_tool`)."""
    text = instructions or ("Break the task into narrow subtasks with clear boundaries, "
                            "run them with run_plan, then answer from their results.")
    return Agent(name=name, instructions=text, model=model,
                 tools=[plan_tool(agents, **plan_options)],
                 budget=budget or Budget())
