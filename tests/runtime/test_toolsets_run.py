"""Toolsets in the step loop: tools asked for at every step, a lifecycle per drive,
approval and deferral as stops (not failures), structured results in the journal."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from types import TracebackType
from typing import Any, Self

import pytest

from tether.core import (
    ApprovalRequired,
    Artifact,
    CallDeferred,
    EventType,
    FatalModelError,
    RunStatus,
    ToolCall,
    ToolResult,
    UsageError,
)
from tether.models import FunctionModel, ModelRequest, ScriptedModel, step_of
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import (
    ApprovalRequiredToolset,
    BaseToolset,
    FilteredToolset,
    FunctionToolset,
    PrefixedToolset,
    StepContext,
    ToolContext,
    ToolDef,
    tool,
)


@tool(idempotent=True)
def alpha() -> str:
    """Alpha."""
    return "a"


@tool(idempotent=True)
def beta() -> str:
    """Beta."""
    return "b"


class Shifting(BaseToolset):
    """Offers alpha at odd steps, beta at even ones; counts its lifecycle."""

    def __init__(self, *, fail_enter: bool = False, fail_list_at: int | None = None) -> None:
        self.inner = FunctionToolset([alpha, beta])
        self.log: list[str] = []
        self.fail_enter = fail_enter
        self.fail_list_at = fail_list_at

    async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
        self.log.append(f"list {ctx.step}")
        if ctx.step == self.fail_list_at:
            raise ConnectionError("the tool server went away")
        keep = "alpha" if ctx.step % 2 else "beta"
        return [d for d in await self.inner.list_tools(ctx) if d.name == keep]

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        self.log.append(f"call {name}")
        return await self.inner.call(name, arguments, ctx)

    async def __aenter__(self) -> Self:
        self.log.append("enter")
        if self.fail_enter:
            raise ConnectionError("cannot connect")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        self.log.append("exit")


def offered(requests: list[ModelRequest]) -> list[list[str]]:
    return [[t.name for t in r.tools] for r in requests]


async def test_the_tools_offered_are_asked_of_the_toolset_at_every_step(
    store: SQLiteStore,
) -> None:
    requests: list[ModelRequest] = []
    script: list[Any] = [ToolCall.of("beta"), ToolCall.of("beta"), ToolCall.of("alpha"),
                         "done"]

    def answer(request: ModelRequest) -> Any:
        requests.append(request)
        return script[step_of(request)]

    toolset = Shifting()
    agent = Agent(name="shift", model=FunctionModel(answer), tools=[toolset])
    result = await Runner(store).run(agent, "go")
    assert result.status == RunStatus.COMPLETED
    assert offered(requests) == [["alpha"], ["beta"], ["alpha"], ["beta"]]
    events = await store.read(result.run_id)
    # Step 1 offered alpha only: the call of beta is the model's mistake, told to it.
    (error,) = [e for e in events if e.type == EventType.TOOL_ERROR]
    assert error.step == 1 and "no tool named 'beta'" in error.payload["content"]
    assert [e.payload["tool"] for e in events if e.type == EventType.TOOL_RESULT] == [
        "beta", "alpha"]
    # The journal records each change of the tools offered.
    started = events[0].payload["tools"]
    assert [t["name"] for t in started] == ["beta"]  # listed at step 0
    changes = [e.payload.get("tools") for e in events if e.type == EventType.MODEL_REQUEST]
    assert changes == [["alpha"], ["beta"], ["alpha"], ["beta"]]
    assert toolset.log[0] == "enter" and toolset.log[-1] == "exit"
    assert toolset.log.count("enter") == toolset.log.count("exit") == 1


async def test_a_wrapper_filters_and_the_model_cannot_call_what_it_hides(
    store: SQLiteStore,
) -> None:
    effects: list[str] = []

    @tool
    def drop_table(name: str) -> str:
        """Drop a table."""
        effects.append(name)
        return "dropped"

    hidden = FilteredToolset(FunctionToolset([alpha, drop_table]),
                             lambda step, d: not d.name.startswith("drop"))
    seen: list[list[str]] = []

    def answer(request: ModelRequest) -> Any:
        seen.append([t.name for t in request.tools])
        return [ToolCall.of("drop_table", name="users"), "ok"][step_of(request)]

    result = await Runner(store).run(Agent(name="f", model=FunctionModel(answer),
                                           tools=[hidden]), "go")
    assert result.status == RunStatus.COMPLETED
    assert seen == [["alpha"], ["alpha"]] and effects == []


async def test_prefixed_tools_are_journaled_under_the_name_the_model_saw(
    store: SQLiteStore,
) -> None:
    agent = Agent(name="p", tools=[PrefixedToolset(FunctionToolset([alpha]), "gh")],
                  model=ScriptedModel([ToolCall.of("gh_alpha"), "done"]))
    result = await Runner(store).run(agent, "go")
    events = await store.read(result.run_id)
    assert result.status == RunStatus.COMPLETED
    names = {e.payload["tool"] for e in events
             if e.type in (EventType.TOOL_INTENT, EventType.TOOL_RESULT)}
    assert names == {"gh_alpha"}
    assert [t["name"] for t in events[0].payload["tools"]] == ["gh_alpha"]


async def test_the_lifecycle_ends_with_the_drive_however_it_ends(store: SQLiteStore) -> None:
    # Failed: the model fails for good.
    def broken(request: ModelRequest) -> Any:
        raise FatalModelError("no such model", provider="x", model="y")

    toolset = Shifting()
    failed = await Runner(store).run(Agent(name="f", model=FunctionModel(broken),
                                           tools=[toolset]), "go")
    assert failed.status == RunStatus.FAILED
    assert toolset.log.count("enter") == toolset.log.count("exit") == 1

    # Interrupted while a tool runs: paused, exited; the resume enters it again.
    started = asyncio.Event()

    @tool(idempotent=True)
    async def wait_a_bit(ctx: ToolContext) -> str:
        """Waits."""
        started.set()
        await asyncio.sleep(0.2)
        return "waited"

    toolset = Shifting()
    agent = Agent(name="i", tools=[toolset, wait_a_bit],
                  model=ScriptedModel([ToolCall.of("wait_a_bit"), "done"]))
    runner = Runner(store)
    task = asyncio.create_task(runner.run(agent, "go"))
    await started.wait()
    runner.interrupt()
    paused = await task
    assert paused.status == RunStatus.PAUSED
    assert toolset.log.count("enter") == toolset.log.count("exit") == 1
    resumed = await runner.resume(paused.run_id, agent)
    assert resumed.status == RunStatus.COMPLETED
    assert toolset.log.count("enter") == toolset.log.count("exit") == 2

    # A toolset that cannot start: nothing is journaled, the error says why.
    toolset = Shifting(fail_enter=True)
    with pytest.raises(ConnectionError):
        await Runner(store).run(Agent(name="e", model=ScriptedModel(["x"]), tools=[toolset]),
                                "go", run_id="run_enter_fails")
    assert toolset.log == ["enter"]
    assert [r.run_id for r in await store.runs()].count("run_enter_fails") == 0

    # A toolset that cannot list its tools mid-run: the run fails, saying so, and exits it.
    toolset = Shifting(fail_list_at=2)
    listing = await Runner(store).run(Agent(name="l", tools=[toolset], model=ScriptedModel(
        [ToolCall.of("alpha"), "done"])), "go")
    assert listing.status == RunStatus.FAILED and listing.error is not None
    assert "failed to list its tools at step 2" in listing.error.message
    assert toolset.log[-1] == "exit"


async def test_two_toolsets_offering_one_name_are_refused(store: SQLiteStore) -> None:
    with pytest.raises(Exception, match="more than one tool named alpha"):  # known at once
        Agent(name="dup", tools=[FunctionToolset([alpha]), alpha])
    # Known only when the dynamic one offers it (step 1): the run fails, saying so.
    agent = Agent(name="dup", tools=[Shifting(), FunctionToolset([alpha])],
                  model=ScriptedModel(["x"]))
    result = await Runner(store).run(agent, "go")
    assert result.status == RunStatus.FAILED and result.error is not None
    assert "offer a tool named 'alpha' at step 1" in result.error.message
    assert "PrefixedToolset" in (result.error.hint or "")


def _pay_agent(effects: list[int], *, above: int = 100) -> Agent:
    @tool
    def pay(cents: int) -> str:
        """Pay (not idempotent)."""
        effects.append(cents)
        return f"paid {cents}"

    gated = ApprovalRequiredToolset(FunctionToolset([pay]),
                                    requires=lambda ctx, args: args["cents"] > above)
    script = [[ToolCall.of("pay", cents=5), ToolCall.of("pay", cents=500)], "all paid"]
    return Agent(name="payer", tools=[gated], model=ScriptedModel(script))


async def test_approval_stops_the_run_and_an_approved_call_runs_exactly_once(
    store: SQLiteStore,
) -> None:
    effects: list[int] = []
    agent = _pay_agent(effects)
    runner = Runner(store)
    first = await runner.run(agent, "pay both")
    assert first.status == RunStatus.NEEDS_ATTENTION and first.error is not None
    assert effects == [5]  # the small one ran; the large one did not start
    events = await store.read(first.run_id)
    (attention,) = [e for e in events if e.type == EventType.RUN_NEEDS_ATTENTION]
    (held,) = attention.payload["calls"]
    assert held["awaiting"] == "approval" and held["arguments"] == {"cents": 500}
    assert attention.payload["error"]["type"] == "ApprovalRequired"
    assert "tether approve" in (first.error.hint or "")
    assert EventType.TOOL_ERROR not in [e.type for e in events]  # not a failure

    # Resumed without a decision: asked again, still not run.
    again = await runner.resume(first.run_id, agent)
    assert again.status == RunStatus.NEEDS_ATTENTION and effects == [5]

    with pytest.raises(UsageError, match="no call waiting for approval"):
        await runner.approve(first.run_id, "call_nope")
    await runner.approve(first.run_id, held["call_id"], reason="budget ok")
    with pytest.raises(UsageError):  # decided once
        await runner.approve(first.run_id, held["call_id"])
    done = await runner.resume(first.run_id, agent)
    assert done.status == RunStatus.COMPLETED and done.output == "all paid"
    assert effects == [5, 500]
    assert (await runner.resume(first.run_id, agent)).status == RunStatus.COMPLETED
    assert effects == [5, 500]
    decisions = [e.payload for e in await store.read(first.run_id)
                 if e.type == EventType.DECISION]
    assert [(d["decision"], d["chosen"], d["reason"]) for d in decisions] == [
        ("approval", "approve", "budget ok")]


async def test_a_denied_call_never_runs_and_the_model_is_told(store: SQLiteStore) -> None:
    effects: list[int] = []
    prompts: list[ModelRequest] = []

    @tool
    def pay(cents: int) -> str:
        """Pay."""
        effects.append(cents)
        return "paid"

    def answer(request: ModelRequest) -> Any:
        prompts.append(request)
        return [ToolCall.of("pay", cents=900), "understood"][step_of(request)]

    agent = Agent(name="d", model=FunctionModel(answer),
                  tools=[ApprovalRequiredToolset(FunctionToolset([pay]))])
    runner = Runner(store)
    first = await runner.run(agent, "pay")
    call_id = first.error.details["message"].split("call ")[1].split(")")[0]  # type: ignore[union-attr]
    await runner.approve(first.run_id, call_id, deny=True, reason="too much")
    done = await runner.resume(first.run_id, agent)
    assert done.status == RunStatus.COMPLETED and effects == []
    told = prompts[-1].messages[-1]
    assert told.role == "tool" and "denied" in (told.content or "")
    assert "too much" in (told.content or "")


async def test_a_tool_may_ask_for_approval_itself_and_a_deferred_call_waits_for_its_result(
    store: SQLiteStore,
) -> None:
    runs: list[str] = []

    @tool
    def wire(amount: int, ctx: ToolContext) -> str:
        """Wire money; large amounts need a human."""
        if amount > 1000 and not ctx.approved:
            raise ApprovalRequired(f"wiring {amount} needs sign-off")
        runs.append(f"wire {amount}")
        return "wired"

    @tool
    def review(doc: str) -> str:
        """Hand a document to a human reviewer; the verdict comes later."""
        runs.append(f"review {doc}")
        raise CallDeferred("sent to the legal team")

    agent = Agent(name="x", tools=[wire, review], model=ScriptedModel([
        [ToolCall.of("wire", amount=5000, call_id="w"),
         ToolCall.of("review", doc="nda", call_id="r")], "finished"]))
    runner = Runner(store)
    first = await runner.run(agent, "go")
    assert first.status == RunStatus.NEEDS_ATTENTION
    events = await store.read(first.run_id)
    (attention,) = [e for e in events if e.type == EventType.RUN_NEEDS_ATTENTION]
    assert {c["call_id"]: c["awaiting"] for c in attention.payload["calls"]} == {
        "w": "approval", "r": "result"}
    assert "needs a human's approval" in attention.payload["error"]["message"]
    assert runs == ["review nda"]
    with pytest.raises(UsageError):  # a deferred call is resolved, not approved
        await runner.approve(first.run_id, "r")
    await runner.approve(first.run_id, "w")
    second = await runner.resume(first.run_id, agent)
    # The deferred call is never run again; it still waits for its result.
    assert second.status == RunStatus.NEEDS_ATTENTION
    assert runs == ["review nda", "wire 5000"]
    await runner.resolve(first.run_id, "r", result="approved with changes")
    done = await runner.resume(first.run_id, agent)
    assert done.status == RunStatus.COMPLETED and runs == ["review nda", "wire 5000"]


async def test_structured_results_and_artifacts_are_journaled(store: SQLiteStore) -> None:
    @tool(idempotent=True)
    def stats() -> dict[str, Any]:
        """Stats."""
        return {"rows": 3, "names": ["a", "é"]}

    @tool(idempotent=True)
    def report() -> ToolResult:
        """A large report."""
        return ToolResult(value={"pages": 40}, artifacts=(Artifact(
            uri="file:///reports/q3.pdf", media_type="application/pdf", size_bytes=12_345,
            summary="Q3 report"),))

    prompts: list[ModelRequest] = []

    def answer(request: ModelRequest) -> Any:
        prompts.append(request)
        return [[ToolCall.of("stats"), ToolCall.of("report")], "ok"][step_of(request)]

    result = await Runner(store).run(Agent(name="s", model=FunctionModel(answer),
                                           tools=[stats, report]), "go")
    assert result.status == RunStatus.COMPLETED
    outcome = {e.payload["tool"]: e.payload for e in await store.read(result.run_id)
               if e.type == EventType.TOOL_RESULT}
    # Stored once: the text the model saw is the value's JSON.
    assert outcome["stats"]["structured"] is True and "value" not in outcome["stats"]
    assert json.loads(outcome["stats"]["content"]) == {"rows": 3, "names": ["a", "é"]}
    assert outcome["stats"]["content"] == '{"rows":3,"names":["a","é"]}'
    assert outcome["report"]["value"] == {"pages": 40}
    assert outcome["report"]["artifacts"] == [{
        "uri": "file:///reports/q3.pdf", "media_type": "application/pdf",
        "size_bytes": 12345, "summary": "Q3 report"}]
    seen = [m.content for m in prompts[-1].messages if m.role == "tool"]
    assert seen[0] == '{"rows":3,"names":["a","é"]}'
    assert seen[1] is not None and "file:///reports/q3.pdf" in seen[1]
