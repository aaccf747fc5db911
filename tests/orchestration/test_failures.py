"""Failing branches, replans, spent budget shares, loops, depth, and the team doctor."""

from __future__ import annotations

import json

from tether.core import EventType, FatalModelError, Message, RunStatus, ToolCall
from tether.models import FunctionModel, ModelRequest, ScriptedModel, step_of
from tether.orchestration import (
    as_tool,
    child_run_id,
    controller,
    diagnose_team,
)
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .team import PLAN, _objective, _sub, _task


def _flaky(fail_until: int) -> FunctionModel:
    """A subagent that fails on 'search beta' until the brief says attempt N."""

    async def answer(request: ModelRequest) -> str:
        task = _task(request)
        if "search beta" in task:
            attempt = 1
            if "(Attempt " in task:
                attempt = int(task.split("(Attempt ", 1)[1].split(";", 1)[0])
            if attempt < fail_until:
                raise FatalModelError("beta's source is down", provider="scripted")
        return await _sub(request)

    return FunctionModel(answer)


def _team(model: FunctionModel, max_replans: int) -> Agent:
    searcher = Agent(name="searcher", model=model, budget=Budget(max_steps=3))
    writer = Agent(name="writer", model=FunctionModel(_sub), budget=Budget(max_steps=3))

    def lead(request: ModelRequest) -> str | ToolCall:
        if step_of(request) == 0:
            return ToolCall.of("run_plan", subtasks=PLAN)
        result = json.loads(request.messages[-1].content or "{}")
        return json.dumps({k: result.get(k) for k in ("status", "failed", "error")})

    return controller("lead", model=FunctionModel(lead), agents=[searcher, writer],
                      max_replans=max_replans)


async def test_a_failing_branch_is_replanned_alone(store: SQLiteStore) -> None:
    result = await Runner(store).run(_team(_flaky(fail_until=2), 2), "go", run_id="run_p")
    assert result.status == RunStatus.COMPLETED
    assert json.loads(result.output or "")["status"] == "ok"
    events = await store.read("run_p")
    key = next(e for e in events if e.type == EventType.TOOL_INTENT).payload[
        "idempotency_key"]
    children = {r.run_id: r for r in await store.runs(parent_run_id="run_p")}
    # b failed once and was replanned; nothing else was run again.
    assert set(children) == {child_run_id(key, b) for b in
                             ("a", "b", "c", "d", "b~replan1")}
    assert children[child_run_id(key, "b")].status == RunStatus.FAILED
    replans = [e.payload for e in events if e.type == EventType.DECISION
               and e.payload.get("decision") == "replan"]
    assert [(p["subtask"], p["chosen"]) for p in replans] == [("b", "replan")]
    assert "beta's source is down" in replans[0]["reason"]


async def test_a_branch_that_keeps_failing_is_named(store: SQLiteStore) -> None:
    result = await Runner(store).run(_team(_flaky(fail_until=99), 1), "go", run_id="run_p")
    assert result.status == RunStatus.COMPLETED
    report = json.loads(result.output or "")
    assert report["status"] == "partial"
    assert report["failed"] == ["b", "d"]  # d needs b: never started
    assert "b (failed" in report["error"] and "beta's source is down" in report["error"]
    assert "not started: it needs ['b']" in report["error"]
    children = await store.runs(parent_run_id="run_p")
    # a, c ran once; b and its one replan failed; d was never started.
    assert sorted(c.status for c in children) == ["completed", "completed", "failed",
                                                  "failed"]


def _looper() -> Agent:
    @tool(inline=True)
    def think(note: str) -> str:
        """Think."""
        return "thought " * 50

    def script(request: ModelRequest) -> ToolCall:
        return ToolCall.of("think", note="x" * 200)

    return Agent(name="looper", model=FunctionModel(script), tools=[think],
                 budget=Budget(max_steps=2))


def _report(request: ModelRequest) -> str:
    last = request.messages[-1]
    return last.content or "" if last.role == "tool" else "?"


