"""Regression tests for bugs found in review: breakers, quarantine, budgets, fallbacks."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tether.core import (
    ConfigurationError,
    ContextLengthError,
    EventType,
    RunStatus,
    ToolCall,
)
from tether.models import FunctionModel, ModelRequest, ScriptedModel
from tether.runtime import Agent, BreakerSettings, Budget, Policy, Runner
from tether.runtime._policy import PROBE_POLL_S
from tether.store import SQLiteStore
from tether.testing import FakeClock
from tether.tools import ToolContext, tool


async def test_an_interrupted_probe_does_not_leave_the_breaker_half_open(
    store: SQLiteStore,
) -> None:
    calls = []

    def model(request: ModelRequest) -> str:
        calls.append(len(request.messages))
        if len(calls) == 1:
            raise ContextLengthError("too long", provider="scripted", model="function")
        return "fine"

    policy = Policy(breaker=BreakerSettings(failure_threshold=1, reset_timeout_s=0.0))
    agent = Agent(name="a", model=FunctionModel(model), policy=policy)
    runner = Runner(store)
    breaker = runner.breakers.get("model:scripted:function", policy.breaker)
    breaker.state, breaker.opened_at = "open", 0.0
    first = await runner.run(agent, "x")  # the probe meets a context-length error
    assert first.status == RunStatus.FAILED
    assert breaker.state == "closed"  # the provider answered: it is up
    assert (await runner.run(agent, "y")).status == RunStatus.COMPLETED


async def test_runs_waiting_on_a_half_open_probe_do_not_spend_their_attempts(
    store: SQLiteStore,
) -> None:
    clock = FakeClock()
    calls = 0

    async def slow(request: ModelRequest) -> str:
        nonlocal calls
        calls += 1
        if calls == 1:  # the probe: it answers once both other runs wait on it
            while clock.sleeps.count(PROBE_POLL_S) < 2:  # noqa: ASYNC110 - no event to await
                await asyncio.sleep(0)
        return "fine"

    policy = Policy(breaker=BreakerSettings(failure_threshold=1, reset_timeout_s=30))
    agent = Agent(name="a", model=FunctionModel(slow), policy=policy)
    runner = Runner(store, clock=clock)
    breaker = runner.breakers.get("model:scripted:function", policy.breaker)
    breaker.state, breaker.opened_at = "open", clock.monotonic() - 30  # a probe is due
    results = await asyncio.wait_for(
        asyncio.gather(*(runner.run(agent, f"t{i}") for i in range(3))), 60)
    assert [r.status for r in results] == [RunStatus.COMPLETED] * 3
    for result in results:
        events = await store.read(result.run_id)
        assert not [e for e in events if e.type == EventType.RETRY]  # no attempt spent
    assert set(clock.sleeps) == {PROBE_POLL_S}  # they polled; no backoff


async def test_resuming_cleanly_stopped_runs_never_quarantines_them(store: SQLiteStore) -> None:
    agent = Agent(name="a", model=ScriptedModel([ToolCall.of("nothing")]), max_recoveries=2)
    runner = Runner(store)
    result = await runner.run(agent, "x")  # fails: the script runs out after step 1
    for _ in range(4):
        result = await runner.resume(result.run_id, agent)
        assert result.status == RunStatus.FAILED
    assert type(result.error).__name__ == "ScriptExhaustedError"


async def test_a_bad_budget_override_is_refused_before_it_is_journaled(
    store: SQLiteStore,
) -> None:
    agent = Agent(name="a", model=ScriptedModel(["done"]), budget=Budget(max_steps=0))
    runner = Runner(store)
    result = await runner.run(agent, "x")
    before = await store.read(result.run_id)
    with pytest.raises(ConfigurationError, match="max_steps"):
        await runner.resume(result.run_id, agent, budget={"max_step": 10})
    assert await store.read(result.run_id) == before
    done = await runner.resume(result.run_id, agent, budget={"max_steps": 5})
    assert (done.status, done.output, done.error) == (RunStatus.COMPLETED, "done", None)


async def test_a_model_retry_does_not_trigger_the_tool_fallback(store: SQLiteStore) -> None:
    from tether.core import ModelRetry

    @tool(fallback="other")
    def picky(n: int) -> str:
        """Wants even numbers."""
        raise ModelRetry("n must be even")

    @tool
    def other(n: int) -> str:
        """Never needed."""
        return "other"

    agent = Agent(name="a", model=ScriptedModel([ToolCall.of("picky", n=1), "ok"]),
                  tools=[picky, other])
    result = await Runner(store).run(agent, "x")
    events = await store.read(result.run_id)
    assert not [e for e in events if e.type == EventType.FALLBACK]
    assert [e.payload["content"] for e in events if e.type == EventType.TOOL_ERROR] == [
        "n must be even"]


FALLBACK_CHILD = textwrap.dedent("""
    import asyncio, os, signal, sys
    from pathlib import Path
    from tether.core import ToolCall
    from tether.models import ScriptedModel
    from tether.runtime import Agent, Policy, RetryPolicy, Runner
    from tether.store import SQLiteStore
    from tether.tools import tool

    SENT = Path(sys.argv[2])

    @tool(idempotent=True, fallback="send_smtp")
    def send_api(to: str) -> str:
        '''Send through the API (down).'''
        raise ConnectionError("api down")

    @tool
    def send_smtp(to: str) -> str:
        '''Send by SMTP: not idempotent.'''
        with SENT.open("a") as f:
            f.write(to + "\\n")
        if sys.argv[3] == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        return "sent"

    agent = Agent(name="mail", model=ScriptedModel([ToolCall.of("send_api", to="ann"), "ok"]),
                  tools=[send_api, send_smtp],
                  policy=Policy(tool_retry=RetryPolicy(max_attempts={"transient": 1})))
    runner = Runner(SQLiteStore(sys.argv[1]))
    if sys.argv[3] == "crash":
        asyncio.run(runner.run(agent, "mail ann", run_id="run_mail"))
    else:
        print(asyncio.run(runner.resume("run_mail", agent)).status)
