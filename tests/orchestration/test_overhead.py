"""Delegation overhead: one definition for ``tether cost``, ``tether trace`` and the
bench, computed from the journals of a run's tree."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from tether.cli import app
from tether.core import Event, EventType, ToolCall
from tether.models import FunctionModel, ModelRequest, ScriptedModel, step_of
from tether.orchestration import (
    DelegationOverhead,
    as_tool,
    delegation_overhead,
    run_delegation_overhead,
)
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore

from .team import team


def _tokens(events: Sequence[Event]) -> int:
    return sum(int(e.payload["usage"].get("input_tokens", 0))
               + int(e.payload["usage"].get("output_tokens", 0))
               for e in events if e.type == EventType.MODEL_RESPONSE)


async def test_coordination_is_the_controller_and_work_the_children(
    store: SQLiteStore,
) -> None:
    result = await Runner(store).run(team(), "Research", run_id="run_lead")
    children = await store.runs(parent_run_id="run_lead")
    overhead = await run_delegation_overhead(store, "run_lead")
    lead_tokens = _tokens(await store.read("run_lead"))
    work = sum([_tokens(await store.read(c.run_id)) for c in children])
    assert (overhead.subruns, overhead.coordinating_runs, overhead.work_runs) == (4, 1, 4)
    assert overhead.coordination_tokens == lead_tokens == result.usage.total_tokens
    assert overhead.work_tokens == work > 0
    assert overhead.token_ratio == lead_tokens / work
    assert overhead.team_token_ratio == (lead_tokens + work) / work


def test_cost_and_trace_show_the_same_definition(tmp_path: Path) -> None:
    db = tmp_path / "t.db"

    async def scene() -> DelegationOverhead:
        store = SQLiteStore(db)
        try:
            await Runner(store).run(team(), "Research", run_id="run_lead")
            return await run_delegation_overhead(store, "run_lead")
        finally:
            await store.close()

    overhead = asyncio.run(scene())
    cli = CliRunner()
    for command in ("cost", "trace"):
        out = cli.invoke(app, [command, "run_lead", "--json", "--db", str(db)])
        assert out.exit_code == 0, out.output
        assert json.loads(out.stdout)["delegation"] == overhead.to_dict()
    assert overhead.token_ratio is not None
    for command in ("cost", "trace"):
        text = cli.invoke(app, [command, "run_lead", "--db", str(db)]).stdout
        assert f"delegation overhead {overhead.token_ratio:.2f}x" in text
    plain = cli.invoke(app, ["cost", "run_lead", "--no-subruns", "--json", "--db", str(db)])
    assert json.loads(plain.stdout)["delegation"]["subruns"] == 0


async def test_a_child_that_delegates_further_is_coordination(store: SQLiteStore) -> None:
    leaf = Agent(name="leaf", model=FunctionModel(lambda r: "leaf work " * 20))

    def middle(request: ModelRequest) -> str | ToolCall:
        return ToolCall.of("leaf", objective="dig") if step_of(request) == 0 else "passed on"

    mid = Agent(name="mid", model=FunctionModel(middle), tools=[as_tool(leaf)])
    top = Agent(name="top", model=ScriptedModel([ToolCall.of("mid", objective="go"), "ok"]),
                tools=[as_tool(mid)])
    await Runner(store).run(top, "go", run_id="run_top")
    [m] = await store.runs(parent_run_id="run_top")
    [leaf_run] = await store.runs(parent_run_id=m.run_id)
    overhead = await run_delegation_overhead(store, "run_top")
    assert (overhead.subruns, overhead.coordinating_runs, overhead.work_runs) == (2, 2, 1)
    assert overhead.work_tokens == _tokens(await store.read(leaf_run.run_id))
    assert overhead.coordination_tokens == (_tokens(await store.read("run_top"))
                                            + _tokens(await store.read(m.run_id)))
    # Looked at from the middle run: it coordinates, the leaf works.
    from_mid = await run_delegation_overhead(store, m.run_id)
    assert (from_mid.subruns, from_mid.coordinating_runs) == (1, 1)


async def test_a_run_that_delegates_nothing_has_no_overhead(store: SQLiteStore) -> None:
    result = await Runner(store).run(Agent(name="solo", model=ScriptedModel(["hi"])), "go")
    overhead = await run_delegation_overhead(store, result.run_id)
    assert overhead.subruns == 0 and overhead.coordination_tokens == 0
    assert overhead.token_ratio == 0.0 and overhead.work_tokens == result.usage.total_tokens


def test_journals_with_missing_or_hostile_fields_are_counted_as_zero() -> None:
    def event(kind: EventType, payload: dict[str, Any], seq: int) -> Event:
        return Event(run_id="run_x", seq=seq, type=kind, step=1, ts=0.0, payload=payload)

    journal = [event(EventType.MODEL_RESPONSE, {"usage": None, "cost_usd": "free"}, 1),
               event(EventType.MODEL_RESPONSE, {"usage": {"input_tokens": 5}, "cost_usd": 0.5},
                     2),
               event(EventType.TOOL_RESULT, {"cost_usd": 0.25}, 3),
               event(EventType.SUBRUN_STARTED, {"child_run_id": "run_gone"}, 4)]
    overhead = delegation_overhead("run_x", {"run_x": journal})  # the child never wrote
    assert overhead.coordination_tokens == 5 and overhead.coordination_usd == 0.75
    assert overhead.work_tokens == 0 and overhead.token_ratio is None
    assert overhead.to_dict()["token_ratio"] is None
