"""Attacker's review (issue 19): a plan whose replanner raises."""

from __future__ import annotations

import asyncio
import json

from tether.core import EventType, FatalModelError, RunStatus, ToolCall, UsageError
from tether.models import FunctionModel, ModelRequest, step_of
from tether.orchestration import Brief, SubagentResult, Subtask, controller, delegate
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import ToolContext, tool

from .team import _task


async def _work(request: ModelRequest) -> str:
    task = _task(request)
    if "fail" in task:
        raise FatalModelError("the source is down", provider="scripted")
    await asyncio.sleep(0.5)
    return "slow result"


def _broken_replanner(subtask: Subtask, result: SubagentResult, attempt: int) -> Subtask:
    raise RuntimeError("the replanner's own model is down")


def _lead(request: ModelRequest) -> str | ToolCall:
    if step_of(request) == 0:
        return ToolCall.of("run_plan", subtasks=[
            {"id": "a", "objective": "fail now", "agent": "w"},
            {"id": "b", "objective": "slow work", "agent": "w"}])
    return request.messages[-1].content or "no result"


async def test_a_raising_replanner_leaves_no_sibling_running_and_names_the_branch(
    store: SQLiteStore,
) -> None:
    worker = Agent(name="w", model=FunctionModel(_work))
    lead = controller("lead", model=FunctionModel(_lead), agents=[worker],
                      replanner=_broken_replanner)
    result = await Runner(store).run(lead, "go", run_id="run_p")
    assert result.status == RunStatus.COMPLETED
    events = await store.read("run_p")
    started = {e.payload["child_run_id"] for e in events
               if e.type == EventType.SUBRUN_STARTED}
    completed = {e.payload["child_run_id"] for e in events
                 if e.type == EventType.SUBRUN_COMPLETED}
    # The parent ended: none of its children may still be running unrecorded.
    assert started == completed, "children started but never collected by the parent"
    for child in await store.runs(parent_run_id="run_p"):
        assert child.status != RunStatus.RUNNING, child.run_id
    answer = json.loads(result.output or "{}")
    assert answer["status"] == "partial" and answer["failed"] == ["a"]
    assert "replanner" in answer["results"]["a"]["error"]["message"]


async def _beta_fails_once(request: ModelRequest) -> str:
    task = _task(request)
    if "search beta" in task and "(Attempt " not in task:
        raise FatalModelError("beta's source is down", provider="scripted")
    return "found " + task.split("\n", 1)[0].removeprefix("Objective: search ")


def _lead_named(request: ModelRequest) -> str | ToolCall:
    # A model picks subtask ids; one of them is spelled like another's replan branch.
    if step_of(request) == 0:
        return ToolCall.of("run_plan", subtasks=[
            {"id": "b", "objective": "search beta", "agent": "w"},
            {"id": "b~replan1", "objective": "search gamma", "agent": "w"}])
    return request.messages[-1].content or "no result"


async def test_a_subtask_named_like_a_replan_branch_never_gets_anothers_result(
    store: SQLiteStore,
) -> None:
    worker = Agent(name="w", model=FunctionModel(_beta_fails_once))
    lead = controller("lead", model=FunctionModel(_lead_named), agents=[worker])
    result = await Runner(store).run(lead, "go", run_id="run_p")
    try:
        answer = json.loads(result.output or "{}")
    except ValueError:  # the retry message the model was given instead
        answer = {}
    if "results" not in answer:  # the plan was refused as invalid: nothing was mixed up
        assert "~" in (result.output or "")
        return
    results = answer["results"]
    assert results["b"].get("output") != "found gamma", results
    ids = [r.get("child_run_id") for r in results.values()]
    assert len(set(ids)) == len(ids), "two subtasks report one child run's result"


async def test_a_branch_named_like_a_repair_is_refused_before_any_child(
    store: SQLiteStore,
) -> None:
    """``branch="x~repair1"`` would be the child id of ``x``'s first repair: refused."""
    worker = Agent(name="w", model=FunctionModel(lambda request: "done"))

    @tool(idempotent=True)
    async def hand_off(ctx: ToolContext) -> str:
        """Delegate on a repair-like branch."""
        try:
            await delegate(ctx, worker, Brief(objective="o"), branch="x~repair1")
        except UsageError as e:
            return f"refused: {e.hint}"
        return "started"

    def script(request: ModelRequest) -> str | ToolCall:
        return ToolCall.of("hand_off") if step_of(request) == 0 else \
            request.messages[-1].content or ""

    result = await Runner(store).run(Agent(name="p", model=FunctionModel(script),
                                           tools=[hand_off]), "go", run_id="run_p")
    assert (result.output or "").startswith("refused: '~repair' marks")
    assert await store.runs(parent_run_id="run_p") == []
