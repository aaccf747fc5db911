"""Attacker's review (issue 19): loop detection and nested step budgets."""

from __future__ import annotations

import json

from tether.core import EventType, ToolCall
from tether.models import FunctionModel, ModelRequest, ScriptedModel, step_of
from tether.orchestration import Brief, delegate
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore
from tether.tools import ToolContext, tool

SUB = Agent(name="sub", model=FunctionModel(lambda request: "done"))

#: The same brief, only its capitalisation and whitespace changed.
VARIANTS = ["Search alpha", "search alpha", "SEARCH ALPHA", "  search   alpha ",
            "Search\talpha\n", "sEaRcH alpha"]


@tool(idempotent=True)
async def again(ctx: ToolContext) -> str:
    """Delegates the same job, worded a little differently each time."""
    out = []
    for n, objective in enumerate(VARIANTS):
        r = await delegate(ctx, SUB, Brief(objective=objective), branch=str(n))
        out.append(r.status if r.error is None else r.error["type"])
    return json.dumps(out)


async def test_loop_detection_sees_the_same_brief_in_other_case_and_spacing(
    store: SQLiteStore,
) -> None:
    parent = Agent(name="p", model=ScriptedModel([ToolCall.of("again"), "ok"]),
                   tools=[again])
    await Runner(store).run(parent, "go", run_id="run_p")
    events = await store.read("run_p")
    [content] = [e.payload["content"] for e in events if e.type == EventType.TOOL_RESULT]
    outcomes = json.loads(content)
    assert outcomes[:3] == ["ok"] * 3
    assert outcomes[3:] == ["DelegationLoopError"] * 3, outcomes
    assert [e.type for e in events].count(EventType.SUBRUN_STARTED) == 3


@tool
async def noop() -> str:
    """Does nothing."""
    return "nothing"


def _busy(request: ModelRequest) -> ToolCall:
    return ToolCall.of("noop")


@tool(idempotent=True)
async def hand_off(ctx: ToolContext) -> str:
    """Delegates a subtask that works until its step share is spent."""
    child = Agent(name="worker", model=FunctionModel(_busy), tools=[noop])
    r = await delegate(ctx, child, Brief(objective="work"))
    return r.model_dump_json()


async def test_children_steps_count_against_the_parents_step_limit(
    store: SQLiteStore,
) -> None:
    def lead(request: ModelRequest) -> ToolCall | str:
        return ToolCall.of("hand_off") if step_of(request) == 0 else ToolCall.of("noop")

    parent = Agent(name="p", model=FunctionModel(lead), tools=[hand_off, noop],
                   budget=Budget(max_steps=6))
    result = await Runner(store).run(parent, "go", run_id="run_p")
    [done] = [e.payload for e in await store.read("run_p")
              if e.type == EventType.SUBRUN_COMPLETED]
    child_steps = done["steps"]
    assert child_steps >= 1
    # One model call may overshoot a limit (checked before each call), not more.
    assert result.steps + child_steps <= 6 + 1, (result.steps, child_steps)
