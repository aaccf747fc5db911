"""Failing gracefully, against a real OpenAI-compatible server with injected faults.

Every Runner here runs on a FakeClock: backoff, Retry-After, breaker reset timeouts and
deadlines are realistic (seconds, not milliseconds) and take no time. What still takes
real time is what is bounded by the event loop: a hung or trickling server's attempt."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

from tether.core import Event, EventType, Message, RateLimitError, RunStatus
from tether.models import (
    FunctionModel,
    ModelRequest,
    ModelResponse,
    ModelSettings,
    OpenAIModel,
    TruncatedResponseError,
)
from tether.observe import prompts
from tether.runtime import (
    Agent,
    BreakerBoard,
    BreakerSettings,
    Policy,
    RetryPolicy,
    Runner,
    RunResult,
)
from tether.store import SQLiteStore, Store
from tether.testing import (
    FAULTS,
    FakeClock,
    Fault,
    FaultServer,
    closed_port,
    counting_responder,
)
from tether.tools import tool

STEPS = 3


@tool(idempotent=True, inline=True)
def lookup(i: int) -> str:
    """Look up record i."""
    return f"record {i}"


# Timeouts far above a healthy call on a loaded machine: only an injected hang misses them.
# Backoff and breaker waits are the defaults (0.5 s doubling, 30 s): the clock skips them.
FAST = Policy(
    model_retry=RetryPolicy(),
    model_timeout_s=3.0,
    breaker=BreakerSettings(failure_threshold=5, reset_timeout_s=30),
)


def runner_on(store: Store, clock: FakeClock | None = None, **kwargs: Any) -> Runner:
    """A Runner whose waits take no time."""
    return Runner(store, clock=clock or FakeClock(), **kwargs)


def model_at(url: str, name: str = "fault-model") -> OpenAIModel:
    return OpenAIModel(name, api_key="sk-test", base_url=url, provider="openai-compatible")


def agent_for(*urls: str, policy: Policy = FAST, **kwargs: Any) -> Agent:
    primary, *fallbacks = [model_at(u, f"m{i}") for i, u in enumerate(urls)]
    return Agent(name="faulty", model=primary, fallbacks=fallbacks, tools=[lookup],
                 policy=policy, **kwargs)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(responder=counting_responder(STEPS), hang_s=8.0) as s:
        yield s


async def drive(store: SQLiteStore, agent: Agent, runner: Runner | None = None) -> tuple:  # type: ignore[type-arg]
    try:
        result = await (runner or runner_on(store)).run(agent, "look up three records")
    finally:
        for model in (agent.model, *agent.fallbacks):
            if isinstance(model, OpenAIModel):
                await model.aclose()
    return result, await store.read(result.run_id)


def of(events: list, kind: str) -> list:  # type: ignore[type-arg]
    return [e for e in events if e.type == kind]


@pytest.mark.parametrize(("fault", "error_class"), [
    (Fault(kind="rate_limit", retry_after_s=5), "rate_limit"),
    (Fault(kind="server_error"), "transient"),
    (Fault(kind="unavailable"), "transient"),
    (Fault(kind="reset"), "transient"),
    (Fault(kind="truncated"), "transient"),
    (Fault(kind="hang"), "transient"),
    (Fault(kind="empty_choice"), "misbehavior"),
])
async def test_retryable_faults_are_retried_and_journaled(
    store: SQLiteStore, server: FaultServer, fault: Fault, error_class: str
) -> None:
    server.set_plan([Fault(), fault])  # the second request fails once
    result, events = await drive(store, agent_for(server.base_url))
    assert result.status == RunStatus.COMPLETED, result.error
    assert result.output == f"done after {STEPS} lookups"
    (retry,) = of(events, EventType.RETRY)
    assert retry.payload["error_class"] == error_class
    assert retry.payload["attempt"] == 1 and retry.payload["target"] == "model"
    if fault.kind == "rate_limit":
        assert retry.payload["delay_s"] == 5  # Retry-After honoured
        assert retry.payload["error"]["retry_after"] == 5
    assert server.faults() == ["ok", fault.kind] + ["ok"] * STEPS
    assert len(of(events, EventType.MODEL_RESPONSE)) == STEPS + 1


@pytest.mark.parametrize("fault", ["malformed_args", "unknown_tool"])
async def test_malformed_calls_go_back_to_the_model(
    store: SQLiteStore, server: FaultServer, fault: str
) -> None:
    server.set_plan([fault])
    result, events = await drive(store, agent_for(server.base_url))
    assert result.status == RunStatus.COMPLETED
    first = of(events, EventType.MODEL_RESPONSE)[0].payload
    assert first["malformed"]["reason"] == "invalid tool calls"
    (error,) = of(events, EventType.TOOL_ERROR)
    assert error.payload["error"]["type"] == "ModelBehaviorError"
    expected = "not valid JSON" if fault == "malformed_args" else "no tool named 'no_such_tool'"
    assert expected in error.payload["content"]
    # the model's next request carries the precise error as the call's result
    second_request = server.received[1].body["messages"]
    assert expected in second_request[-1]["content"]
    assert not of(events, EventType.RETRY)


async def test_repair_budget_ends_the_run_with_the_last_bad_output(
    store: SQLiteStore, server: FaultServer
) -> None:
    server.fault_for = lambda i: Fault(kind="malformed_args")
    policy = Policy(model_retry=FAST.model_retry, max_consecutive_repairs=2, max_repairs=5)
    result, events = await drive(store, agent_for(server.base_url, policy=policy))
    assert result.status == RunStatus.FAILED
    failed = events[-1].payload
    assert failed["reason"] == "repair_budget_exhausted"
    assert "3 malformed responses in a row" in failed["error"]["message"]
    assert failed["last_output"]["calls"][0]["arguments"].endswith(", ")
    assert len(server.received) == 3


async def test_a_fatal_error_is_not_retried(store: SQLiteStore, server: FaultServer) -> None:
    server.set_plan(["unauthorized"])
    result, events = await drive(store, agent_for(server.base_url))
    assert result.status == RunStatus.FAILED
    assert type(result.error).__name__ == "FatalModelError"
    assert result.error is not None and result.error.hint
    assert len(server.received) == 1 and not of(events, EventType.RETRY)


async def test_spent_retries_fail_the_run_saying_what_was_tried(
    store: SQLiteStore, server: FaultServer
) -> None:
    server.fault_for = lambda i: Fault(kind="server_error")
    result, events = await drive(store, agent_for(server.base_url))
    assert result.status == RunStatus.FAILED
    assert [r.payload["attempt"] for r in of(events, EventType.RETRY)] == [1, 2, 3]
    assert len(server.received) == 4
    assert events[-1].payload["reason"] == "model_error"
    assert events[-1].payload["tried"] == {
        f"model:openai-compatible:{server.base_url}:m0": 4}
    # run.failed belongs to the step whose call failed, like the retries before it
    assert {e.step for e in events[-6:]} == {1} and result.error is not None
    request, error = events[-3], events[-2]
    assert (request.type, error.type) == (EventType.MODEL_REQUEST, EventType.MODEL_ERROR)
    assert error.payload["attempts"] == events[-1].payload["tried"]
    assert error.payload["error"]["type"] == "TransientModelError"
    assert result.error is not None
    assert result.error.details["status_code"] == 500
    assert result.error.details["provider"] == "openai-compatible"


async def test_context_length_compacts_and_retries_once(
    store: SQLiteStore, server: FaultServer
) -> None:
    server.set_plan(["ok", "ok", "ok", "context_length"])
    result, events = await drive(store, agent_for(server.base_url))
    assert result.status == RunStatus.COMPLETED
    (compaction,) = [e for e in of(events, EventType.DECISION)
                     if e.payload["decision"] == "compact"]
    start, end = compaction.payload["drop"]
    after = server.received[4].body["messages"]
    assert len(after) == len(server.received[3].body["messages"]) - (end - start) + 1
    assert "left out to fit" in after[start]["content"]
    # tool results stay next to the calls that asked for them
    for i, m in enumerate(after):
        if m["role"] == "tool":
            assert after[i - 1]["role"] in ("assistant", "tool")


async def test_fallback_then_breaker_then_half_open_recovery(
    store: SQLiteStore, server: FaultServer
) -> None:
    port = closed_port()
    board, clock = BreakerBoard(), FakeClock()
    runner = runner_on(store, clock, breakers=board)
    policy = Policy(model_retry=FAST.model_retry, model_timeout_s=3.0,
                    breaker=BreakerSettings(failure_threshold=3, reset_timeout_s=30))
    agent = agent_for(f"http://127.0.0.1:{port}/v1", server.base_url, policy=policy)

    result, events = await drive(store, agent, runner)
    assert result.status == RunStatus.COMPLETED
    fallbacks = [e.payload for e in of(events, EventType.FALLBACK)]
    assert fallbacks[0]["from_model"].endswith("m0") and fallbacks[0]["to_model"].endswith("m1")
    assert fallbacks[0]["reason"] in ("retries spent", "circuit breaker opened")
    assert fallbacks[-1]["reason"] == "circuit breaker open"
    opened = [e.payload for e in of(events, EventType.BREAKER)]
    assert opened[0]["to_state"] == "open" and "m0" in opened[0]["name"]
    answered_by = {e.payload["model"] for e in of(events, EventType.MODEL_RESPONSE)}
    assert answered_by == {"m1"}

    # The primary comes back; after the reset timeout a half-open probe brings it back.
    with FaultServer(responder=counting_responder(STEPS), port=port) as primary:
        clock.advance(30)
        result, events = await drive(store, agent, runner)
        assert result.status == RunStatus.COMPLETED
        moves = [(e.payload["from_state"], e.payload["to_state"])
                 for e in of(events, EventType.BREAKER)]
        assert moves == [("open", "half_open"), ("half_open", "closed")]
        assert len(primary.received) == STEPS + 1
        assert {e.payload["model"] for e in of(events, EventType.MODEL_RESPONSE)} == {"m0"}


async def test_open_tool_breaker_gives_the_model_an_unavailable_result(
    store: SQLiteStore,
) -> None:
    attempts = []

    @tool(idempotent=True, fallback="cached_lookup")
    def flaky_lookup(i: int) -> str:
        """A lookup whose backend is down."""
        attempts.append(i)
        raise ConnectionError("backend down")

    @tool(idempotent=True)
    def cached_lookup(i: int) -> str:
        """A stale but working copy."""
        return f"cached {i}"

    from tether.core import ToolCall
    from tether.models import ScriptedModel

    script = [ToolCall.of("flaky_lookup", i=1), ToolCall.of("flaky_lookup", i=2), "done"]
    policy = Policy(tool_retry=RetryPolicy(max_attempts={"transient": 3}, base_delay_s=0.001),
                    breaker=BreakerSettings(failure_threshold=2, reset_timeout_s=60))
    agent = Agent(name="tools", model=ScriptedModel(script),
                  tools=[flaky_lookup, cached_lookup], policy=policy)
    result, events = await drive(store, agent)
    assert result.status == RunStatus.COMPLETED
    # step 1: two failed attempts open the breaker; the fallback tool answers
    assert attempts == [1, 1]
    assert [e.payload["attempt"] for e in of(events, EventType.RETRY)] == [1]
    results = [e.payload for e in of(events, EventType.TOOL_RESULT)]
    assert [r["content"] for r in results] == ["cached 1", "cached 2"]
    assert {r["ran"] for r in results} == {"cached_lookup"}
    # step 2: the breaker is open, so flaky_lookup is not called at all
    reasons = [e.payload["reason"] for e in of(events, EventType.FALLBACK)]
    assert reasons == ["ConnectionError", "ToolUnavailableError"]
    assert [e.payload["to_state"] for e in of(events, EventType.BREAKER)] == ["open"]


async def test_open_tool_breaker_without_fallback_reaches_the_model(store: SQLiteStore) -> None:
    @tool(idempotent=True)
    def down() -> str:
        """Always down."""
        raise ConnectionError("refused")

    from tether.core import ToolCall
    from tether.models import ScriptedModel

    policy = Policy(tool_retry=RetryPolicy(max_attempts={"transient": 1}),
                    breaker=BreakerSettings(failure_threshold=1, reset_timeout_s=60))
    agent = Agent(name="t", model=ScriptedModel([ToolCall.of("down"), ToolCall.of("down"),
                                                 "gave up"]), tools=[down], policy=policy)
    result, events = await drive(store, agent)
    assert result.status == RunStatus.COMPLETED
    contents = [e.payload["content"] for e in of(events, EventType.TOOL_ERROR)]
    assert "ConnectionError" in contents[0]
    assert json.loads(contents[1]) == {"error": "unavailable", "tool": "down",
                                       "retry_after_s": pytest.approx(60, abs=1),
                                       "message": "do without this tool for now"}


# --- whatever the server does, the run ends and says why ---------------------------

GUARD_S = 120  # a guard against a hang, far above any bound under test; never asserted


class Batches:
    """An observer keeping each committed batch: what was written together."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, events: Sequence[Event]) -> None:
        self.batches.append([e.type for e in events])


