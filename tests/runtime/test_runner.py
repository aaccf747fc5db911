from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tether.core import EventType, ModelRetry, RunStatus, ToolCall, UsageError
from tether.models import FunctionModel, ModelRequest, ScriptedModel
from tether.runtime import Agent, Budget, Runner, fold
from tether.store import SQLiteStore
from tether.tools import ToolContext, tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def run_events(store: SQLiteStore, agent: Agent, task: str = "go") -> tuple:  # type: ignore[type-arg]
    result = await Runner(store).run(agent, task)
    return result, await store.read(result.run_id)


async def test_a_run_completes_and_folds_to_the_same_state(store: SQLiteStore) -> None:
    agent = Agent(name="calc", instructions="Be brief.",
                  model=ScriptedModel([ToolCall.of("add", a=2, b=3), "5"]), tools=[add])
    result, events = await run_events(store, agent)
    assert (result.status, result.output, result.steps) == (RunStatus.COMPLETED, "5", 2)
    assert [e.type for e in events] == [
        "run.started", "model.request", "model.response", "tool.intent", "tool.result",
        "model.request", "model.response", "run.completed",
    ]
    state = fold(result.run_id, events)
    assert [m.role for m in state.messages] == ["system", "user", "assistant", "tool", "assistant"]
    assert state.messages[3].content == "5"
    # model.request records only what is new since the previous request, by reference to
    # the events that hold it.
    second = events[5].payload
    assert second["prefix"] == 2 and second["new"] == [{"event": 3}, {"event": 5}]
    assert events[1].payload["new"] == [{"role": "system", "content": "Be brief."},
                                        {"role": "user", "content": "go"}]


async def test_resuming_a_completed_run_changes_nothing(store: SQLiteStore) -> None:
    agent = Agent(name="a", model=ScriptedModel(["hi"]))
    result, events = await run_events(store, agent)
    again = await Runner(store).resume(result.run_id, agent)
    assert again.output == "hi"
    assert await store.read(result.run_id) == events


async def test_parallel_tool_calls_run_concurrently(store: SQLiteStore) -> None:
    import threading

    # Each pair can only finish if both of its calls run at the same time.
    arrived = {1: asyncio.Event(), 2: asyncio.Event()}
    barrier = threading.Barrier(2, timeout=10)

    @tool
    async def meet(i: int) -> str:
        """Wait for the other async call."""
        arrived[i].set()
        await asyncio.wait_for(arrived[3 - i].wait(), 10)
        return f"met {i}"

    @tool
    def rendezvous(i: int) -> str:
        """Wait for the other thread."""
        barrier.wait()
        return f"rendezvous {i}"

    calls = [ToolCall.of("meet", i=1), ToolCall.of("meet", i=2),
             ToolCall.of("rendezvous", i=3), ToolCall.of("rendezvous", i=4)]
    agent = Agent(name="p", model=ScriptedModel([calls, "ok"]), tools=[meet, rendezvous])
    result, events = await run_events(store, agent)
    assert result.status == RunStatus.COMPLETED
    results = [e for e in events if e.type == EventType.TOOL_RESULT]
    assert sorted(e.payload["content"] for e in results) == [
        "met 1", "met 2", "rendezvous 3", "rendezvous 4"]
    # each result committed on its own
    assert len({e.seq for e in results}) == 4
    # the model sees the results in call order whatever order they finished in
    state = fold(result.run_id, events)
    assert [m.content for m in state.messages if m.role == "tool"] == [
        "met 1", "met 2", "rendezvous 3", "rendezvous 4"]


