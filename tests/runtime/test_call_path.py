"""The call path (model calls, tool calls) driven through a CallContext: no Runner, no
store, no real waiting. A list-backed journal folds what is committed, the FakeClock
records every wait; each test attacks one promise of the retry, breaker, fallback and
deadline logic."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
from typing import Any

import pytest

from tether.core import (
    Event,
    EventType,
    FatalModelError,
    ModelRetry,
    RateLimitError,
    ToolResult,
    TransientModelError,
)
from tether.models import FunctionModel, ModelRequest, ScriptedModel
from tether.runtime import BreakerBoard, BreakerSettings, Budget, Policy, RetryPolicy, RunState
from tether.runtime._call import CallContext
from tether.runtime._model_call import call_model, model_key
from tether.runtime._state import OpenCall
from tether.runtime._tool_call import run_tool
from tether.testing import FakeClock, SequentialIds
from tether.tools import (
    FunctionToolset,
    Tool,
    ToolContext,
    ToolDef,
    as_result,
    tool,
)


class ListJournal:
    """A journal kept in a list: numbers and folds events like the real one."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.state = RunState(run_id="run_test")
        self.batches: list[list[Event]] = []
        self._apply([self.event(EventType.RUN_STARTED, 0, {"agent": "a", "task": "t"})])

    def event(self, kind: EventType, step: int, payload: dict[str, Any], *,
              span: str | None = None, duration_ms: float | None = None) -> Event:
        return Event(run_id=self.state.run_id, seq=0, type=kind, step=step,
                     ts=self.clock.now(), payload=payload, span_id=span,
                     duration_ms=duration_ms)

    def _apply(self, events: list[Event]) -> None:
        first = self.state.seq + 1
        numbered = [dataclasses.replace(e, seq=first + i) for i, e in enumerate(events)]
        for e in numbered:
            self.state.apply(e)
        self.batches.append(numbered)

    async def commit(self, events: list[Event]) -> None:
        assert events, "an empty commit"
        self._apply(events)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [e.payload for batch in self.batches for e in batch if e.type == kind]


class Tools:
    """The run's tools as the tool path sees them (``ToolCalls``), over a plain
    ``FunctionToolset``: ``RunTools`` needs an Execution, this needs nothing."""

    def __init__(self, *tools: Tool) -> None:
        self.toolset = FunctionToolset(list(tools))
        self.defs = {t.name: t.definition for t in tools}
        self.approved: set[str] = set()

    def __getitem__(self, name: str) -> ToolDef:
        return self.defs[name]

    def __contains__(self, name: object) -> bool:
        return name in self.defs

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext
                   ) -> ToolResult:
        return as_result(await self.toolset.call(name, arguments, ctx))

    async def reconcile(self, name: str, key: str) -> Any:
        return await self.toolset.reconcile(name, key)


def context(journal: ListJournal, *, policy: Policy | None = None,
            board: BreakerBoard | None = None, budget: Budget | None = None) -> CallContext:
    return CallContext(journal=journal, policy=policy or Policy(), budget=budget or Budget(),
                       clock=journal.clock, rng=random.Random(7), ids=SequentialIds(),
                       breakers=board or BreakerBoard())


def request(step: int = 1) -> ModelRequest:
    from tether.core import Message
    return ModelRequest(messages=(Message.user("t"),), step=step)


def failing(*errors: BaseException, then: str = "answer") -> FunctionModel:
    """A model that raises ``errors`` one after the other, then answers."""
    left = list(errors)

    def answer(req: ModelRequest) -> str:
        if left:
            raise left.pop(0)
        return then

    return FunctionModel(answer)


# --- models ------------------------------------------------------------------------


async def test_retries_wait_on_the_clock_exactly_what_the_journal_says() -> None:
    clock = FakeClock()
    journal = ListJournal(clock)
    model = failing(TransientModelError("503"), TransientModelError("503"))
    answer = await call_model(context(journal), [model], request())
    assert answer is not None and answer[1].message.content == "answer"
    retries = journal.of(EventType.RETRY)
    assert [r["attempt"] for r in retries] == [1, 2]
    # the journal rounds delays to 4 places
    assert clock.sleeps == pytest.approx([r["delay_s"] for r in retries], abs=1e-4)
    assert all(d > 0 for d in clock.sleeps)


async def test_a_journaled_wait_is_waited_out_after_a_crash_and_only_the_rest() -> None:
    clock = FakeClock()
    journal = ListJournal(clock)
    model = failing()
    key = model_key(model)
    journal.state.model_not_before[key] = clock.now() + 12.5  # as folded from a retry
    clock.advance(2.5)
    await call_model(context(journal), [model], request())
    assert clock.sleeps == [10.0] and model.calls == 1


async def test_a_wait_past_the_deadline_fails_the_run_without_waiting() -> None:
    clock = FakeClock()
    journal = ListJournal(clock)
    model = failing(RateLimitError("429", retry_after=30.0))
    answer = await call_model(context(journal, budget=Budget(max_seconds=5)), [model],
                              request())
    assert answer is None and clock.sleeps == []
    (failed,) = journal.of(EventType.RUN_FAILED)
    assert failed["reason"] == "budget_exceeded"
    assert journal.state.status == "failed"


async def test_a_rate_limit_with_a_fallback_moves_on_at_once() -> None:
    clock = FakeClock()
    journal = ListJournal(clock)
    primary = failing(RateLimitError("429", retry_after=30.0))
    backup = ScriptedModel(["from the backup"])
    answer = await call_model(context(journal), [primary, backup], request())
    assert answer is not None and answer[0] is backup and clock.sleeps == []
    (fallback,) = journal.of(EventType.FALLBACK)
    assert fallback["reason"] == "rate limited"


