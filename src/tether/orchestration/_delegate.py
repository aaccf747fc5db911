"""Delegation: a subagent's work is a run of its own (a *child run*) in the parent's
store, linked to the parent, with its own journal and lease.

The child's run id derives from the delegating call's idempotency key (and the branch
name, for several children of one call), so a delegating call that runs again after a
crash finds the child it already started: a finished child is never run again (its
recorded result is returned) and an unfinished one is resumed where it stopped.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from ..core import (
    DecisionPayload,
    EventType,
    RunLeasedError,
    RunNotFoundError,
    RunStartedPayload,
    RunStatus,
    SubrunCompletedPayload,
    SubrunStartedPayload,
    TetherError,
    Usage,
    UsageError,
)
from ..runtime import Agent, Budget, RunResult, fold
from ..tools import FilteredToolset, FunctionToolset, RunHandle, Tool, ToolContext, Toolset
from ._brief import ARTIFACT_CHARS, ArtifactRef, Brief, SubagentResult, strip_fences

#: Default limits: how deep sub-runs may nest, and how often one subagent may be given
#: the same brief by one run before further delegations of it are refused.
MAX_DEPTH = 3
#: See :data:`MAX_DEPTH`.
MAX_REPEATS = 3

_SETTLED = (RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.NEEDS_ATTENTION,
            RunStatus.QUARANTINED)
_LIMITS = ("max_steps", "max_input_tokens", "max_output_tokens", "max_cost_usd")


def child_run_id(idempotency_key: str, branch: str = "") -> str:
    """The run id of the child a delegating call starts: stable across resumes."""
    digest = hashlib.sha256(f"{idempotency_key}/{branch}".encode()).hexdigest()
    return f"run_{digest[:26]}"


@dataclass(kw_only=True)
class _Ledger:
    """What a parent run has delegated so far: seeded once from its journal, then kept
    up to date by the delegations of this process."""

    depth: int = 0
    started: dict[str, SubrunStartedPayload] = field(default_factory=dict)
    completed: dict[str, SubrunCompletedPayload] = field(default_factory=dict)
    decisions: set[str] = field(default_factory=set)
    #: Budget shares of children in flight (not yet in ``subrun.completed``).
    reserved: dict[str, Budget] = field(default_factory=dict)

    def repeats(self, agent: str, digest: str) -> int:
        return sum(1 for p in self.started.values()
                   if p.agent == agent and p.brief_digest == digest)


_ledgers: weakref.WeakKeyDictionary[Any, _Ledger] = weakref.WeakKeyDictionary()
#: What the children of a sub-run driven in this process used (usage, cost, steps),
#: by the sub-run's id, until its own parent records its end.
_rollups: dict[str, tuple[Usage, float, int]] = {}


async def ledger(ex: RunHandle) -> _Ledger:
    """The delegation ledger of the run ``ex`` (the runtime's Execution) drives."""
    found = _ledgers.get(ex)
    if found is not None:
        return found
    # Unsealed: a child started again after a crash gets the brief the parent gave,
    # and a finished child's recorded result comes back as it was, not redacted.
    events = ex.runner.sealer.unseal_all(await ex.runner.store.read(ex.state.run_id))
    led = _Ledger()
    for e in events:
        p = e.data
        if isinstance(p, RunStartedPayload):
            led.depth = int(p.depth or 0)
        elif isinstance(p, SubrunStartedPayload):
            led.started[p.child_run_id] = p
        elif isinstance(p, SubrunCompletedPayload):
            led.completed[p.child_run_id] = p
        elif isinstance(p, DecisionPayload) and p.key:
            led.decisions.add(p.key)
    return _ledgers.setdefault(ex, led)


def execution_of(ctx: ToolContext) -> RunHandle:
    """The runtime's handle on the run a tool call belongs to."""
    if ctx.execution is None:
        raise UsageError(
            f"tool call {ctx.call_id} carries no run to delegate from",
            hint="delegate only from inside a tool call that a Runner drives",
        )
    return ctx.execution


def call_span(ex: RunHandle, ctx: ToolContext) -> str | None:
    """The span id of the delegating call (``s{step}.t{index}``)."""
    call = ex.state.open_calls.get(ctx.call_id)
    return None if call is None else f"s{call.step}.t{call.index}"


def remaining(ex: RunHandle, led: _Ledger, *, ways: int = 1) -> dict[str, float | None]:
    """What the parent has left of each limit, less its children's use and shares in
    flight, keeping one step for the parent's own answer (``None``: unlimited); with
    ``ways``, at most that fraction of what is left before the shares in flight (so
    children started together get equal shares and none starves the others)."""
    budget: Budget = ex.budget
    state = ex.state
    usage = state.usage + state.subrun_usage
    used = {
        "max_steps": state.step + state.subrun_steps + 1,
        "max_input_tokens": usage.input_tokens,
        "max_output_tokens": usage.output_tokens,
        "max_cost_usd": state.cost_usd + state.subrun_cost_usd,
    }
    left: dict[str, float | None] = {}
    for limit in _LIMITS:
        allowed = getattr(budget, limit)
        if allowed is None:
            left[limit] = None
            continue
        reserved = sum(getattr(b, limit) or 0 for b in led.reserved.values())
        free = allowed - used[limit]
        left[limit] = min(free / max(1, ways), free - reserved)
    left["max_seconds"] = ex.remaining_s()
    return left


def share(asked: Budget, left: Mapping[str, float | None],
          deadline_s: float | None = None) -> Budget | str:
    """The child's budget: what it asks for, capped by what the parent has left; or the
    name of a limit the parent has already spent."""
    values: dict[str, Any] = {}
    for limit in (*_LIMITS, "max_seconds"):
        want = getattr(asked, limit)
        if limit == "max_seconds" and deadline_s is not None:
            want = deadline_s if want is None else min(want, deadline_s)
        cap = left.get(limit)
        if cap is not None and cap <= 0:
            return limit
        value = want if cap is None else (cap if want is None else min(want, cap))
        if value is not None and limit in ("max_steps", "max_input_tokens",
                                           "max_output_tokens"):
            value = int(value)
        values[limit] = value
    return Budget(**values)


def _refused(agent: str, kind: str, message: str, hint: str,
             **extra: Any) -> SubagentResult:
    return SubagentResult(agent=agent, child_run_id=None, status="failed",
                          error={"type": kind, "message": message, "hint": hint, **extra})


def to_result(agent: str, run: RunResult, brief: Brief) -> SubagentResult:
    """A child run's outcome as the typed result the parent gets."""
    base: dict[str, Any] = {
        "agent": agent, "child_run_id": run.run_id, "steps": run.steps,
        "input_tokens": run.usage.input_tokens, "output_tokens": run.usage.output_tokens,
        "cost_usd": run.cost_usd,
    }
    if run.status != RunStatus.COMPLETED:
        error: dict[str, Any] = {} if run.error is None else dict(
            run.error.details or run.error.to_dict())
        error.setdefault("type", "SubrunFailed")
        error["message"] = (f"subagent {agent!r} ended {run.status}: "
                            f"{error.get('message', 'no reason recorded')}")
        error.setdefault("hint", f"see `tether show {run.run_id}`")
        return SubagentResult(**base, status="failed", error=error)
    text = run.output or ""
    schema = brief.output_schema
    if schema is not None:
        try:
            parsed = schema.model_validate_json(strip_fences(text))
        except ValidationError as e:
            big = len(text) > ARTIFACT_CHARS  # a reference, as for a large text answer
            return SubagentResult(**base, status="partial", output=None if big else text,
                                  artifacts=[ArtifactRef(
                                      run_id=run.run_id, chars=len(text),
                                      preview=text[:200])] if big else [], error={
                "type": "OutputValidationError",
                "message": f"the answer of subagent {agent!r} does not validate against "
                           f"{schema.__name__}: {e.error_count()} errors: "
                           + "; ".join(f"{'.'.join(map(str, x['loc'])) or '(root)'}: "
                                       f"{x['msg']}" for x in e.errors()[:5]),
                "hint": "give the subtask repairs, or a stronger model",
            })
        return SubagentResult(**base, status="ok", output=parsed.model_dump(mode="json"))
    if len(text) > ARTIFACT_CHARS:
        return SubagentResult(**base, status="ok", output=None, artifacts=[ArtifactRef(
            run_id=run.run_id, chars=len(text), preview=text[:200])])
    return SubagentResult(**base, status="ok", output=text)


def _child_agent(agent: Agent, brief: Brief, budget: Budget) -> Agent:
    """``agent`` limited to the tools its brief allows (all of them without a list): its
    own tools are kept by name, and toolsets that list theirs at run time are filtered
    at every step, so a tool they add later is allowed only if the brief names it."""
    tools = agent.tools
    if brief.tools is not None:
        allowed = frozenset(brief.tools)
        static = agent.tool_map()
        dynamic = [t for t in agent.tools if isinstance(t, Toolset)
                   and not isinstance(t, Tool | FunctionToolset)]
        unknown = allowed - set(static)
        if unknown and not dynamic:
            raise UsageError(
                f"brief allows tools {sorted(unknown)} that subagent {agent.name!r} lacks",
                hint=f"its tools: {sorted(static)}",
            )
        tools = [*(t for t in static.values() if t.name in allowed),
                 *(FilteredToolset(t, lambda _step, d: d.name in allowed) for t in dynamic)]
    return dataclasses.replace(agent, tools=tools, budget=budget)


#: Seconds between looks at a child that another process drives.
_POLL_S = 0.2


async def _resume_when_free(runner: Any, child_id: str, child: Agent) -> RunResult:
    """Resume the child; while another process drives it (``tether resume CHILD``: its
    lease is held), wait for that driver: the child's outcome is collected when it ends
    (a settled run is returned as it is), never redone or reported failed meanwhile."""
    while True:
        try:
            return await runner.resume(child_id, child)  # type: ignore[no-any-return]
        except RunLeasedError:
            await asyncio.sleep(_POLL_S)


async def delegate(
    ctx: ToolContext, agent: Agent, brief: Brief, *, branch: str = "",
    max_depth: int = MAX_DEPTH, max_repeats: int = MAX_REPEATS,
) -> SubagentResult:
    """Hand ``brief`` to ``agent`` as a child run of the run ``ctx`` belongs to.

    Safe to call again for the same call and branch after a crash: the child is found
    by its id; a finished one's recorded result is returned, an unfinished one resumed.

    Args:
        ctx: The delegating tool call's context.
        agent: The subagent.
        brief: Its job, inputs, output schema, tools, budget and deadline.
        branch: Tells apart several children of one call.
        max_depth: How deep sub-runs may nest.
        max_repeats: Delegations of the same brief to the same subagent allowed per run.

    Returns:
        The child's typed result; a delegation that is refused (depth, loop, budget
        spent) returns ``failed`` with an ``error`` saying why, and starts no child.

    Raises:
        UsageError: ``branch`` names a repair branch (``~repair``), which only
            ``delegate`` makes: that child would be another call's repair.
    """
    if "~repair" in branch:
        raise UsageError(f"branch {branch!r} names a repair branch",
                         hint="'~repair' marks the repairs delegate makes itself; "
                              "choose a branch name without it")
    result = await _delegate_once(ctx, agent, brief, branch, max_depth, max_repeats)
    for n in range(1, brief.repairs + 1):
        if result.status != "partial" or result.error is None or \
                result.error.get("type") != "OutputValidationError":
            break
        repair = dataclasses.replace(brief, repairs=0, inputs={
            **brief.inputs, "previous_answer": result.output if not result.artifacts
            else f"{result.artifacts[0].preview}... ({result.artifacts[0].chars} chars)",
            "validation_errors": result.error["message"]})
        result = await _delegate_once(ctx, agent, repair, f"{branch}~repair{n}",
                                      max_depth, max_repeats=max_repeats + n)
    return result


async def _drive_child(
    runner: Any, child: Agent, child_id: str, started: SubrunStartedPayload, *, fresh: bool,
    parent: dict[str, Any],
) -> RunResult:
    """Drive a child run to an end: started here when it has no journal yet, resumed
    when a process that died started it, or, when it ended before its parent recorded
    so, its recorded outcome rather than another drive."""
    try:
        events = [] if fresh else await runner.store.read(child_id)
    except RunNotFoundError:
        events = []
    state = fold(child_id, events) if events else None
    if state is not None and state.status in _SETTLED:
        return RunResult(run_id=child_id, status=state.status, output=state.output,
                         steps=state.step, usage=state.usage, cost_usd=state.cost_usd,
                         error=None if state.error is None
                         else TetherError.from_dict(state.error))
    if state is not None:
        return await _resume_when_free(runner, child_id, child)
    result: RunResult = await runner.run(child, started.task or "", run_id=child_id,
                                         parent=parent)
    return result


async def _delegate_once(
    ctx: ToolContext, agent: Agent, brief: Brief, branch: str, max_depth: int,
    max_repeats: int,
) -> SubagentResult:
    ex = execution_of(ctx)
    _child_agent(agent, brief, agent.budget)  # a brief naming unknown tools: before anything
    led = await ledger(ex)
    child_id = child_run_id(ctx.idempotency_key, branch)
    if child_id in led.reserved:
        # The same child, already being driven from this call: a second start (or a
        # second driver of one run) is never made.
        raise UsageError(
            f"subagent {agent.name!r} is already being delegated to from call "
            f"{ctx.call_id} on branch {branch!r}",
            hint="give each delegation of one tool call its own branch= name",
        )
    done = led.completed.get(child_id)
    if done is not None:  # finished before a crash: its recorded result, never a re-run
        return SubagentResult.model_validate(done.result)
    runner = ex.runner
    span = call_span(ex, ctx)
    parent_id = ex.state.run_id
    started = led.started.get(child_id)
    fresh = started is None  # no child yet: it starts and ends in this process
    if started is None:
        if led.depth + 1 > max_depth:
            return _refused(agent.name, "DelegationDepthError",
                            f"delegating to {agent.name!r} would nest sub-runs "
                            f"{led.depth + 1} deep; the limit is {max_depth}",
                            "do this subtask here, or raise max_depth")
        digest = brief.digest()
        if led.repeats(agent.name, digest) >= max_repeats:
            return _refused(agent.name, "DelegationLoopError",
                            f"subagent {agent.name!r} was already given this same brief "
                            f"{led.repeats(agent.name, digest)} times in this run",
                            "stop delegating it: use the results you have, change the "
                            "brief, or answer")
        # Calls of one step run at once: a brief without its own budget gets an equal
        # part of what is left between them.
        ways = 1 if brief.budget is not None else len(ex.state.open_calls)
        budget = share(brief.budget or agent.budget, remaining(ex, led, ways=ways),
                       brief.deadline_s)
        if isinstance(budget, str):
            return _refused(agent.name, "BudgetExceededError",
                            f"the parent run has no {budget} left to give subagent "
                            f"{agent.name!r}", "answer with what you have, or resume "
                            "the run with a raised budget", limit=budget)
        started = SubrunStartedPayload(child_run_id=child_id, agent=agent.name,
                                       task=brief.task(), brief_digest=digest,
                                       branch=branch, budget=dataclasses.asdict(budget))
        # Known as started (and reserved) before the commit is awaited, so nothing that
        # runs meanwhile can journal a second start of it. A commit that raises may
        # still have been written (cancelled while the store wrote it): the child stays
        # known as started, so a later attempt looks for it rather than starting it.
        led.started[child_id] = started
        led.reserved[child_id] = budget
        try:
            await ex.commit([ex.event(EventType.SUBRUN_STARTED, ctx.step,
                                      started.dump(), span=span)])
        except BaseException:
            led.reserved.pop(child_id, None)
            raise
    budget = Budget(**(started.budget or {}))
    led.reserved[child_id] = budget
    try:
        child = _child_agent(agent, brief, budget)
        run = await _drive_child(runner, child, child_id, started, fresh=fresh, parent={
            "parent_run_id": parent_id, "depth": led.depth + 1,
            "delegated_by": ctx.call_id, "brief_digest": started.brief_digest,
        })
    finally:
        led.reserved.pop(child_id, None)
    if run.status in (RunStatus.RUNNING, RunStatus.PAUSED):
        # Interrupted with its parent (Runner.interrupt): record nothing and wait to be
        # cancelled, so the parent's call stays open and the resume picks the child up.
        # A child that paused by itself (its lease could not be renewed) pauses the
        # parent the same way, rather than leaving it waiting forever.
        ex.interrupt()
        await asyncio.get_running_loop().create_future()
    # What the child used includes what its own children used: kept by this process
    # for a child driven here from its start, else folded from its journal.
    nested = _rollups.pop(child_id, None)
    if not fresh:  # some of its work may have been done by a process that died
        final = fold(child_id, await runner.store.read(child_id))
        nested = (final.subrun_usage, final.subrun_cost_usd, final.subrun_steps)
    sub_usage, sub_cost, sub_steps = nested or (Usage(), 0.0, 0)
    run = RunResult(run_id=run.run_id, status=run.status, output=run.output,
                    steps=run.steps, usage=run.usage + sub_usage,
                    cost_usd=run.cost_usd + sub_cost, error=run.error)
    result = to_result(agent.name, run, brief)
    completed = SubrunCompletedPayload(
        child_run_id=child_id, agent=agent.name, status=str(run.status),
        output=run.output if len(run.output or "") <= ARTIFACT_CHARS else None,
        result=json.loads(result.model_dump_json()),
        usage=run.usage.model_dump(), cost_usd=run.cost_usd,
        steps=run.steps + sub_steps,
    )
    await ex.commit([ex.event(EventType.SUBRUN_COMPLETED, ctx.step, completed.dump(),
                              span=span)])
    led.completed[child_id] = completed
    if led.depth > 0:  # this run is itself a child: its parent will want the roll-up
        usage, cost, steps = _rollups.get(parent_id, (Usage(), 0.0, 0))
        _rollups[parent_id] = (usage + run.usage, cost + run.cost_usd,
                               steps + (completed.steps or 0))
    return result
