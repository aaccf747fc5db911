"""Comparing two runs: the first divergence, then step by step."""

from __future__ import annotations

from typing import Any

from tether.core import ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.observe import diff_runs
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import tool

PRICES = {"widget": "12.00"}


@tool(inline=True)
def price(item: str) -> str:
    """The price of an item."""
    return PRICES[item]


def _script(request: ModelRequest) -> Any:
    if request.step == 1:
        return ToolCall.of("price", item="widget")
    if request.step == 2:
        return ToolCall.of("price", item="widget")
    last = [m for m in request.messages if m.role == "tool"][-1].content
    return f"It costs {last}."


def _agent() -> Agent:
    return Agent(name="pricer", model=FunctionModel(_script), tools=[price])


async def test_identical_runs_do_not_diverge(store: SQLiteStore) -> None:
    runner = Runner(store)
    a = await runner.run(_agent(), "price a widget")
    b = await runner.run(_agent(), "price a widget")
    diff = diff_runs(await store.read(a.run_id), await store.read(b.run_id))
    assert diff.identical and diff.first_divergence is None
    assert all(s.differs == () for s in diff.steps)
    assert diff.to_dict()["a"]["run_id"] == a.run_id


async def test_first_divergence_then_step_by_step(store: SQLiteStore) -> None:
    runner = Runner(store)
    a = await runner.run(_agent(), "price a widget")
    PRICES["widget"] = "15.50"
    try:
        b = await runner.run(_agent(), "price a widget")
    finally:
        PRICES["widget"] = "12.00"
    diff = diff_runs(await store.read(a.run_id), await store.read(b.run_id))
    first = diff.first_divergence
    assert first is not None
    assert (first.step, first.what) == (1, "results")
    assert first.a == [{"tool": "price", "content": "12.00", "error": False}]
    assert first.b == [{"tool": "price", "content": "15.50", "error": False}]
    by_step = {s.step: s.differs for s in diff.steps}
    assert by_step[1] == ("results",)
    assert "prompt" in by_step[2] and "answer" in by_step[3]
    data = diff.to_dict()
    assert data["first_divergence"]["what"] == "results" and not data["identical"]
    assert data["steps"][2]["a"]["answer"] == "It costs 12.00."
    assert data["steps"][2]["b"]["answer"] == "It costs 15.50."


async def test_different_tasks_and_lengths(store: SQLiteStore) -> None:
    runner = Runner(store)
    a = await runner.run(_agent(), "price a widget")
    short = Agent(name="pricer", model=FunctionModel(lambda r: "No idea."), tools=[price])
    b = await runner.run(short, "price a widget")
    c = await runner.run(_agent(), "price two widgets")
    events = {r.run_id: await store.read(r.run_id) for r in (a, b, c)}
    ab = diff_runs(events[a.run_id], events[b.run_id])
    assert ab.first_divergence is not None
    assert (ab.first_divergence.step, ab.first_divergence.what) == (1, "response")
    assert ab.first_divergence.a == {"answer": None, "calls": [
        {"tool": "price", "arguments": {"item": "widget"}}]}
    assert ab.first_divergence.b == {"answer": "No idea.", "calls": []}
    assert [s.differs for s in ab.steps[1:]] == [("missing",), ("missing",)]
    ac = diff_runs(events[a.run_id], events[c.run_id])
    assert ac.first_divergence is not None
    assert (ac.first_divergence.step, ac.first_divergence.what) == (0, "task")