TIGHT = Policy(
    model_retry=RetryPolicy(),
    model_timeout_s=0.4,
    breaker=BreakerSettings(failure_threshold=50, reset_timeout_s=30),
)


@pytest.mark.parametrize("kind", FAULTS)
async def test_whatever_the_server_always_does_the_run_ends_with_a_result(
    store: SQLiteStore, kind: str
) -> None:
    fault = Fault(kind=kind, interval_s=0.05, retry_after_s=10)
    with FaultServer(fault_for=lambda i: fault, responder=counting_responder(STEPS),
                     hang_s=1.0) as server:
        batches = Batches()
        runner = runner_on(store, observers=[batches])
        result, events = await asyncio.wait_for(
            drive(store, agent_for(server.base_url, policy=TIGHT), runner), GUARD_S)
    assert isinstance(result, RunResult)
    assert result.status in (RunStatus.COMPLETED, RunStatus.FAILED)
    (summary,) = [r for r in await store.runs() if r.run_id == result.run_id]
    assert summary.status == result.status  # never left running
    if result.status == RunStatus.COMPLETED:
        assert kind in ("ok", "malformed_args", "unknown_tool", "wrong_type_args",
                        "context_length")
        return
    # The failed call is journaled with what was sent, with the run's failure.
    assert batches.batches[-1][-3:] == ["model.request", "model.error", "run.failed"]
    request, error, failed = events[-3:]
    # what the journal says was sent is what the server got last
    sent = prompts(events)[request.seq]
    assert [m["role"] for m in sent] == [m["role"] for m in server.received[-1].body["messages"]]
    assert error.payload["error"] == failed.payload["error"]
    assert error.payload["error_class"] in ("transient", "misbehavior", "fatal",
                                            "rate_limit", "context_length")
    assert error.payload["model_key"] == f"model:openai-compatible:{server.base_url}:m0"
    assert failed.step == error.step == request.step >= 1


