"""The sharper doctor: each detector fires on a planted run and stays silent on a clean
run of the same shape (journals built event by event, and a real Runner for resumes)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tether.core import Event, EventType, RunStatus, ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.observe import diagnose, finding_payloads
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .conftest import Journal


def _kinds(events: Sequence[Event]) -> list[str]:
    return sorted(f.kind for f in diagnose(events))


def _charges(first: float, second: float) -> list[Event]:
    j = Journal("run_amount").started(tools=["charge"])
    j.model(1, calls=[("charge", {"amount": first})])
    j.result(1, 0, "charge", "charged, receipt R-1001")
    j.model(2, calls=[("charge", {"amount": second})])
    j.result(2, 0, "charge", "charged, receipt R-1002")
    j.model(3, answer="Receipts R-1001 and R-1002.")
    return j.events


def test_numbers_are_compared_as_values() -> None:
    second = next(e for e in _charges(10, 10.0)
                  if e.type == EventType.MODEL_RESPONSE and e.step == 2)
    assert second.payload["message"]["tool_calls"][0]["arguments"] == '{"amount": 10.0}'  
    found = [f for f in diagnose(_charges(10, 10.0)) if f.kind == "repeated_call"]
    assert len(found) == 1 and found[0].steps == (1, 2)
    assert 'charge({"amount":10})' in found[0].message
    assert _kinds(_charges(10, 10.5)) == []


def test_validated_arguments_are_compared_not_the_model_text() -> None:
    events = _charges(10, 11)
    # The model wrote 11; validation made it 10 (what the tool got, in the intent).
    intent = next(e for e in events if e.type == EventType.TOOL_INTENT and e.step == 2)
    intent.payload["arguments"] = {"amount": 10}
    assert [f.kind for f in diagnose(events)] == ["repeated_call"]


def _wasted(failures: int, *, answer: str = "Charged 1.23 million units, receipt R-77821."
            ) -> list[Event]:
    j = Journal("run_waste").started(tools=["charge"])
    for step in range(1, failures + 1):
        j.model(step, calls=[("charge", {"amount": f"{step}0 USD"})], tokens=(100 + 10 * step, 20))
        j.result(step, 0, "charge", f"amount must be a number, got '{step}0 USD'",
                 error="ValidationError")
    step = failures + 1
    j.model(step, calls=[("charge", {"amount": 10})], tokens=(100 + 10 * step, 20))
    j.result(step, 0, "charge", "charged 1234567 units, receipt R-77821")
    j.model(step + 1, answer=answer, tokens=(110 + 10 * step, 20))
    return j.events


def test_wasted_steps_before_the_right_call() -> None:
    planted = _wasted(4)
    found = [f for f in diagnose(planted) if f.kind == "wasted_steps"]
    assert len(found) == 1 and found[0].steps == (1, 2, 3, 4)
    assert "4 wasted step(s), 580 tokens" in found[0].message  # 110..140 + 4 * 20
    assert "ValidationError" in found[0].message and "step 5's call of charge" in found[0].message
    # The right call's result was used (reformatted): not flagged as unused.
    assert _kinds(planted) == ["wasted_steps"]
    assert _kinds(_wasted(0)) == []  # clean: right the first time
    assert _kinds(_wasted(1)) == []  # one failure is not a pattern


def _paging(results: Sequence[str]) -> list[Event]:
    j = Journal("run_pages").started(tools=["search"])
    for page, content in enumerate(results, start=1):
        j.model(page, calls=[("search", {"q": "tether", "page": page})])
        j.result(page, 0, "search", content)
    j.model(len(results) + 1, answer="Found: " + "; ".join(results))
    return j.events


def test_near_identical_call_loop() -> None:
    planted = _paging(["0 results"] * 8)
    found = [f for f in diagnose(planted) if f.kind == "call_loop"]
    assert len(found) == 1 and found[0].steps == tuple(range(1, 9))
    assert "8 calls of search in a row differ only in page (1 … 8)" in found[0].message
    echoed = _paging([f"page {k}: 0 results" for k in range(1, 9)])  # echoes the counter
    assert [f.steps for f in diagnose(echoed) if f.kind == "call_loop"] == [tuple(range(1, 9))]
    places = ["alpha in Lisbon", "beta in Porto", "gamma in Braga", "delta in Faro",
              "epsilon in Evora", "zeta in Aveiro", "eta in Coimbra", "theta in Viseu"]
    assert _kinds(_paging(places)) == []  # clean: every page brought something
    assert "call_loop" not in _kinds(_paging(["0 results"] * 4))  # too short to be a loop


def _used(result: str, answer: str) -> list[Event]:
    j = Journal("run_used").started(tools=["lookup"])
    j.model(1, calls=[("lookup", {"what": "it"})])
    j.result(1, 0, "lookup", result)
    j.model(2, answer=answer)
    return j.events


def test_reformatted_numbers_and_dates_count_as_used() -> None:
    for result, answer in [
        ("population 1234567", "About 1.23 million people."),
        ("population 1234567", "About 1.2 million people."),
        ("population 1234567", "Exactly 1,234,567 people."),
        ("population 1234567", "Roughly 1235 thousand people."),
        ("revenue 98500000", "Revenue was $98.5M."),
        ("due 2026-11-30", "It is due on November 30."),
        ("due 2026-11-30", "It is due on 30 Nov."),
        ("due 2026-11-30", "It is due 11/30/2026."),
    ]:
        assert _kinds(_used(result, answer)) == [], (result, answer)
    for result, answer in [
        ("population 1234567", "About 2.5 million people."),
        ("population 1234567", "I could not find it."),
        ("due 2026-11-30", "It is due on December 30."),
    ]:
        assert _kinds(_used(result, answer)) == ["unused_result"], (result, answer)


def _tokens(prompts: Sequence[int], *, cost: float | None) -> list[Event]:
    j = Journal("run_free").started(tools=["t"])
    for k, prompt in enumerate(prompts, start=1):
        j.model(k, calls=[("t", {"k": k})], tokens=(prompt, 10), cost=cost)
        j.result(k, 0, "t", f"item {k * 1111}")
    j.model(len(prompts) + 1, answer="items " + " ".join(
        str(k * 1111) for k in range(1, len(prompts) + 1)),
        tokens=(prompts[-1] + 10, 10), cost=cost)
    return j.events


def test_token_outliers_when_the_run_is_free_or_unpriced() -> None:
    growing = [100 + 10 * k for k in range(8)]
    jump = growing[:4] + [p + 5000 for p in growing[4:]]  # step 4's result was huge
    for cost in (0.0, None):
        found = [f for f in diagnose(_tokens(jump, cost=cost)) if f.kind == "outlier_step"]
        assert len(found) == 1 and found[0].steps == (4,), cost
        assert "token use" in found[0].message and "tokens" in found[0].message
        assert _kinds(_tokens(growing, cost=cost)) == []  # a prompt that grows is fine


@tool(inline=True)
def lookup(i: int) -> str:
    """Look a record up."""
    return f"record {i} is zq{i * 7919:05d}"


async def test_findings_are_journaled_once_across_resumes(store: SQLiteStore) -> None:
    def script(request: ModelRequest) -> Any:
        return ToolCall.of("lookup", i=1) if request.step <= 3 else "zq07919"

    agent = Agent(name="again", model=FunctionModel(script), tools=[lookup],
                  budget=Budget(max_steps=2))
    runner = Runner(store, reviewers=[finding_payloads])
    first = await runner.run(agent, "look it up")
    assert first.status == RunStatus.FAILED

    async def identities() -> list[tuple[str, tuple[int, ...]]]:
        return [(e.payload["kind"], tuple(e.payload["steps"]))
                for e in await store.read(first.run_id) if e.type == EventType.FINDING]

    before = await identities()
    assert ("repeated_call", (1, 2)) in before
    again = await runner.resume(first.run_id, agent)  # stops on the same budget
    assert again.status == RunStatus.FAILED
    assert await identities() == before  # nothing journaled twice
    done = await runner.resume(first.run_id, agent, budget=Budget(max_steps=10))
    assert done.status == RunStatus.COMPLETED
    after = await identities()
    assert after[: len(before)] == before and len(after) == len(set(after))
    assert ("repeated_call", (1, 2, 3)) in after  # the finding grew: recorded anew