""")


def test_a_crash_inside_a_fallback_tool_follows_the_fallback_tools_policy(
    tmp_path: Path,
) -> None:
    db, sent = str(tmp_path / "t.db"), tmp_path / "sent"

    def child(mode: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", FALLBACK_CHILD, db, str(sent), mode],
                              capture_output=True, text=True, timeout=60)

    assert child("crash").returncode == -signal.SIGKILL
    resumed = child("resume")
    assert resumed.stdout.strip() == "needs_attention", resumed.stderr
    assert sent.read_text().splitlines() == ["ann"]  # not sent a second time


async def test_an_idempotent_call_in_doubt_with_redacted_arguments_reruns_with_the_real_ones(
    store: SQLiteStore,
) -> None:
    runs = []

    @tool(idempotent=True)
    def fetch(url: str, ctx: ToolContext) -> str:
        """Fetch a URL."""
        runs.append(url)
        return "page"

    agent = Agent(name="f", model=ScriptedModel(
        [ToolCall.of("fetch", url="https://bob:hunter2secret@api.example.test/x"), "ok"]),
        tools=[fetch])
    # Journal a run that stopped between the intent and the result of that call.
    from tether.runtime._execution import Execution
    from tether.runtime._state import RunState

    execution = Execution(Runner(store), agent, RunState(run_id="run_r"))
    await execution.commit([execution.event(EventType.RUN_STARTED, 0, {
        "agent": "f", "task": "x"})])
    step = ScriptedModel([ToolCall.of("fetch", url="https://bob:hunter2secret@api.example"
                                      ".test/x")])
    response = await step.complete(ModelRequest(messages=tuple(execution.state.messages)))
    execution.settle = _never  # type: ignore[method-assign]
    await execution.tools.offer(1)  # the tools of step 1, as the step loop asks them
    await execution.record(1, ModelRequest(messages=tuple(execution.state.messages), step=1),
                           step, response, 1.0)
    intent = next(e for e in await store.read("run_r") if e.type == EventType.TOOL_INTENT)
    assert "hunter2secret" not in intent.payload["arguments"]["url"]
    # The abandoned driver "dies": its lease goes (a live driver, even of this process,
    # is never taken over).
    assert execution.lease is not None
    await store.release(execution.lease)
    result = await Runner(store).resume("run_r", agent)
    # The journal holds the arguments redacted and sealed: the re-run gets the originals.
    assert result.status == RunStatus.COMPLETED, result.error
    assert runs == ["https://bob:hunter2secret@api.example.test/x"]


async def _never(*args: object, **kwargs: object) -> bool:
    return False
