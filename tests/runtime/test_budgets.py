"""Each budget stops a run at the right point with nothing lost; a raised budget resumes it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tether.core import EventType, Message, RunStatus, ToolCall, Usage
from tether.models import FunctionModel, ModelRequest, ModelResponse, step_of
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore
from tether.testing import FaultServer
from tether.tools import tool


@tool(idempotent=True)
async def wait(i: int) -> str:
    """Wait a little."""
    await asyncio.sleep(0.05)
    return f"waited {i}"


def priced(request: ModelRequest) -> ModelResponse:
    """A gpt-4.1-mini look-alike: 10 steps of 1,000 input and 100 output tokens."""
    k = step_of(request)
    message = (Message.assistant(None, (ToolCall.of("wait", i=k),)) if k < 9
               else Message.assistant("all done"))
    return ModelResponse(message=message, provider="openai", model="gpt-4.1-mini",
                         usage=Usage(input_tokens=1000, output_tokens=100, requests=1))


@pytest.mark.parametrize(("budget", "limit", "steps_done"), [
    (Budget(max_steps=4), "max_steps", 4),
    (Budget(max_input_tokens=3500), "max_input_tokens", 4),
    (Budget(max_output_tokens=500), "max_output_tokens", 5),
    (Budget(max_cost_usd=0.002), "max_cost_usd", 4),
    (Budget(max_seconds=0.12), "max_seconds", None),
])
async def test_each_budget_stops_the_run_then_a_raised_one_finishes_it(
    store: SQLiteStore, budget: Budget, limit: str, steps_done: int | None
) -> None:
    agent = Agent(name="b", model=FunctionModel(priced), tools=[wait], budget=budget)
    runner = Runner(store)
    result = await runner.run(agent, "ten steps")
    assert result.status == RunStatus.FAILED
    events = await store.read(result.run_id)
    failed = events[-1].payload
    assert failed["reason"] == "budget_exceeded"
    assert failed["error"]["limit"] == limit
    assert failed["error"]["used"] >= failed["error"]["allowed"]
    assert "--budget" in failed["error"]["hint"]
    if steps_done is not None:
        assert result.steps == steps_done
    # every step that ran is complete in the journal: no intent without its result
    intents = {e.payload["call_id"] for e in events if e.type == EventType.TOOL_INTENT}
    results = {e.payload["call_id"] for e in events
               if e.type in (EventType.TOOL_RESULT, EventType.TOOL_ERROR)}
    assert intents == results
    if limit == "max_cost_usd":
        # checked before each call: the call that crosses the limit is the last one
        assert result.cost_usd == pytest.approx(4 * (1000 * 0.4 + 100 * 1.6) / 1e6)

    raised = Budget(**{**vars(budget), limit: None})
    done = await runner.resume(result.run_id, agent, budget=raised)
    assert done.status == RunStatus.COMPLETED and done.output == "all done"
    assert done.steps == 10
    after = await store.read(result.run_id)
    assert after[: len(events)] == events  # nothing lost or rewritten
    (budget_event,) = [e for e in after if e.type == EventType.BUDGET]
    assert budget_event.payload["raised"] == {limit: None}


CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    from tether.core import EventType
    from tether.models import OpenAIModel
    from tether.runtime import Agent, BreakerSettings, Policy, RetryPolicy, Runner
    from tether.store import SQLiteStore
    from tether.testing import FakeClock

    class KillOnSecondRetry(SQLiteStore):
        async def append(self, events, *, lease=None):
            await super().append(events, lease=lease)
            if any(e.type == EventType.RETRY and e.payload["attempt"] == 2 for e in events):
                os.kill(os.getpid(), signal.SIGKILL)

    async def main(db, url, mode):
        model = OpenAIModel("m", api_key="sk-test", base_url=url, provider="openai-compatible")
        # Real backoff (0.5 s doubling) on a clock that skips it, in both processes.
        policy = Policy(model_retry=RetryPolicy(max_attempts={"transient": 4}),
                        breaker=BreakerSettings(failure_threshold=100))
        agent = Agent(name="r", model=model, policy=policy)
        runner = Runner(KillOnSecondRetry(db), clock=FakeClock())
        if mode == "run":
            result = await runner.run(agent, "hello", run_id="run_retry")
        else:
            result = await runner.resume("run_retry", agent)
        await model.aclose()
        print(result.status)

    asyncio.run(main(*sys.argv[1:]))
""")


def test_a_crash_mid_retry_sequence_keeps_the_attempt_count(tmp_path: Path) -> None:
    db = str(tmp_path / "t.db")
    with FaultServer(fault_for=lambda i: __import__("tether.testing").testing.Fault(
            kind="server_error")) as server:
        env = dict(os.environ)
        first = subprocess.run([sys.executable, "-c", CHILD, db, server.base_url, "run"],
                               capture_output=True, text=True, env=env, timeout=60)
        assert first.returncode == -9, first.stderr
        assert len(server.received) == 2  # killed once the 2nd failure was journaled
        second = subprocess.run([sys.executable, "-c", CHILD, db, server.base_url, "resume"],
                                capture_output=True, text=True, env=env, timeout=60)
        assert second.stdout.strip() == "failed", second.stderr
        # 4 attempts in all across both processes, not 3 + 4
        assert len(server.received) == 4

    async def check() -> None:
        store = SQLiteStore(db)
        events = await store.read("run_retry")
        assert [e.payload["attempt"] for e in events if e.type == EventType.RETRY] == [1, 2, 3]
        await store.close()

    asyncio.run(check())
