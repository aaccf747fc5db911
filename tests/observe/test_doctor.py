"""Each doctor detector fires on a planted run and stays silent on a clean run of the
same shape."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from tether.core import Event, RunStatus, ToolCall, TransientModelError
from tether.models import FunctionModel, ModelRequest
from tether.observe import DoctorConfig, diagnose, finding_payloads
from tether.runtime import Agent, BreakerSettings, Budget, Policy, RetryPolicy, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .conftest import Journal

CODES = {i: f"zq{i * 7919 % 10007:05d}" for i in range(20)}


@tool(inline=True)
def lookup(i: int) -> str:
    """Look record ``i`` up."""
    return f"record {i} has code {CODES[i]} and status active"


@tool(inline=True)
def search(q: str) -> str:
    """Search; finds nothing for unknown queries."""
    known = {"alpha": "alpha lives in Lisbon", "beta": "beta lives in Porto",
             "gamma": "gamma lives in Braga"}
    return known.get(q, "nothing found for that query")


@tool(inline=True)
def fetch(doc: str) -> str:
    """Fetch a document."""
    return f"document {doc} says hello-{doc}"


@tool(inline=True)
def work(i: int) -> str:
    """Some work; item 3 is slow in the planted run."""
    if i == 103:
        time.sleep(0.25)
    return f"worked on item{i}"


def _quote_results(request: ModelRequest) -> str:
    """A final answer that uses every tool result it was given."""
    return "Summary: " + " | ".join(m.content or "" for m in request.messages
                                    if m.role == "tool")


def _agent(plan: Sequence[Sequence[ToolCall]], *, final: Any = _quote_results,
           **kwargs: Any) -> Agent:
    def script(request: ModelRequest) -> Any:
        k = request.step - 1
        return list(plan[k]) if k < len(plan) else final(request)

    return Agent(name="doc", model=FunctionModel(script),
                 tools=[lookup, search, fetch, work], budget=Budget(max_steps=50), **kwargs)


async def _run(store: SQLiteStore, agent: Agent) -> list[Event]:
    result = await Runner(store).run(agent, "investigate")
    assert result.status == RunStatus.COMPLETED, result.error
    return await store.read(result.run_id)


def _kinds(events: Sequence[Event]) -> list[str]:
    """The kinds found, but ``outlier_step``: it reads the wall-clock durations of these
    real runs, where a step the machine stalled is a true outlier (it has its own tests,
    on journals with planted durations)."""
    return [f.kind for f in diagnose(events) if f.kind != "outlier_step"]


async def test_repeated_call(store: SQLiteStore) -> None:
    planted = await _run(store, _agent([[ToolCall.of("lookup", i=1)]] * 3))
    clean = await _run(store, _agent([[ToolCall.of("lookup", i=i)] for i in (1, 2, 3)]))
    found = [f for f in diagnose(planted) if f.kind == "repeated_call"]
    assert len(found) == 1 and found[0].steps == (1, 2, 3)
    assert 'lookup({"i":1}) was called 3 times' in found[0].message
    assert found[0].how_to_look == f"tether trace {planted[0].run_id} --full"
    assert _kinds(clean) == []


async def test_unused_result(store: SQLiteStore) -> None:
    plan = [[ToolCall.of("lookup", i=i)] for i in (1, 2, 3)]
    planted = await _run(store, _agent(plan, final=lambda request: "All looked up."))
    clean = await _run(store, _agent(plan))
    found = [f for f in diagnose(planted) if f.kind == "unused_result"]
    assert len(found) == 1 and found[0].steps == (1, 2, 3)
    assert "3 result(s) of lookup" in found[0].message
    assert _kinds(clean) == []

    # A result used by a later call's arguments (not only by the answer) counts as used.
    def chained(request: ModelRequest) -> Any:
        return "done"

    chain = await _run(store, _agent([[ToolCall.of("search", q="alpha")],
                                      [ToolCall.of("fetch", doc="lisbon")]], final=chained))
    assert [f.steps for f in diagnose(chain) if f.kind == "unused_result"] == [(2,)]


async def test_cycle(store: SQLiteStore) -> None:
    loop = [[ToolCall.of("search", q="alpha")], [ToolCall.of("fetch", doc="d1")]] * 3
    planted = await _run(store, _agent(loop))
    clean = await _run(store, _agent([
        [ToolCall.of("search", q=q)] if k % 2 == 0 else [ToolCall.of("fetch", doc=f"d{k}")]
        for k, q in enumerate(["alpha", "x", "beta", "y", "gamma", "z"])]))
    found = [f for f in diagnose(planted) if f.kind == "cycle"]
    assert len(found) == 1 and found[0].steps == (1, 2, 3, 4, 5, 6)
    assert "repeat 3 times in a row" in found[0].message
    assert "cycle" not in _kinds(clean)
    assert _kinds(clean) == []


async def test_no_progress(store: SQLiteStore) -> None:
    planted = await _run(store, _agent([[ToolCall.of("search", q=q)]
                                        for q in ("alpha", "delta", "epsilon", "zeta")]))
    clean = await _run(store, _agent([[ToolCall.of("search", q=q)]
                                      for q in ("alpha", "beta", "gamma", "delta")]))
    found = [f for f in diagnose(planted) if f.kind == "no_progress"]
    assert len(found) == 1 and found[0].steps == (3, 4)
    assert _kinds(clean) == []


async def test_retry_storm(store: SQLiteStore) -> None:
    def flaky(failures: int) -> Agent:
        calls = {"n": 0}

        def script(request: ModelRequest) -> Any:
            calls["n"] += 1
            if calls["n"] <= failures:
                raise TransientModelError("upstream overloaded", provider="scripted")
            return "answer"

        policy = Policy(model_retry=RetryPolicy(max_attempts={"transient": 10},
                                                base_delay_s=0.001),
                        breaker=BreakerSettings(failure_threshold=20))
        return Agent(name="flaky", model=FunctionModel(script), policy=policy)

    planted = await _run(store, flaky(6))
    clean = await _run(store, flaky(2))
    found = [f for f in diagnose(planted) if f.kind == "retry_storm"]
    assert len(found) == 1 and found[0].steps == (1,)
    assert "6 retries of model calls" in found[0].message
    assert "TransientModelError" in found[0].message
    assert found[0].how_to_look == f"tether show {planted[0].run_id}"
    assert _kinds(clean) == []


async def test_outlier_step_latency(store: SQLiteStore) -> None:
    planted = await _run(store, _agent([[ToolCall.of("work", i=100 + i)] for i in range(8)]))
    clean = await _run(store, _agent([[ToolCall.of("work", i=200 + i)] for i in range(8)]))
    found = [f for f in diagnose(planted) if f.kind == "outlier_step"]
    assert len(found) == 1 and found[0].steps == (4,)
    assert "latency" in found[0].message
    assert _kinds(clean) == []


def _priced(costs: Sequence[float]) -> list[Event]:
    journal = Journal("run_cost").started(tools=["t"])
    for k, cost in enumerate(costs, start=1):
        journal.model(k, calls=[("t", {"k": k})], cost=cost, tokens=(100, 10))
        journal.result(k, 0, "t", f"result number {k * 1111}")
    journal.model(len(costs) + 1, answer="done " + " ".join(
        str(k * 1111) for k in range(1, len(costs) + 1)), cost=0.0011)
    return journal.events


def test_outlier_step_cost() -> None:
    planted = _priced([0.001, 0.0012, 0.0009, 0.05, 0.001, 0.0011, 0.001, 0.0012])
    clean = _priced([0.001, 0.0012, 0.0009, 0.0013, 0.001, 0.0011, 0.001, 0.0012])
    found = [f for f in diagnose(planted) if f.kind == "outlier_step"]
    assert len(found) == 1 and found[0].steps == (4,)
    assert "cost" in found[0].message and "USD" in found[0].message
    assert diagnose(clean) == []


def test_retry_storms_are_counted_in_a_time_window() -> None:
    def journal(spacing_s: float) -> list[Event]:
        j = Journal("run_r").started()
        for attempt in range(1, 7):
            j.add("retry", 1, {"target": "tool", "call_id": "c", "tool": "t",
                               "attempt": attempt, "delay_s": spacing_s,
                               "error": {"type": "ConnectionError", "message": "reset"}},
                  span="s1.t0", dt=spacing_s)
        j.model(1, answer="ok")
        return j.events

    assert [f.kind for f in diagnose(journal(1.0))] == ["retry_storm"]
    assert diagnose(journal(30.0)) == []  # never 5 within 60 s
    config = DoctorConfig(storm_retries=3, storm_window_s=61)
    assert [f.kind for f in diagnose(journal(30.0), config=config)] == ["retry_storm"]


def test_finding_payloads_hook_and_finding_events_ignored() -> None:
    j = Journal("run_h").started(tools=["t"])
    for k in (1, 2):
        j.model(k, calls=[("t", {"same": True})])
        j.result(k, 0, "t", "the same thing")
    j.model(3, answer="the same thing")
    payloads = finding_payloads(j.events)
    assert {p["kind"] for p in payloads} == {"repeated_call", "no_progress"}
    assert all(set(p) == {"kind", "steps", "message", "how_to_look", "subject"} or set(p) == {
        "kind", "steps", "message", "how_to_look"} for p in payloads)
    for payload in payloads:
        j.add("finding", 3, payload)
    # Journaled once: the hook gives nothing new, whatever the wording now says ...
    assert finding_payloads(j.events) == []
    assert [f.to_payload() for f in diagnose(j.events)] == payloads  # findings ignored
    # ... but a finding that grew (a third repeat after a resume) is new.
    j.model(4, calls=[("t", {"same": True})])
    j.result(4, 0, "t", "the same thing")
    j.model(5, answer="the same thing")
    grown = finding_payloads(j.events)
    assert {(p["kind"], tuple(p["steps"])) for p in grown} == {
        ("repeated_call", (1, 2, 4)), ("no_progress", (2, 4))}
    assert diagnose([]) == []