@pytest.mark.parametrize(("kind", "error_class"), [
    ("not_json", "transient"), ("truncated_json", "transient"), ("html_200", "transient"),
    ("html_502", "transient"), ("trickle", "transient"), ("huge", "misbehavior"),
])
async def test_gateway_faults_are_retried_and_the_run_completes(
    store: SQLiteStore, server: FaultServer, kind: str, error_class: str
) -> None:
    server.set_plan([Fault(), Fault(kind=kind, interval_s=0.5)])  # a trickle takes 200 s
    result, events = await asyncio.wait_for(
        drive(store, agent_for(server.base_url)), GUARD_S)
    assert result.status == RunStatus.COMPLETED, result.error
    assert result.output == f"done after {STEPS} lookups"  # never the huge body
    retries = of(events, EventType.RETRY)
    assert [r.payload["error_class"] for r in retries] == [error_class]
    assert "<" not in retries[0].payload["error"]["message"]
    if error_class == "misbehavior":  # a rejected answer is journaled before its retry
        assert [e.type for e in events[5:8]] == ["model.request", "model.error", "retry"]


async def test_a_trickle_is_cut_by_the_request_timeout_when_the_policy_sets_none(
    store: SQLiteStore, server: FaultServer
) -> None:
    # Each read is quick; only a bound on the whole attempt stops this body (200 s).
    server.set_plan([Fault(kind="trickle", interval_s=0.5)])
    policy = Policy(model_retry=FAST.model_retry, model_timeout_s=None)
    agent = agent_for(server.base_url, policy=policy,
                      settings=ModelSettings(timeout_s=3.0))
    result, events = await asyncio.wait_for(drive(store, agent), GUARD_S)
    assert result.status == RunStatus.COMPLETED
    (retry,) = of(events, EventType.RETRY)
    assert "within 3 s" in retry.payload["error"]["message"]


