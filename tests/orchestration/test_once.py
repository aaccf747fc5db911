"""A child is started once: two delegations of one call on one branch, at once."""

from __future__ import annotations

import asyncio
import json

from tether.core import EventType, ToolCall
from tether.models import FunctionModel, ModelRequest, ScriptedModel
from tether.orchestration import Brief, delegate
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import ToolContext, tool


async def _slow(request: ModelRequest) -> str:
    await asyncio.sleep(0.05)
    return "done"


SUB = Agent(name="sub", model=FunctionModel(_slow))


@tool(idempotent=True)
async def twice(ctx: ToolContext) -> str:
    """Delegates the same child twice at once."""
    results = await asyncio.gather(
        delegate(ctx, SUB, Brief(objective="x")), delegate(ctx, SUB, Brief(objective="x")),
        return_exceptions=True)
    return json.dumps([type(r).__name__ for r in results])


async def test_one_call_delegating_twice_at_once_on_one_branch_starts_one_child(
    store: SQLiteStore,
) -> None:
    parent = Agent(name="p", model=ScriptedModel([ToolCall.of("twice"), "ok"]), tools=[twice])
    await Runner(store).run(parent, "go", run_id="run_p")
    events = await store.read("run_p")
    [outcome] = [e.payload["content"] for e in events if e.type == EventType.TOOL_RESULT]
    assert sorted(json.loads(outcome)) == ["SubagentResult", "UsageError"]
    assert [e.type for e in events].count(EventType.SUBRUN_STARTED) == 1
    [child] = await store.runs(parent_run_id="run_p")
    assert [e.type for e in await store.read(child.run_id)].count(EventType.RUN_STARTED) == 1