async def test_bad_tool_behaviour_is_recorded_and_the_run_goes_on(store: SQLiteStore) -> None:
    @tool
    def explode() -> str:
        """Always fails."""
        raise RuntimeError("disk on fire")

    @tool
    def opaque() -> object:
        """Returns something that is not JSON."""
        return object()

    @tool
    def picky(n: int) -> str:
        """Asks the model to try again."""
        raise ModelRetry("n must be even")

    script = [
        ToolCall.of("explode"),
        ToolCall.of("opaque"),
        ToolCall.of("no_such_tool", x=1),
        ToolCall(id="call_x", name="add", arguments='{"a": 1, "b": '),  # malformed JSON
        ToolCall.of("add", a="one", b=2),  # fails the schema
        ToolCall.of("picky", n=3),
        "gave up politely",
    ]
    agent = Agent(name="bad", model=ScriptedModel(script),
                  tools=[explode, opaque, picky, add])
    result, events = await run_events(store, agent)
    assert result.status == RunStatus.COMPLETED
    errors = [e.payload for e in events if e.type == EventType.TOOL_ERROR]
    assert [e["error"]["type"] for e in errors] == [
        "RuntimeError", "ToolError", "ModelBehaviorError", "ModelBehaviorError",
        "ModelBehaviorError", "ModelRetry"]
    assert "disk on fire" in errors[0]["content"]
    assert "cannot be serialised to JSON" in errors[1]["content"]
    assert "no tool named 'no_such_tool'" in errors[2]["content"]
    assert "available tools" in errors[2]["content"]
    assert "not valid JSON" in errors[3]["content"]
    assert "a: Input should be a valid integer" in errors[4]["content"]
    assert errors[5]["content"] == "n must be even"
    # calls the model got wrong never produced an intent: nothing ran
    intents = [e.payload["tool"] for e in events if e.type == EventType.TOOL_INTENT]
    assert intents == ["explode", "opaque", "picky"]


async def test_tool_timeout_cancels_through_the_context(store: SQLiteStore) -> None:
    seen = {}

    @tool(timeout_s=0.1)
    def stuck(ctx: ToolContext) -> str:
        """Waits until cancelled."""
        seen["cancelled"] = ctx.cancel_event.wait(5)
        ctx.raise_if_cancelled()  # stops cooperatively: a definite failure
        return "late"

    agent = Agent(name="t", model=ScriptedModel([ToolCall.of("stuck"), "ok"]), tools=[stuck])
    result, events = await run_events(store, agent)
    (error,) = [e for e in events if e.type == EventType.TOOL_ERROR]
    assert error.payload["error"]["type"] == "ToolTimeoutError"
    assert seen == {"cancelled": True}
    assert result.status == RunStatus.COMPLETED


async def test_max_steps_stops_the_run(store: SQLiteStore) -> None:
    model = FunctionModel(lambda request: ToolCall.of("add", a=1, b=1))
    agent = Agent(name="loop", model=model, tools=[add], budget=Budget(max_steps=3))
    result, events = await run_events(store, agent)
    assert result.status == RunStatus.FAILED
    assert result.error is not None and result.error.details["limit"] == "max_steps"
    assert model.calls == 3
    assert events[-1].type == EventType.RUN_FAILED
    assert events[-1].payload["reason"] == "budget_exceeded"


async def test_model_errors_end_the_run_with_a_clear_record(store: SQLiteStore) -> None:
    agent = Agent(name="short", model=ScriptedModel([ToolCall.of("add", a=1, b=2)]), tools=[add])
    result, events = await run_events(store, agent)
    assert result.status == RunStatus.FAILED
    assert result.error is not None
    assert type(result.error).__name__ == "ScriptExhaustedError"
    assert events[-1].payload["reason"] == "model_error"


async def test_resume_needs_an_agent_when_none_was_recorded(store: SQLiteStore) -> None:
    agent = Agent(name="a", model=ScriptedModel([ToolCall.of("add", a=1, b=2), "3"]), tools=[add])
    # a run that stopped after its first step's intent
    runner = Runner(store)
    result = await runner.run(agent, "go")
    assert result.status == RunStatus.COMPLETED
    state = fold(result.run_id, await store.read(result.run_id))
    assert state.agent_spec is None
    from tether.core import Event

    await store.append([Event(run_id="r2", seq=1, type=EventType.RUN_STARTED, step=0, ts=0.0,
                              payload={"agent": "a", "task": "t"})])
    with pytest.raises(UsageError, match="pass the agent"):
        await runner.resume("r2")


QUARANTINE_CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    from tether.core import ToolCall
    from tether.models import ScriptedModel
    from tether.runtime import Agent, Runner
    from tether.store import SQLiteStore
    from tether.tools import tool

    @tool(idempotent=True)
    def crash() -> str:
        '''Kills the process, every time.'''
        os.kill(os.getpid(), signal.SIGKILL)
        return "unreachable"

    agent = Agent(name="doomed", model=ScriptedModel([ToolCall.of("crash"), "never"]),
                  tools=[crash], max_recoveries=2)
    runner = Runner(SQLiteStore(sys.argv[1]))
    if sys.argv[2] == "run":
        result = asyncio.run(runner.run(agent, "go", run_id="run_q"))
    else:
        result = asyncio.run(runner.resume("run_q", agent))
    print(result.status)
    if result.error is not None:
        print(type(result.error).__name__, result.error.recoveries, result.error.hint)