async def test_wrong_typed_arguments_go_back_to_the_model(
    store: SQLiteStore, server: FaultServer
) -> None:
    server.set_plan(["wrong_type_args"])
    result, events = await drive(store, agent_for(server.base_url))
    assert result.status == RunStatus.COMPLETED
    (error,) = of(events, EventType.TOOL_ERROR)
    assert "valid integer" in error.payload["content"] and not of(events, EventType.RETRY)
    assert "valid integer" in server.received[1].body["messages"][-1]["content"]
    assert of(events, EventType.MODEL_RESPONSE)[0].payload["malformed"]["calls"][0][
        "arguments"] == '{"i": "#0"}'  # the object the server sent, as JSON text


# --- one model name, two endpoints --------------------------------------------------


async def test_a_fallback_serving_the_same_name_keeps_its_own_breaker_and_attempts(
    store: SQLiteStore,
) -> None:
    policy = Policy(model_retry=RetryPolicy(),
                    model_timeout_s=30.0,
                    breaker=BreakerSettings(failure_threshold=3, reset_timeout_s=60))
    with FaultServer(fault_for=lambda i: Fault(kind="unavailable")) as dead, \
            FaultServer(responder=counting_responder(STEPS)) as backup:
        # the backup fails once, at its second request: its own fault, its own count
        backup.set_plan(["ok", "server_error"])
        agent = Agent(name="same-name", model=model_at(dead.base_url, "qwen"),
                      fallbacks=[model_at(backup.base_url, "qwen")], tools=[lookup],
                      policy=policy)
        runner = runner_on(store)
        runs = [await drive(store, agent, runner) for _ in range(5)]
    assert all(r.status == RunStatus.COMPLETED for r, _ in runs)
    primary = f"model:openai-compatible:{dead.base_url}:qwen"
    secondary = f"model:openai-compatible:{backup.base_url}:qwen"
    # The dead primary's failures add up across runs until its breaker opens; after
    # that it is not called at all (the reset timeout is a minute).
    assert len(dead.received) == 3
    breakers = [e.payload for _, events in runs for e in of(events, EventType.BREAKER)]
    assert breakers == [{"name": primary, "from_state": "closed", "to_state": "open",
                         "reason": breakers[0]["reason"]}]
    retries = [e.payload for _, events in runs for e in of(events, EventType.RETRY)]
    # the backup's one fault is retried from attempt 1: it inherits no spent attempts
    assert [(r["model_key"], r["attempt"]) for r in retries if r["model_key"] == secondary] \
        == [(secondary, 1)]
    first_fallback = of(runs[0][1], EventType.FALLBACK)[0].payload
    assert first_fallback["from_model"] == f"openai-compatible:{dead.base_url}:qwen"
    assert first_fallback["to_model"] == f"openai-compatible:{backup.base_url}:qwen"


