"""Fan-out: per-branch deadlines while a branch still runs, failures never silent."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

from tether.core import Event, EventType, RunStatus, ToolCall
from tether.models import FunctionModel, ModelRequest, step_of
from tether.orchestration import Branch, Brief, SubagentResult, fan_out
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore
from tether.tools import ToolContext, tool


def _agent(name: str, latency: float) -> Agent:
    async def answer(request: ModelRequest) -> str:
        await asyncio.sleep(latency)
        return f"{name} done"

    return Agent(name=name, model=FunctionModel(answer))


def _parent(branches: list[Branch], **options: float) -> Agent:
    @tool(idempotent=True)
    async def spread(ctx: ToolContext) -> str:
        """Fan out."""
        results = await fan_out(ctx, branches, **options)  # type: ignore[arg-type]
        return json.dumps([r.model_dump(mode="json") for r in results])

    def script(request: ModelRequest) -> str | ToolCall:
        return ToolCall.of("spread") if step_of(request) == 0 else \
            request.messages[-1].content or ""

    return Agent(name="parent", model=FunctionModel(script), tools=[spread],
                 budget=Budget(max_steps=10))


async def test_a_slow_branch_stops_at_its_deadline_and_is_reported(
    store: SQLiteStore,
) -> None:
    branches = [Branch(name="fast", agent=_agent("fast", 0.0), brief=Brief(objective="f")),
                Branch(name="slow", agent=_agent("slow", 30.0), brief=Brief(objective="s"))]
    result = await Runner(store).run(_parent(branches, concurrency=2, timeout_s=0.5),
                                     "go", run_id="run_p")
    fast, slow = (SubagentResult.model_validate(r) for r in json.loads(result.output or ""))
    assert fast.status == "ok" and fast.output == "fast done"
    assert slow.status == "failed" and slow.error is not None
    assert slow.error["limit"] == "max_seconds"
    children = {c.agent: c for c in await store.runs(parent_run_id="run_p")}
    assert children["slow"].status == RunStatus.FAILED
    events = await store.read("run_p")
    shares = {e.payload["branch"]: e.payload["budget"] for e in events
              if e.type == EventType.SUBRUN_STARTED}
    assert shares["slow"]["max_seconds"] <= 0.5
    # Each branch's step share is an equal part of what the parent had left.
    assert shares["slow"]["max_steps"] == shares["fast"]["max_steps"] == (10 - 1 - 1) // 2


async def test_a_branch_that_cannot_start_fails_loudly(store: SQLiteStore) -> None:
    branches = [Branch(name="ok", agent=_agent("a", 0.0), brief=Brief(objective="x")),
                Branch(name="bad", agent=_agent("b", 0.0),
                       brief=Brief(objective="y", tools=("no_such_tool",)))]
    result = await Runner(store).run(_parent(branches), "go", run_id="run_p")
    ok, bad = (SubagentResult.model_validate(r) for r in json.loads(result.output or ""))
    assert ok.status == "ok"
    assert bad.status == "failed" and bad.error is not None
    assert "no_such_tool" in bad.error["message"] and bad.error["hint"]
    # Refused before anything was journaled: no child, no dangling subrun.started.
    events = await store.read("run_p")
    assert [e.payload["branch"] for e in events if e.type == EventType.SUBRUN_STARTED] == [
        "ok"]


async def test_interrupting_the_parent_pauses_its_children_and_resume_finishes(
    store: SQLiteStore,
) -> None:
    branches = [Branch(name=f"b{i}", agent=_agent(f"w{i}", 0.05 if i < 2 else 30.0),
                       brief=Brief(objective=f"o{i}")) for i in range(4)]
    finished: list[str] = []
    two_done = asyncio.Event()

    def watch(events: Sequence[Event]) -> None:
        finished.extend(e.run_id for e in events if e.type == EventType.SUBRUN_COMPLETED)
        if len(finished) >= 2:
            two_done.set()

    runner = Runner(store, observers=[watch])
    task = asyncio.create_task(runner.run(_parent(branches, concurrency=4), "go",
                                          run_id="run_p"))
    await two_done.wait()
    runner.interrupt()
    paused = await task
    assert paused.status == RunStatus.PAUSED
    events = await store.read("run_p")
    # Nothing recorded for the call: it stays open for the resume.
    assert not [e for e in events if e.type in (EventType.TOOL_RESULT, EventType.TOOL_ERROR)]
    children = {c.agent: c.status for c in await store.runs(parent_run_id="run_p")}
    assert children == {"w0": "completed", "w1": "completed", "w2": "paused",
                        "w3": "paused"}
    fast = [Branch(name=b.name, agent=_agent(b.agent.name, 0.0), brief=b.brief)
            for b in branches]
    done = await Runner(store).resume("run_p", _parent(fast, concurrency=4))
    assert done.status == RunStatus.COMPLETED
    results = [SubagentResult.model_validate(r) for r in json.loads(done.output or "")]
    assert [r.output for r in results] == ["w0 done", "w1 done", "w2 done", "w3 done"]
    assert len(await store.runs(parent_run_id="run_p")) == 4
    for child in await store.runs(parent_run_id="run_p"):
        kinds = [e.type for e in await store.read(child.run_id)]
        assert kinds.count(EventType.RUN_STARTED) == 1
        assert kinds.count(EventType.RUN_RESUMED) == (child.agent in ("w2", "w3"))


async def test_default_budgets_share_fairly_between_children_started_together(
    store: SQLiteStore,
) -> None:
    """Default limits everywhere (50 steps): parallel calls of one step, and a plan's
    subtasks, each get an equal part of what the parent has left; none is starved."""
    from tether.orchestration import as_tool, controller

    worker = Agent(name="worker", model=FunctionModel(lambda r: "done"))
    parent = Agent(name="parent", model=FunctionModel(
        lambda r: [ToolCall.of("worker", call_id=f"c{i}", objective=f"job {i}")
                   for i in range(3)] if step_of(r) == 0 else "ok"),
        tools=[as_tool(worker)])
    await Runner(store).run(parent, "go", run_id="run_p")
    shares = [e.payload["budget"]["max_steps"] for e in await store.read("run_p")
              if e.type == EventType.SUBRUN_STARTED]
    # A third of what is left each (a sibling that already finished used one step).
    assert len(shares) == 3 and all(15 <= s <= (50 - 1 - 1) // 3 for s in shares)
    plan = [{"id": f"s{i}", "objective": f"job {i}", "agent": "worker"} for i in range(4)]
    lead = controller("lead", model=FunctionModel(
        lambda r: ToolCall.of("run_plan", subtasks=plan) if step_of(r) == 0 else "ok"),
        agents=[worker])
    await Runner(store).run(lead, "go", run_id="run_q")
    events = await store.read("run_q")
    shares = [e.payload["budget"]["max_steps"] for e in events
              if e.type == EventType.SUBRUN_STARTED]
    assert shares == [(50 - 1 - 1) // 4] * 4
    assert len([e for e in events if e.type == EventType.SUBRUN_COMPLETED
                and e.payload["result"]["status"] == "ok"]) == 4


async def test_a_brief_limits_the_tools_of_a_dynamic_toolset_too(store: SQLiteStore) -> None:
    """A brief that names tools filters toolsets that list theirs at run time as well,
    instead of dropping them (or letting all of them through)."""
    from tether.tools import BaseToolset, FunctionToolset, StepContext, ToolDef

    @tool
    def lookup(q: str) -> str:
        """Look up."""
        return f"found {q}"

    @tool
    def wipe() -> str:
        """Wipe everything."""
        raise AssertionError("a tool the brief did not allow was called")

    class Dynamic(BaseToolset):
        def __init__(self) -> None:
            self.inner = FunctionToolset([lookup, wipe])

        async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
            return await self.inner.list_tools(ctx)

        async def call(self, name: str, arguments: dict[str, object],
                       ctx: ToolContext) -> object:
            return await self.inner.call(name, arguments, ctx)

    offered: list[list[str]] = []

    def script(request: ModelRequest) -> str | ToolCall:
        offered.append([t.name for t in request.tools])
        if step_of(request) == 0:
            return ToolCall.of("lookup", q="x")
        return request.messages[-1].content or ""

    child = Agent(name="child", model=FunctionModel(script), tools=[Dynamic()])
    branches = [Branch(name="b", agent=child, brief=Brief(objective="o", tools=("lookup",)))]
    result = await Runner(store).run(_parent(branches), "go", run_id="run_p")
    (only,) = (SubagentResult.model_validate(r) for r in json.loads(result.output or ""))
    assert only.status == "ok" and only.output == "found x"
    assert offered and all(names == ["lookup"] for names in offered)