async def test_a_child_that_spends_its_share_stops_and_the_parent_reports_it(
    store: SQLiteStore,
) -> None:
    parent = Agent(name="parent", model=FunctionModel(
        lambda r: ToolCall.of("looper", objective="loop") if step_of(r) == 0
        else _report(r)), tools=[as_tool(_looper())])
    result = await Runner(store).run(parent, "go", run_id="run_p")
    assert result.status == RunStatus.COMPLETED
    sub = json.loads(result.output or "")
    assert sub["status"] == "failed" and sub["error"]["limit"] == "max_steps"
    assert "ended failed" in sub["error"]["message"]
    [child] = await store.runs(parent_run_id="run_p")
    assert child.status == RunStatus.FAILED
    failed = (await store.read(child.run_id))[-1]
    assert failed.type == EventType.RUN_FAILED and failed.payload["reason"] == \
        "budget_exceeded"


async def test_children_draw_from_the_parents_budget(store: SQLiteStore) -> None:
    """The child's share is what the parent has left; what it used counts for the
    parent, which stops on its own budget instead of going on."""
    looper = _looper()
    loose = Agent(name="looper", model=looper.model, tools=looper.tools,
                  budget=Budget(max_steps=None))
    parent = Agent(name="parent", model=FunctionModel(
        lambda r: ToolCall.of("looper", objective="loop")), tools=[as_tool(loose)],
        budget=Budget(max_steps=None, max_output_tokens=300))
    result = await Runner(store).run(parent, "go", run_id="run_p")
    assert result.status == RunStatus.FAILED
    assert result.error is not None and result.error.details["limit"] == "max_output_tokens"
    children = await store.runs(parent_run_id="run_p")
    events = await store.read("run_p")
    shares = [e.payload["budget"]["max_output_tokens"] for e in events
              if e.type == EventType.SUBRUN_STARTED]
    used_by_children = 0
    own = 0
    for e in events:
        if e.type == EventType.SUBRUN_STARTED:
            assert e.payload["budget"]["max_output_tokens"] == 300 - own - used_by_children
        elif e.type == EventType.SUBRUN_COMPLETED:
            used_by_children += e.payload["usage"]["output_tokens"]
        elif e.type == EventType.MODEL_RESPONSE:
            own += e.payload["usage"]["output_tokens"]
    assert len(shares) == len(children) >= 1
    # Overshoot is bounded by one call each (limits are checked before each call).
    assert own + used_by_children < 300 + 200


async def test_a_delegation_loop_is_stopped_and_found(store: SQLiteStore) -> None:
    worker = Agent(name="worker", model=FunctionModel(_sub))
    parent = Agent(name="parent", model=ScriptedModel(
        [ToolCall.of("worker", objective="search same")] * 5 + ["gave up"]),
        tools=[as_tool(worker)])
    result = await Runner(store).run(parent, "go", run_id="run_p")
    assert result.status == RunStatus.COMPLETED
    children = await store.runs(parent_run_id="run_p")
    assert len(children) == 3  # the 4th and 5th delegations were refused
    events = await store.read("run_p")
    refused = [json.loads(e.payload["content"]) for e in events
               if e.type == EventType.TOOL_RESULT][3:]
    assert [r["error"]["type"] for r in refused] == ["DelegationLoopError"] * 2
    assert all("child_run_id" not in r for r in refused)
    kinds = [f["kind"] for f in await diagnose_team(store, "run_p")]
    assert "delegation_loop" in kinds


async def test_depth_is_limited(store: SQLiteStore) -> None:
    leaf = Agent(name="leaf", model=FunctionModel(_sub))
    middle = Agent(name="middle", model=FunctionModel(
        lambda r: ToolCall.of("leaf", objective="deeper") if step_of(r) == 0
        else _report(r)), tools=[as_tool(leaf, max_depth=1)])
    parent = Agent(name="parent", model=FunctionModel(
        lambda r: ToolCall.of("middle", objective="go down") if step_of(r) == 0
        else _report(r)), tools=[as_tool(middle)])
    result = await Runner(store).run(parent, "go", run_id="run_p")
    sub = json.loads(result.output or "")
    inner = json.loads(sub["output"])
    assert inner["error"]["type"] == "DelegationDepthError"
    [mid] = await store.runs(parent_run_id="run_p")
    assert await store.runs(parent_run_id=mid.run_id) == []