async def test_breakers_with_conflicting_settings_are_kept_apart(store: SQLiteStore) -> None:
    board = BreakerBoard()
    strict = board.get("model:x", BreakerSettings(failure_threshold=1))
    lenient = board.get("model:x", BreakerSettings(failure_threshold=10))
    assert strict is not lenient and strict is board.get("model:x",
                                                         BreakerSettings(failure_threshold=1))
    strict.on_failure(0.0, "boom")
    assert (strict.state, lenient.state) == ("open", "closed")
    assert strict.name == "model:x" and "failure_threshold=10" in lenient.name


# --- truncated answers take the repair path -----------------------------------------


def _cut_until_told(body: dict[str, Any]) -> dict[str, Any]:
    told = any("cut off" in str(m.get("content")) for m in body["messages"])
    if told:
        return {"role": "assistant", "content": "Short answer."}
    return {"role": "assistant", "content": "Once upon a time, in a land far aw",
            "finish_reason": "length"}


async def test_a_truncated_answer_is_shown_to_the_model_with_a_request_to_be_brief(
    store: SQLiteStore,
) -> None:
    with FaultServer(responder=_cut_until_told) as server:
        result, events = await drive(store, agent_for(server.base_url))
    assert result.status == RunStatus.COMPLETED and result.output == "Short answer."
    assert not of(events, EventType.RETRY)  # not the same prompt again
    cut = of(events, EventType.MODEL_RESPONSE)[0].payload
    assert cut["rejected"] == "truncated" and cut["finish_reason"] == "length"
    assert cut["message"]["content"] == "Once upon a time, in a land far aw"  # journaled
    (repair,) = [e for e in of(events, EventType.DECISION) if e.payload["decision"] == "repair"]
    second = server.received[1].body["messages"]
    assert second[-2] == {"role": "assistant", "content": "Once upon a time, in a land far aw"}
    assert second[-1]["role"] == "user" and "cut off" in second[-1]["content"]
    assert second[-1]["content"] == repair.payload["message"]["content"]
    # the journal's request chain rebuilds the prompt that was sent
    rebuilt = list(prompts(events).values())[-1]
    assert [m["content"] for m in rebuilt][-2:] == [m["content"] for m in second[-2:]]