async def test_an_open_breaker_without_fallback_waits_for_its_probe_on_the_clock() -> None:
    clock = FakeClock()
    journal = ListJournal(clock)
    policy = Policy(model_retry=RetryPolicy(max_attempts={"transient": 10}),
                    breaker=BreakerSettings(failure_threshold=2, reset_timeout_s=45))
    model = failing(TransientModelError("a"), TransientModelError("b"))
    answer = await call_model(context(journal, policy=policy), [model], request())
    assert answer is not None
    moves = [(b["from_state"], b["to_state"]) for b in journal.of(EventType.BREAKER)]
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert clock.slept >= 45  # the probe came after the reset timeout, on the clock
    assert model.calls == 3


async def test_a_fatal_error_fails_at_once_saying_what_was_tried() -> None:
    clock = FakeClock()
    journal = ListJournal(clock)
    answer = await call_model(context(journal), [failing(FatalModelError("401"))], request())
    assert answer is None and clock.sleeps == []
    kinds = [e.type for e in journal.batches[-1]]
    assert kinds == ["model.request", "model.error", "run.failed"]


# --- tools -------------------------------------------------------------------------


def open_call(name: str, step: int = 1) -> OpenCall:
    return OpenCall(call_id=f"c{step}", tool=name, arguments={}, index=0, step=step,
                    idempotency_key=f"run_test-{step}-0")


async def test_a_half_open_probe_answered_by_model_retry_closes_the_breaker_in_the_journal(
) -> None:
    """The tool worked (it asks the model to change its request): the probe succeeded,
    and both transitions (open -> half_open -> closed) are journaled with the outcome."""
    outcomes: list[BaseException | None] = [ConnectionError("down"), ModelRetry("say n")]

    @tool(inline=True)
    def flaky() -> str:
        """Fails, then asks for another request."""
        error = outcomes.pop(0)
        if error is not None:
            raise error
        return "ok"

    clock = FakeClock()
    journal = ListJournal(clock)
    board = BreakerBoard()
    policy = Policy(breaker=BreakerSettings(failure_threshold=1, reset_timeout_s=10))
    tools = Tools(flaky)
    await run_tool(context(journal, policy=policy, board=board), tools, open_call("flaky", 1))
    clock.advance(10)
    await run_tool(context(journal, policy=policy, board=board), tools, open_call("flaky", 2))
    moves = [(b["from_state"], b["to_state"]) for b in journal.of(EventType.BREAKER)]
    assert moves == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]
    assert board.states() == {"tool:flaky": "closed"}
    errors = journal.of(EventType.TOOL_ERROR)
    assert errors[-1]["error"]["type"] == "ModelRetry"


async def test_an_idempotent_tool_is_retried_on_the_clock_and_falls_back_after() -> None:
    @tool(idempotent=True, inline=True, fallback="cached")
    def live() -> str:
        """Always down."""
        raise ConnectionError("refused")

    @tool(inline=True)
    def cached() -> str:
        """A stale copy."""
        return "cached"

    clock = FakeClock()
    journal = ListJournal(clock)
    policy = Policy(tool_retry=RetryPolicy(max_attempts={"transient": 3}, base_delay_s=4.0))
    await run_tool(context(journal, policy=policy), Tools(live, cached), open_call("live"))
    retries = journal.of(EventType.RETRY)
    assert [r["attempt"] for r in retries] == [1, 2]
    assert clock.sleeps == pytest.approx([r["delay_s"] for r in retries], abs=1e-4)
    (fallback,) = journal.of(EventType.FALLBACK)
    assert (fallback["from_tool"], fallback["to_tool"]) == ("live", "cached")
    (result,) = journal.of(EventType.TOOL_RESULT)
    assert result["content"] == "cached" and result["ran"] == "cached"


async def test_a_tool_is_not_started_past_the_deadline() -> None:
    ran: list[int] = []

    @tool(inline=True)
    def slow() -> str:
        """Never reached."""
        ran.append(1)
        return "x"

    clock = FakeClock()
    journal = ListJournal(clock)
    clock.advance(61)
    await run_tool(context(journal, budget=Budget(max_seconds=60)), Tools(slow),
                   open_call("slow"))
    (error,) = journal.of(EventType.TOOL_ERROR)
    assert error["not_started"] is True and error["error"]["type"] == "BudgetExceededError"
    assert ran == []


# --- the clock and the ids themselves ------------------------------------------------


async def test_the_fake_clock_moves_wall_and_monotonic_time_together() -> None:
    clock = FakeClock(start=100.0, monotonic_start=5.0)
    await clock.sleep(2.5)
    clock.advance(0.5)
    await clock.sleep(-1)  # a negative wait is none
    assert (clock.now(), clock.monotonic()) == (103.0, 8.0)
    assert clock.sleeps == [2.5, -1] and clock.slept == 2.5
    with pytest.raises(ValueError):
        clock.advance(float("nan"))


async def test_a_fake_sleep_is_still_a_point_of_cancellation() -> None:
    clock = FakeClock()
    task = asyncio.ensure_future(clock.sleep(1e9))
    await asyncio.sleep(0)  # the sleep has started and yields
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.slept == 0 and clock.sleeps == []  # a cancelled wait took no time


def test_sequential_ids_sort_in_the_order_they_were_made() -> None:
    ids = SequentialIds()
    made = [ids.new("run_") for _ in range(40)]
    assert made == sorted(made) and len(set(made)) == 40
    assert all(len(i) == len("run_") + 26 for i in made)
    assert SequentialIds().new() == json.loads(json.dumps(made[0]))[len("run_"):]