async def test_the_doctor_finds_duplicate_and_unused_work(store: SQLiteStore) -> None:
    worker = Agent(name="worker", model=FunctionModel(_sub))
    parent = Agent(name="parent", model=ScriptedModel([
        [ToolCall.of("worker", call_id="c1", objective="search delta"),
         ToolCall.of("worker", call_id="c2", objective="search delta")],
        "I answer without looking: nothing to report",
    ]), tools=[as_tool(worker)])
    await Runner(store).run(parent, "go", run_id="run_p")
    found = await diagnose_team(store, "run_p")
    kinds = sorted(f["kind"] for f in found)
    assert kinds == ["duplicate_subrun", "unused_subrun_output", "unused_subrun_output"]
    # A parent that uses its child's answer draws no unused-output finding.
    used = Agent(name="parent", model=FunctionModel(
        lambda r: ToolCall.of("worker", objective="search epsilon") if step_of(r) == 0
        else f"The worker {_report(r)}"), tools=[as_tool(worker)])
    await Runner(store).run(used, "go", run_id="run_q")
    assert await diagnose_team(store, "run_q") == []


async def test_a_brief_carries_no_parent_history(store: SQLiteStore) -> None:
    seen: list[list[Message]] = []

    def child(request: ModelRequest) -> str:
        seen.append(list(request.messages))
        return "ok"

    worker = Agent(name="worker", instructions="Work.", model=FunctionModel(child))
    parent = Agent(name="parent", instructions="SECRET-PARENT-PROMPT", model=ScriptedModel(
        [ToolCall.of("worker", objective="do x", inputs={"k": 1}), "done"]),
        tools=[as_tool(worker)])
    await Runner(store).run(parent, "PARENT-TASK", run_id="run_p")
    [messages] = seen
    text = " ".join(m.content or "" for m in messages)
    assert "SECRET-PARENT-PROMPT" not in text and "PARENT-TASK" not in text
    assert _objective(messages[-1].content or "") == "do x" and '"k": 1' in text


async def test_the_team_reviewer_journals_findings_when_the_run_stops(
    store: SQLiteStore,
) -> None:
    from tether.orchestration import team_reviewer

    worker = Agent(name="worker", model=FunctionModel(_sub))
    parent = Agent(name="parent", model=ScriptedModel(
        [ToolCall.of("worker", objective="search same")] * 3 + ["gave up"]),
        tools=[as_tool(worker)])
    await Runner(store, reviewers=[team_reviewer]).run(parent, "go", run_id="run_p")
    findings = [e.payload for e in await store.read("run_p")
                if e.type == EventType.FINDING]
    assert "delegation_loop" in [f["kind"] for f in findings]


async def test_grandchildren_count_against_the_grandparent(store: SQLiteStore) -> None:
    leaf = Agent(name="leaf", model=FunctionModel(lambda r: "leaf " * 100))
    middle = Agent(name="middle", model=FunctionModel(
        lambda r: ToolCall.of("leaf", objective="deeper") if step_of(r) == 0
        else "middle done"), tools=[as_tool(leaf)])
    parent = Agent(name="parent", model=FunctionModel(
        lambda r: ToolCall.of("middle", objective="go down") if step_of(r) == 0
        else "parent done"), tools=[as_tool(middle)])
    await Runner(store).run(parent, "go", run_id="run_p")
    [mid] = await store.runs(parent_run_id="run_p")
    [low] = await store.runs(parent_run_id=mid.run_id)
    own = {}
    for run_id in (mid.run_id, low.run_id):
        own[run_id] = sum(e.payload["usage"].get("output_tokens", 0)
                          for e in await store.read(run_id)
                          if e.type == EventType.MODEL_RESPONSE)
    [done] = [e.payload for e in await store.read("run_p")
              if e.type == EventType.SUBRUN_COMPLETED]
    assert own[low.run_id] >= 100
    assert done["usage"]["output_tokens"] == own[mid.run_id] + own[low.run_id]
    assert done["steps"] == 3  # the middle's two steps and the leaf's one