async def test_a_model_that_always_runs_long_spends_the_repair_budget(
    store: SQLiteStore,
) -> None:
    def always_cut(body: dict[str, Any]) -> dict[str, Any]:
        return {"role": "assistant", "content": "and so on " * 20, "finish_reason": "length"}

    policy = Policy(model_retry=FAST.model_retry, max_consecutive_repairs=2)
    with FaultServer(responder=always_cut) as server:
        result, events = await drive(store, agent_for(server.base_url, policy=policy))
        assert len(server.received) == 3
    assert result.status == RunStatus.FAILED
    assert events[-1].payload["reason"] == "repair_budget_exhausted"
    assert events[-1].payload["last_output"]["reason"] == "truncated"


# --- resuming ------------------------------------------------------------------------


async def test_a_run_that_failed_on_model_error_gets_fresh_retries_when_resumed(
    store: SQLiteStore, server: FaultServer
) -> None:
    server.fault_for = lambda i: Fault(kind="server_error")
    agent = agent_for(server.base_url)
    result, _ = await drive(store, agent)
    assert result.status == RunStatus.FAILED
    server.fault_for = None
    server.set_plan(["server_error"] * 6)  # 4 requests so far, then 2 more failures
    try:
        resumed = await runner_on(store).resume(result.run_id, agent)
    finally:
        await agent.model.aclose()  # type: ignore[union-attr]
    assert resumed.status == RunStatus.COMPLETED, resumed.error
    events = await store.read(result.run_id)
    after = events[[e.type for e in events].index(EventType.RUN_RESUMED):]
    assert [e.payload["attempt"] for e in of(after, EventType.RETRY)] == [1, 2]


class _CancelOnRetry(SQLiteStore):
    """Cancels the task driving a run as soon as a ``retry`` is committed, before it
    waits: to the journal, a crash in the middle of the retry's wait. (An observer is
    too late: it runs in a thread of its own, and the FakeClock's wait is instant.)"""

    async def append(self, events: Sequence[Event], **kwargs: Any) -> None:
        await super().append(events, **kwargs)
        task = asyncio.current_task()
        if task is not None and any(e.type == EventType.RETRY for e in events):
            task.cancel()


async def _crash_during_a_wait(
    store: SQLiteStore, server: FaultServer, agent: Agent, clock: FakeClock,
) -> str:
    run_id = "run_crashed_while_waiting"
    crashing = _CancelOnRetry(store.path)
    try:
        with pytest.raises(asyncio.CancelledError):
            await asyncio.ensure_future(
                runner_on(crashing, clock).run(agent, "look up", run_id=run_id))
    finally:
        await crashing.close()
    (summary,) = [r for r in await store.runs() if r.run_id == run_id]
    assert summary.status == RunStatus.RUNNING
    return run_id


async def test_a_journaled_retry_after_is_waited_out_after_a_crash(
    store: SQLiteStore, server: FaultServer
) -> None:
    server.set_plan([Fault(kind="rate_limit", retry_after_s=30)])
    agent = agent_for(server.base_url, policy=Policy(model_retry=RetryPolicy(max_delay_s=60)))
    clock = FakeClock()
    run_id = await _crash_during_a_wait(store, server, agent, clock)
    slept = len(clock.sleeps)
    # Resumed with 5 s left before the deadline, it cannot wait 30 s: it fails on the
    # deadline instead of calling early (only the first request reached the server).
    resumed = await runner_on(store, clock).resume(run_id, agent, budget={"max_seconds": 5})
    await agent.model.aclose()  # type: ignore[union-attr]
    assert resumed.status == RunStatus.FAILED
    assert type(resumed.error).__name__ == "BudgetExceededError"
    assert len(server.received) == 1
    assert clock.sleeps[slept:] == []  # the resumed run never waited, not even a part


