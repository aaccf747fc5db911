"""Cost per step, per run, and rolled up over sub-runs."""

from __future__ import annotations

import pytest

from tether.core import RunStatus, ToolCall
from tether.models import ScriptedModel
from tether.observe import cost_of, run_cost
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .conftest import Journal


async def _family(store: SQLiteStore) -> None:
    """A parent run with a child, which has a grandchild; all priced."""
    parent = Journal("run_p").started("parent", tools=["search", "delegate"])
    parent.model(1, calls=[("search", {"q": "x"}), ("delegate", {"t": "y"})],
                 tokens=(100, 10), cost=0.01)
    parent.result(1, 0, "search", "hits", cost=0.005)
    parent.result(1, 1, "delegate", "done")
    parent.model(2, answer="ok", tokens=(200, 20), cost=0.02)
    child = Journal("run_c").started("child", parent="run_p")
    child.model(1, calls=[("search", {"q": "z"})], tokens=(50, 5), cost=0.001)
    child.result(1, 0, "search", "more hits")  # no cost_usd: the declared price applies
    child.model(2, answer="child done", tokens=(60, 6), cost=0.002)
    grandchild = Journal("run_g").started("grandchild", parent="run_c")
    grandchild.model(1, answer="leaf", tokens=(10, 1))  # unpriced
    for journal in (parent, child, grandchild):
        await journal.save(store)


async def test_cost_per_step_and_rolled_up_over_sub_runs(store: SQLiteStore) -> None:
    await _family(store)
    cost = await run_cost(store, "run_p", tool_prices={"search": 0.003})
    assert [s.step for s in cost.steps] == [1, 2]
    assert cost.steps[0].model_usd == pytest.approx(0.01)
    assert cost.steps[0].tool_usd == pytest.approx(0.005)  # its own cost_usd wins
    assert cost.steps[0].total_usd == pytest.approx(0.015)
    assert cost.own_usd == pytest.approx(0.035)
    assert (cost.input_tokens, cost.output_tokens) == (300, 30)
    (child,) = cost.children
    assert child.own_usd == pytest.approx(0.001 + 0.003 + 0.002)
    assert child.children[0].unpriced_calls == 1
    assert cost.subruns == 2
    assert cost.rolled_up_usd == pytest.approx(0.035 + 0.006)
    assert (cost.rolled_up_input_tokens, cost.rolled_up_output_tokens) == (420, 42)
    data = cost.to_dict()
    assert data["own"]["usd"] == pytest.approx(0.035)
    assert data["rolled_up"]["label"] == "rolled up over 2 sub-runs"
    assert data["rolled_up"]["unpriced_calls"] == 1
    alone = await run_cost(store, "run_p", subruns=False)
    assert alone.children == () and alone.rolled_up_usd == pytest.approx(0.035)


async def test_cost_of_a_real_run_matches_its_summary(store: SQLiteStore) -> None:
    @tool
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    agent = Agent(name="adder", model=ScriptedModel([ToolCall.of("add", a=1, b=2), "3"]),
                  tools=[add])
    result = await Runner(store).run(agent, "1+2")
    assert result.status == RunStatus.COMPLETED
    cost = cost_of(await store.read(result.run_id))
    summary = await store.run(result.run_id)
    assert cost.own_usd == pytest.approx(summary.cost_usd)
    assert (cost.input_tokens, cost.output_tokens) == (summary.input_tokens,
                                                       summary.output_tokens)
    assert cost.price_table is not None
    assert [s.model_calls for s in cost.steps] == [1, 1]
    assert cost.steps[0].tool_calls == 1
