"""Calls the run gives up on (timeouts, interrupts) are in doubt, never failures.

Each test counts real side effects: a tool that keeps running in its thread after its
timeout must not be reported as failed and then run again.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from tether.core import EventType, RunStatus, ToolCall
from tether.models import FunctionModel, ModelRequest, ScriptedModel
from tether.runtime import Agent, Policy, Runner
from tether.store import SQLiteStore
from tether.testing import FakeClock
from tether.tools import NOT_APPLIED, ToolContext, tool

FAST = Policy(tool_stop_grace_s=0.2)


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


async def test_a_sync_tool_still_running_after_its_timeout_is_in_doubt(
    store: SQLiteStore,
) -> None:
    release = threading.Event()
    effects: list[str] = []

    @tool(timeout_s=0.1)
    def send_email(to: str) -> str:
        """Send an email (slow, ignores cancellation)."""
        release.wait(10)
        effects.append(to)
        return "sent"

    # A model that would happily call it again if told it failed.
    model = ScriptedModel([ToolCall.of("send_email", to="a@x"),
                           ToolCall.of("send_email", to="a@x"), "done"])
    agent = Agent(name="mail", model=model, tools=[send_email], policy=FAST)
    result = await Runner(store).run(agent, "mail a")
    release.set()
    await asyncio.sleep(0.2)  # the thread lands its effect now
    events = await store.read(result.run_id)
    assert result.status == RunStatus.NEEDS_ATTENTION
    assert EventType.TOOL_ERROR not in types(events)  # never reported as a failure
    (attention,) = [e for e in events if e.type == EventType.RUN_NEEDS_ATTENTION]
    assert "still running" in attention.payload["calls"][0]["why"]
    assert effects == ["a@x"]  # once, and the model was never asked to send it again


async def test_a_sync_tool_that_ends_within_the_grace_has_a_known_outcome(
    store: SQLiteStore,
) -> None:
    @tool(timeout_s=0.05)
    def slow(ctx: ToolContext) -> str:
        """Finishes a little after its timeout."""
        ctx.cancel_event.wait(5)
        return "finished late"

    agent = Agent(name="t", model=ScriptedModel([ToolCall.of("slow"), "ok"]), tools=[slow],
                  policy=Policy(tool_stop_grace_s=5))
    result = await Runner(store).run(agent, "go")
    events = await store.read(result.run_id)
    (outcome,) = [e for e in events if e.type == EventType.TOOL_RESULT]
    assert outcome.payload["content"] == "finished late"
    assert result.status == RunStatus.COMPLETED


async def test_an_idempotent_tool_in_doubt_is_retried_with_the_same_key(
    store: SQLiteStore,
) -> None:
    keys: list[str] = []
    gate = threading.Event()

    @tool(idempotent=True, timeout_s=0.1)
    def charge(ctx: ToolContext) -> str:
        """Charge (the first attempt hangs)."""
        keys.append(ctx.idempotency_key)
        if len(keys) == 1:
            gate.wait(5)
        return "charged"

    agent = Agent(name="pay", model=ScriptedModel([ToolCall.of("charge"), "ok"]),
                  tools=[charge], policy=FAST)
    clock = FakeClock()  # the retry's backoff takes no time; the tool's timeout does
    result = await Runner(store, clock=clock).run(agent, "pay")
    gate.set()
    events = await store.read(result.run_id)
    assert result.status == RunStatus.COMPLETED
    assert len(keys) == 2 and len(set(keys)) == 1
    (retry,) = [e for e in events if e.type == EventType.RETRY]
    assert retry.payload["outcome"] == "unknown"
    assert clock.sleeps == [pytest.approx(retry.payload["delay_s"], abs=1e-4)]


async def test_an_async_tool_cancelled_mid_call_is_reconciled(store: SQLiteStore) -> None:
    ledger: dict[str, str] = {}

    @tool(timeout_s=0.1)
    async def transfer(ctx: ToolContext) -> str:
        """Transfer money; the bank answers slowly."""
        ledger[ctx.idempotency_key] = "sent"  # the effect lands before the slow reply
        await asyncio.sleep(10)
        return "ok"

    @transfer.reconciler
    def _check(key: str) -> Any:
        return "already transferred" if key in ledger else NOT_APPLIED

    agent = Agent(name="bank", model=ScriptedModel([ToolCall.of("transfer"), "done"]),
                  tools=[transfer], policy=FAST)
    result = await Runner(store).run(agent, "pay")
    events = await store.read(result.run_id)
    assert result.status == RunStatus.COMPLETED
    (decision,) = [e for e in events if e.type == EventType.DECISION]
    assert decision.payload["chosen"] == "record_result"
    (outcome,) = [e for e in events if e.type == EventType.TOOL_RESULT]
    assert outcome.payload == {"call_id": outcome.payload["call_id"], "tool": "transfer",
                               "content": "already transferred", "reconciled": True}


async def test_reconcile_finding_nothing_after_a_timeout_records_a_failure(
    store: SQLiteStore,
) -> None:
    @tool(timeout_s=0.05)
    async def transfer() -> str:
        """Never gets through."""
        await asyncio.sleep(10)
        return "ok"

    @transfer.reconciler
    def _check(key: str) -> Any:
        return NOT_APPLIED

    agent = Agent(name="bank", model=ScriptedModel([ToolCall.of("transfer"), "gave up"]),
                  tools=[transfer], policy=FAST)
    result = await Runner(store).run(agent, "pay")
    events = await store.read(result.run_id)
    (error,) = [e for e in events if e.type == EventType.TOOL_ERROR]
    assert error.payload["reconciled"] is True
    assert result.status == RunStatus.COMPLETED


async def test_no_tool_starts_once_the_deadline_has_passed(store: SQLiteStore) -> None:
    from tether.runtime import Budget

    ran: list[int] = []

    @tool
    def act() -> str:
        """Acts."""
        ran.append(1)
        return "acted"

    clock = FakeClock()

    def answer(request: ModelRequest) -> Any:
        clock.advance(100)  # the model call "took" 100 s
        return ToolCall.of("act")

    agent = Agent(name="t", model=FunctionModel(answer), tools=[act],
                  budget=Budget(max_seconds=10))
    result = await Runner(store, clock=clock).run(agent, "go")
    events = await store.read(result.run_id)
    assert ran == []
    (error,) = [e for e in events if e.type == EventType.TOOL_ERROR]
    assert error.payload["not_started"] is True
    assert result.status == RunStatus.FAILED
    assert result.error is not None and "max_seconds" in result.error.message


async def test_interrupt_commits_finished_outcomes_and_pauses(store: SQLiteStore) -> None:
    started = threading.Event()
    effects: list[str] = []

    @tool
    def quick(n: int) -> str:
        """Finishes at once."""
        effects.append(f"quick{n}")
        return f"q{n}"

    @tool
    def slow(ctx: ToolContext) -> str:
        """Finishes once asked to stop (within the grace)."""
        started.set()
        ctx.cancel_event.wait(5)
        effects.append("slow")
        return "s"

    model = ScriptedModel([ToolCall.of("quick", n=1), [ToolCall.of("quick", n=2),
                           ToolCall.of("slow")], "never asked"])
    agent = Agent(name="t", model=model, tools=[quick, slow], policy=Policy(tool_stop_grace_s=5))
    runner = Runner(store)
    task = asyncio.create_task(runner.run(agent, "go"))
    await asyncio.to_thread(started.wait, 5)
    runner.interrupt()
    result = await task
    events = await store.read(result.run_id)
    assert result.status == RunStatus.PAUSED
    assert sorted(effects) == ["quick1", "quick2", "slow"]
    outcomes = [e.payload["content"] for e in events if e.type == EventType.TOOL_RESULT]
    assert sorted(outcomes) == ["q1", "q2", "s"]  # nothing that finished is thrown away
    assert events[-1].type in (EventType.RUN_PAUSED, EventType.FINDING)
    # Resuming continues where it stopped: the model's last answer, no tool again.
    again = await Runner(store).resume(result.run_id, agent)
    assert again.status == RunStatus.COMPLETED and again.output == "never asked"
    assert sorted(effects) == ["quick1", "quick2", "slow"]


async def test_interrupt_during_a_model_call_abandons_it(store: SQLiteStore) -> None:
    entered = asyncio.Event()

    async def hang(request: ModelRequest) -> str:
        entered.set()
        await asyncio.sleep(30)
        return "never"

    agent = Agent(name="t", model=FunctionModel(hang))
    runner = Runner(store)
    task = asyncio.create_task(runner.run(agent, "go"))
    await asyncio.wait_for(entered.wait(), 5)
    runner.interrupt()
    result = await asyncio.wait_for(task, 5)
    events = await store.read(result.run_id)
    assert result.status == RunStatus.PAUSED
    assert types(events) == ["run.started", "run.paused"]
    # a paused run resumed is not a crash recovery
    again = await Runner(store).resume(
        result.run_id, Agent(name="t", model=ScriptedModel(["back"])))
    assert again.output == "back"
    resumed = [e for e in await store.read(result.run_id) if e.type == EventType.RUN_RESUMED]
    assert resumed[0].payload["from_status"] == "paused"


async def test_an_observer_that_raises_never_breaks_the_run(store: SQLiteStore) -> None:
    calls: list[int] = []

    def broken(events: Any) -> None:
        calls.append(len(events))
        raise RuntimeError("observer bug")

    agent = Agent(name="t", model=ScriptedModel(["hi"]))
    result = await Runner(store, observers=[broken]).run(agent, "go")
    assert result.status == RunStatus.COMPLETED
    assert len(calls) >= 2  # called for every batch, reported once


async def test_an_exotic_exception_fails_the_run_instead_of_escaping(store: SQLiteStore) -> None:
    class Weird(BaseException):
        pass

    @tool
    def odd() -> str:
        """Raises something that is not an Exception."""
        raise Weird("boom")

    agent = Agent(name="t", model=ScriptedModel([ToolCall.of("odd"), "x"]), tools=[odd])
    result = await Runner(store).run(agent, "go")
    assert result.status == RunStatus.FAILED
    assert result.error is not None and "Weird" in result.error.message


async def test_replacement_call_ids_never_collide_with_the_providers(
    store: SQLiteStore,
) -> None:
    @tool
    def f() -> str:
        """f."""
        return "x"

    # step 1: the provider uses the id our replacement scheme would give at step 2
    first = ToolCall(id="call_2_0", name="f", arguments="{}")
    second = ToolCall(id="", name="f", arguments="{}")
    agent = Agent(name="t", model=ScriptedModel([first, second, "done"]), tools=[f])
    result = await Runner(store).run(agent, "go")
    events = await store.read(result.run_id)
    ids = [e.payload["call_id"] for e in events if e.type == EventType.TOOL_INTENT]
    assert len(ids) == len(set(ids)) == 2
    assert result.status == RunStatus.COMPLETED


async def test_the_request_records_why_the_model_was_constrained(store: SQLiteStore) -> None:
    from tether.models import ModelResponse

    @tool
    def f() -> str:
        """f."""
        return "x"

    def answer(request: ModelRequest) -> Any:
        return ModelResponse.model_validate({
            "message": {"role": "assistant", "content": "done"}, "provider": "scripted",
            "model": "m", "constraint": "grammar:answer_only"})

    agent = Agent(name="t", model=FunctionModel(answer), tools=[f])
    result = await Runner(store).run(agent, "go")
    (request,) = [e for e in await store.read(result.run_id)
                  if e.type == EventType.MODEL_REQUEST]
    assert request.payload["constraint"] == "grammar:answer_only"
    assert "tools" not in request.payload  # offered as at the start: not repeated
