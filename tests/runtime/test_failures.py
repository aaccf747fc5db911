"""Failing gracefully, against a real OpenAI-compatible server with injected faults."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from tether.core import EventType, RunStatus
from tether.models import OpenAIModel
from tether.runtime import Agent, BreakerBoard, BreakerSettings, Policy, RetryPolicy, Runner
from tether.store import SQLiteStore
from tether.testing import Fault, FaultServer, closed_port, counting_responder
from tether.tools import tool

STEPS = 3


@tool(idempotent=True, inline=True)
def lookup(i: int) -> str:
    """Look up record i."""
    return f"record {i}"


FAST = Policy(
    model_retry=RetryPolicy(base_delay_s=0.01, max_delay_s=0.1),
    model_timeout_s=0.5,
    breaker=BreakerSettings(failure_threshold=5, reset_timeout_s=0.3),
)


def model_at(url: str, name: str = "fault-model") -> OpenAIModel:
    return OpenAIModel(name, api_key="sk-test", base_url=url, provider="openai-compatible")


def agent_for(*urls: str, policy: Policy = FAST, **kwargs: Any) -> Agent:
    primary, *fallbacks = [model_at(u, f"m{i}") for i, u in enumerate(urls)]
    return Agent(name="faulty", model=primary, fallbacks=fallbacks, tools=[lookup],
                 policy=policy, **kwargs)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer(responder=counting_responder(STEPS), hang_s=2.0) as s:
        yield s


async def drive(store: SQLiteStore, agent: Agent, runner: Runner | None = None) -> tuple:  # type: ignore[type-arg]
    try:
        result = await (runner or Runner(store)).run(agent, "look up three records")
    finally:
        for model in (agent.model, *agent.fallbacks):
            if isinstance(model, OpenAIModel):
                await model.aclose()
    return result, await store.read(result.run_id)


def of(events: list, kind: str) -> list:  # type: ignore[type-arg]
    return [e for e in events if e.type == kind]


@pytest.mark.parametrize(("fault", "error_class"), [
    (Fault(kind="rate_limit", retry_after_s=0.05), "rate_limit"),
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
        assert retry.payload["delay_s"] == 0.05  # Retry-After honoured
        assert retry.payload["error"]["retry_after"] == 0.05
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
    assert result.error is not None and result.error["type"] == "FatalModelError"
    assert result.error.get("hint")
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
    assert events[-1].payload["tried"] == {"model:openai-compatible:m0": 4}
    assert events[-1].step == 0 and result.error is not None
    assert result.error["status_code"] == 500 and result.error["provider"] == "openai-compatible"


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
    board = BreakerBoard()
    runner = Runner(store, breakers=board)
    policy = Policy(model_retry=FAST.model_retry, model_timeout_s=0.5,
                    breaker=BreakerSettings(failure_threshold=3, reset_timeout_s=0.3))
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
        await asyncio.sleep(0.35)
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
