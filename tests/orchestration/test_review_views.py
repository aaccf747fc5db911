"""Attacker's review (issue 19): views of a run tree whose parent links form a cycle."""

from __future__ import annotations

from tether.models import ScriptedModel
from tether.observe import build_trace, load_run_tree, run_cost
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore


async def test_a_cycle_in_parent_links_counts_each_run_once(store: SQLiteStore) -> None:
    # Two real runs whose parent links point at each other (any caller of
    # Runner.run(parent=...) can record such links; a foreign or corrupt store too).
    runner = Runner(store)
    agent = Agent(name="a", model=ScriptedModel(["one", "two"]))
    await runner.run(agent, "x", run_id="run_b", parent={"parent_run_id": "run_c",
                                                         "depth": 1})
    await runner.run(agent, "y", run_id="run_c", parent={"parent_run_id": "run_b",
                                                         "depth": 1})
    tree = await load_run_tree(store, "run_b")
    ids = [t.run_id for t in tree.walk()]
    assert sorted(ids) == ["run_b", "run_c"], f"runs visited: {len(ids)}"
    cost = await run_cost(store, "run_b")
    assert cost.subruns == 1
    own = (await run_cost(store, "run_b", subruns=False)).input_tokens + \
        (await run_cost(store, "run_c", subruns=False)).input_tokens
    assert cost.rolled_up_input_tokens == own
    build_trace(tree)  # the trace of the same tree builds without looping
