"""The live JSONL step log agrees with the journal, event for event, for every event type."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Sequence
from pathlib import Path
from typing import Any

import pytest

from tether.core import (
    ContextLengthError,
    Event,
    EventType,
    RateLimitError,
    RunStatus,
    ToolCall,
    TransientModelError,
)
from tether.models import FunctionModel, ModelRequest, ScriptedModel
from tether.observe import JsonlLog, read_jsonl
from tether.runtime import Agent, BreakerSettings, Budget, Policy, RetryPolicy, Runner
from tether.store import SQLiteStore
from tether.tools import tool

#: Every event type the Runner commits today.
RUNNER_TYPES = {
    EventType.RUN_STARTED, EventType.RUN_RESUMED, EventType.RUN_COMPLETED,
    EventType.RUN_FAILED, EventType.RUN_NEEDS_ATTENTION, EventType.RUN_QUARANTINED,
    EventType.MODEL_REQUEST, EventType.MODEL_RESPONSE, EventType.TOOL_INTENT,
    EventType.TOOL_RESULT, EventType.TOOL_ERROR, EventType.DECISION, EventType.RETRY,
    EventType.FALLBACK, EventType.BREAKER, EventType.BUDGET,
}
FAST = RetryPolicy(max_attempts={"transient": 3, "rate_limit": 3}, base_delay_s=0.001)


_ENTERED: list[asyncio.Event] = []


async def _die() -> str:
    """Stands in for the process dying in the middle of a tool call: the call hangs
    until :func:`_crashes` cancels the whole run from outside, as a kill would stop it."""
    _ENTERED[-1].set()
    await asyncio.sleep(3600)
    return "never"


async def _crashes(work: Awaitable[Any]) -> None:
    """Run ``work`` until one of its tools "dies", then cancel it mid-call."""
    _ENTERED.append(asyncio.Event())
    task = asyncio.ensure_future(work)
    await asyncio.wait_for(_ENTERED[-1].wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@tool
def lookup(i: int) -> str:
    """Look a record up."""
    return f"record {i:04d}"


@tool
def flaky(x: int) -> str:
    """Always fails."""
    raise ValueError(f"flaky cannot handle {x}")


@tool
async def charge(amount: int) -> str:
    """Charge a card (not idempotent, no reconcile hook): crashes the first time."""
    return await _die()


@tool(reconcile=lambda key: f"booked under {key}")
async def book(seat: str) -> str:
    """Book a seat; its reconcile hook finds the booking."""
    return await _die()


@tool(idempotent=True)
async def explode() -> str:
    """Crashes the process every time."""
    return await _die()


_failures: dict[str, int] = {}


def _fail_first(key: str, error: BaseException) -> None:
    _failures[key] = _failures.get(key, 0) + 1
    if _failures[key] == 1:
        raise error


@tool(idempotent=True)
def sometimes(x: int) -> str:
    """Fails with a transient error the first time: retried."""
    _fail_first(f"sometimes{x}", ConnectionError("connection reset"))
    return f"worked for {x}"


@tool(idempotent=True)
def broken() -> str:
    """Always fails: retried, then its circuit breaker opens."""
    raise ConnectionError("no route to host")


@tool(fallback="backup_search")
def search(q: str) -> str:
    """The primary search: down."""
    raise ValueError("search backend is down")


@tool
def backup_search(q: str) -> str:
    """The backup search."""
    return f"backup results for {q}"


def _policy_model(request: ModelRequest) -> Any:
    step = request.step
    if step == 1:
        _fail_first("model-1", TransientModelError("overloaded", provider="scripted"))
        return [ToolCall.of("sometimes", x=1), ToolCall.of("search", q="tether")]
    if step == 2:
        return [ToolCall.of("lookup", i=2), ToolCall.of("broken")]
    if step == 3:
        _fail_first("model-3", ContextLengthError("prompt too long", provider="scripted"))
        return ToolCall.of("lookup", i=3)
    return RateLimitError("slow down", provider="scripted")


def _backup_model(request: ModelRequest) -> Any:
    return "answered by the backup"


def _agent(name: str, script: Sequence[Any], **kwargs: Any) -> Agent:
    return Agent(name=name, instructions="Be brief.", model=ScriptedModel(script),
                 tools=[lookup, flaky, charge, book, explode], **kwargs)


async def _every_kind_of_run(runner: Runner) -> list[str]:
    ids = []
    # Tool results, a failing tool, an unknown tool, then an answer.
    done = await runner.run(_agent("mixed", [
        [ToolCall.of("lookup", i=1), ToolCall.of("flaky", x=2), ToolCall.of("nope")],
        "done"]), "mixed bag")
    assert done.status == RunStatus.COMPLETED
    ids.append(done.run_id)
    # A budget stop, then a resume with a raised budget.
    agent = _agent("budget", [ToolCall.of("lookup", i=1), "finally"], budget=Budget(max_steps=1))
    failed = await runner.run(agent, "too long")
    assert failed.status == RunStatus.FAILED
    raised = await runner.resume(failed.run_id, agent, budget=Budget(max_steps=5))
    assert raised.status == RunStatus.COMPLETED
    ids.append(failed.run_id)
    # Retries, fallbacks (model and tool), a compaction, breakers.
    _failures.clear()
    policies = Agent(
        name="policies", model=FunctionModel(_policy_model, model_name="primary"),
        fallbacks=[FunctionModel(_backup_model, model_name="backup")],
        tools=[lookup, sometimes, search, backup_search, broken],
        policy=Policy(model_retry=FAST, tool_retry=FAST,
                      breaker=BreakerSettings(failure_threshold=2, reset_timeout_s=60)),
    )
    done = await runner.run(policies, "exercise the policies")
    assert done.status == RunStatus.COMPLETED, done.error
    ids.append(done.run_id)
    # A call in doubt: needs attention, resolved by hand, resumed to the end.
    agent = _agent("doubt", [ToolCall.of("charge", amount=5), "charged"])
    await _crashes(runner.run(agent, "charge it", run_id="run_doubt"))
    stuck = await runner.resume("run_doubt", agent)
    assert stuck.status == RunStatus.NEEDS_ATTENTION
    call_id = (await runner.store.ledger("run_doubt"))[0].call_id
    await runner.resolve("run_doubt", call_id, result="charged once")
    assert (await runner.resume("run_doubt", agent)).status == RunStatus.COMPLETED
    ids.append("run_doubt")
    # A decision: reconcile() settles the call in doubt.
    agent = _agent("reconcile", [ToolCall.of("book", seat="4A"), "booked"])
    await _crashes(runner.run(agent, "book it", run_id="run_reconcile"))
    assert (await runner.resume("run_reconcile", agent)).status == RunStatus.COMPLETED
    ids.append("run_reconcile")
    # A crash loop: quarantined.
    agent = _agent("loop", [ToolCall.of("explode"), "never"], max_recoveries=1)
    await _crashes(runner.run(agent, "explode", run_id="run_loop"))
    await _crashes(runner.resume("run_loop", agent))
    assert (await runner.resume("run_loop", agent)).status == RunStatus.QUARANTINED
    ids.append("run_loop")
    return ids


def _normal(value: Any) -> Any:
    return json.loads(json.dumps(value))


async def test_jsonl_log_and_journal_agree_for_every_event_type(
    tmp_path: Path, store: SQLiteStore
) -> None:
    path = tmp_path / "logs" / "run.jsonl"
    flushed: list[bool] = []

    def check_flushed(events: Sequence[Event]) -> None:
        # Runs after the log: the batch must already be in the file.
        last = json.loads(path.read_text().splitlines()[-1])
        flushed.append((last["run_id"], last["seq"]) == (events[-1].run_id, events[-1].seq))

    with JsonlLog(path) as log:
        def log_then_check(events: Sequence[Event]) -> None:
            # Observers are independent (a thread each): the check follows the log here.
            log(events)
            check_flushed(events)

        ids = await _every_kind_of_run(Runner(store, observers=[log_then_check]))
    assert flushed and all(flushed)

    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert all(list(line) == ["run_id", "seq", "type", "step", "ts", "span_id",
                              "parent_span_id", "duration_ms", "payload"] for line in lines)
    types = set()
    for run_id in ids:
        journal = await store.read(run_id)
        logged = [line for line in lines if line["run_id"] == run_id]
        assert logged == [_normal(e.to_dict()) for e in journal], run_id
        types |= {e.type for e in journal}
    assert types >= RUNNER_TYPES, RUNNER_TYPES - types
    assert len(lines) == sum([len(await store.read(r)) for r in ids])
    assert [e.to_dict() for e in read_jsonl(path)] == lines


async def test_jsonl_log_appends_across_runners_and_redacts_when_asked(
    tmp_path: Path, store: SQLiteStore
) -> None:
    from tether.core import Redactor

    path = tmp_path / "run.jsonl"
    key = "sk-proj-" + "q" * 30
    agent = Agent(name="a", model=ScriptedModel([f"my key is {key}"]))
    log = JsonlLog(path, redactor=Redactor())
    first = await Runner(store, observers=[log]).run(agent, "one")
    log.close()
    with pytest.raises(ValueError, match="closed"):
        log([])
    with JsonlLog(path) as again:
        second = await Runner(store, observers=[again]).run(
            Agent(name="b", model=ScriptedModel(["two"])), "two")
    runs = [json.loads(line)["run_id"] for line in path.read_text().splitlines()]
    assert runs[0] == first.run_id and runs[-1] == second.run_id
    assert key not in path.read_text() and "[REDACTED:openai_key]" in path.read_text()