async def test_a_retry_whose_wait_has_passed_goes_ahead_on_resume(
    store: SQLiteStore, server: FaultServer
) -> None:
    server.set_plan([Fault(kind="rate_limit", retry_after_s=20)])
    agent = agent_for(server.base_url)
    clock = FakeClock()
    run_id = await _crash_during_a_wait(store, server, agent, clock)
    clock.advance(5)  # the process was down for 5 s of the 20
    slept = len(clock.sleeps)
    resumed = await runner_on(store, clock).resume(run_id, agent,
                                                   budget={"max_seconds": 600})
    assert clock.sleeps[slept] == pytest.approx(15)  # what was left of the wait
    await agent.model.aclose()  # type: ignore[union-attr]
    assert resumed.status == RunStatus.COMPLETED
    events = await store.read(run_id)
    (retry,) = of(events, EventType.RETRY)
    answered = of(events, EventType.MODEL_RESPONSE)[0]
    assert answered.ts >= retry.ts + retry.payload["delay_s"]  # journal order, not a timing


# --- models that fail in exotic ways -------------------------------------------------


class Exotic(BaseException):
    """Not an Exception: a careless library's signal."""


class NotAModel:
    provider = "custom"
    model_name = "junk"

    async def complete(self, request: ModelRequest) -> object:
        return 42


@pytest.mark.parametrize(("raised", "expected"), [
    (Exotic("boom"), "FatalModelError"),
    (ExceptionGroup("several", [ValueError("a"), KeyError("b")]), "FatalModelError"),
    (asyncio.CancelledError(), "FatalModelError"),
    (ValueError("bad"), "FatalModelError"),
    (ConnectionResetError("peer"), "TransientModelError"),
    (ExceptionGroup("limited", [RateLimitError("slow down", retry_after=0.0)]),
     "RateLimitError"),
    (None, "FatalModelError"),  # returns 42 instead of a response
])
async def test_whatever_a_model_raises_is_classified_and_the_run_fails_cleanly(
    store: SQLiteStore, raised: BaseException | None, expected: str
) -> None:
    def fail(request: ModelRequest) -> str:
        assert raised is not None
        raise raised

    model: Any = NotAModel() if raised is None else FunctionModel(fail)
    agent = Agent(name="exotic", model=model, policy=TIGHT)
    result = await asyncio.wait_for(runner_on(store).run(agent, "hi"), GUARD_S)
    assert result.status == RunStatus.FAILED
    assert type(result.error).__name__ == expected
    events = await store.read(result.run_id)
    assert [e.type for e in events[-3:]] == ["model.request", "model.error", "run.failed"]


async def test_an_oversized_answer_is_not_the_runs_output(store: SQLiteStore) -> None:
    model = FunctionModel(lambda request: "x" * 5_000)
    policy = Policy(model_retry=FAST.model_retry, max_response_chars=1_000)
    result = await runner_on(store).run(Agent(name="big", model=model, policy=policy), "hi")
    assert result.status == RunStatus.FAILED and result.output is None
    events = await store.read(result.run_id)
    error = events[-2].payload
    assert error["error_class"] == "misbehavior" and "5,000 characters" in \
        error["error"]["message"]
    assert len(of(events, EventType.MODEL_ERROR)) == 3  # each rejected answer, journaled


async def test_an_oversized_truncated_answer_is_rejected_not_repaired(store: SQLiteStore) -> None:
    def runaway(request: ModelRequest) -> ModelResponse:
        raise TruncatedResponseError("cut", response=ModelResponse(
            message=Message.assistant("y" * 5_000), provider="scripted", model="f",
            finish_reason="length"))

    policy = Policy(model_retry=FAST.model_retry, max_response_chars=1_000)
    agent = Agent(name="big", model=FunctionModel(runaway), policy=policy)
    result = await runner_on(store).run(agent, "hi")
    assert result.status == RunStatus.FAILED
    events = await store.read(result.run_id)
    assert not of(events, EventType.MODEL_RESPONSE)  # never in the conversation
    assert "5,000 characters" in events[-1].payload["error"]["message"]