""")


def test_a_run_that_crashes_on_every_recovery_is_quarantined(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")

    def child(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", QUARANTINE_CHILD, db, mode],
                              capture_output=True, text=True, timeout=60)

    assert child("run").returncode == -signal.SIGKILL
    assert child("resume").returncode == -signal.SIGKILL  # recovery 1
    assert child("resume").returncode == -signal.SIGKILL  # recovery 2
    final = child("resume")
    assert final.returncode == 0
    status, error = final.stdout.strip().split("\n")
    assert status == "quarantined"
    assert error.startswith("QuarantinedError 2 ") and "--release" in error

    async def check() -> None:
        store = SQLiteStore(db)
        events = await store.read("run_q")
        assert [e.type for e in events].count("run.resumed") == 2
        assert events[-1].type == EventType.RUN_QUARANTINED
        assert (await store.run("run_q")).status == RunStatus.QUARANTINED
        await store.close()

    asyncio.run(check())
    # Once the cause is fixed, the run can be released from quarantine.
    still = child("resume")
    assert still.stdout.strip().split("\n")[0] == "quarantined"

    async def release() -> None:
        store = SQLiteStore(db)
        fixed = Agent(name="doomed", model=ScriptedModel([ToolCall.of("crash"), "fixed"]),
                      tools=[_harmless_crash_tool()])
        result = await Runner(store).resume("run_q", fixed, release=True)
        assert (result.status, result.output) == (RunStatus.COMPLETED, "fixed")
        await store.close()

    asyncio.run(release())


def _harmless_crash_tool() -> Any:
    @tool(idempotent=True, name="crash")
    def crash() -> str:
        """No longer kills anything."""
        return "survived"

    return crash


async def test_sync_facade(tmp_path: Path) -> None:
    def drive() -> str | None:
        store = SQLiteStore(tmp_path / "s.db")
        return Runner(store).run_sync(Agent(name="s", model=ScriptedModel(["sync"])), "x").output

    assert await asyncio.to_thread(drive) == "sync"


def test_scripted_model_fails_loudly() -> None:
    model = ScriptedModel(["a", "b"])
    request = ModelRequest(messages=())
    asyncio.run(model.complete(request))
    with pytest.raises(UsageError, match="never used"):
        model.assert_used()


async def test_cancelling_a_run_reaches_the_tool(store: SQLiteStore) -> None:
    import threading

    started, seen = threading.Event(), {}

    @tool
    def long_job(ctx: ToolContext) -> str:
        """Works until told to stop."""
        started.set()
        seen["cancelled"] = ctx.cancel_event.wait(5)
        return "stopped"

    agent = Agent(name="c", model=ScriptedModel([ToolCall.of("long_job"), "done"]),
                  tools=[long_job])
    task = asyncio.ensure_future(Runner(store).run(agent, "go", run_id="run_c"))
    await asyncio.to_thread(started.wait, 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0.05)
    assert seen == {"cancelled": True}
    # the intent was committed; the run can be resumed later
    assert (await store.ledger("run_c"))[0].status == "intent"


async def test_reviewers_run_when_a_run_stops_and_their_findings_are_journaled(
    store: SQLiteStore,
) -> None:
    from tether.observe import finding_payloads

    same = ToolCall.of("add", a=1, b=1)
    agent = Agent(name="r", model=ScriptedModel([same, same, "2"]), tools=[add])
    result = await Runner(store, reviewers=[finding_payloads]).run(agent, "go")
    events = await store.read(result.run_id)
    findings = [e.payload for e in events if e.type == EventType.FINDING]
    assert "repeated_call" in {f["kind"] for f in findings}
    assert events[-1].type == EventType.FINDING
    summary = await store.run(result.run_id)
    completed = next(e for e in events if e.type == EventType.RUN_COMPLETED)
    assert summary.updated_at == completed.ts  # findings are not run activity
