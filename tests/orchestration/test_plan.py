"""A scripted controller with three parallel branches and one that depends on two."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import EventType, RunStatus
from tether.observe import export_otlp_spans, otlp_json, span_id_for
from tether.orchestration import child_run_id
from tether.runtime import Runner
from tether.store import SQLiteStore

from .team import CALLS_ENV, EXPECTED, team


async def test_results_flow_to_the_dependent_branch(
    store: SQLiteStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    monkeypatch.setenv(CALLS_ENV, str(calls))
    result = await Runner(store).run(team(), "Research", run_id="run_lead")
    assert result.status == RunStatus.COMPLETED, result.error
    assert result.output == EXPECTED
    children = await store.runs(parent_run_id="run_lead")
    assert len(children) == 4
    assert {c.agent for c in children} == {"searcher", "writer"}
    assert all(c.status == RunStatus.COMPLETED for c in children)
    # Child ids derive from the delegating call's key and the branch.
    events = await store.read("run_lead")
    [intent] = [e for e in events if e.type == EventType.TOOL_INTENT]
    key = intent.payload["idempotency_key"]
    assert {c.run_id for c in children} == {child_run_id(key, b) for b in "abcd"}
    # The dependent started after both its dependencies completed, and got their outputs.
    started = {e.payload["branch"]: e for e in events if e.type == EventType.SUBRUN_STARTED}
    completed = {e.payload["child_run_id"]: e for e in events
                 if e.type == EventType.SUBRUN_COMPLETED}
    for dep in "ab":
        assert completed[child_run_id(key, dep)].seq < started["d"].seq
    assert "found alpha" in started["d"].payload["task"]
    assert "found gamma" not in started["d"].payload["task"]
    # Each child got only its brief: no trace of the parent's task or instructions.
    for child in children:
        child_events = await store.read(child.run_id)
        first = child_events[0].payload
        assert first["parent_run_id"] == "run_lead" and first["depth"] == 1
        assert "Research" not in first["task"]
        assert all(e.span_id == intent.span_id for e in events
                   if e.type in (EventType.SUBRUN_STARTED, EventType.SUBRUN_COMPLETED))
    # The plan is journaled as a decision.
    [plan] = [e for e in events if e.type == EventType.DECISION
              and e.payload.get("decision") == "plan"]
    assert plan.payload["chosen"] == [["a", "b", "c"], ["d"]]
    # Every subagent model call ran exactly once.
    assert sorted(calls.read_text().splitlines()) == [
        "search alpha", "search beta", "search gamma", "summarise"]


def test_trace_and_otlp_nest_children_under_the_delegating_call(tmp_path: Path) -> None:
    db = tmp_path / "t.db"

    async def work() -> list[Any]:
        store = SQLiteStore(db)
        try:
            await Runner(store).run(team(), "Research", run_id="run_lead")
            return await export_otlp_spans(store, "run_lead")
        finally:
            await store.close()

    spans = asyncio.run(work())
    encoded = otlp_json(spans)["resourceSpans"][0]["scopeSpans"][0]["spans"]
    decoded = {s["spanId"]: s for s in encoded}
    lead = [s for s in encoded if s["name"] == "invoke_agent lead"]
    subs = [s for s in encoded if s["name"] in ("invoke_agent searcher",
                                                "invoke_agent writer")]
    assert len(lead) == 1 and len(subs) == 4
    tool_span = span_id_for("run_lead", "s1.t0").hex()
    assert decoded[tool_span]["name"] == "execute_tool run_plan"
    assert decoded[tool_span]["parentSpanId"] != ""
    for sub in subs:
        assert sub["traceId"] == lead[0]["traceId"]
        assert sub["parentSpanId"] == tool_span
    out = CliRunner().invoke(app, ["trace", "run_lead", "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    tree = json.loads(out.output)["trace"]

    def names(span: dict) -> list[str]:  # type: ignore[type-arg]
        found = [span.get("name", "")]
        for child in span.get("children", []):
            found += names(child)
        return found

    flat = names(tree)
    assert flat.count("invoke_agent searcher") == 3 and "invoke_agent writer" in flat
    text = CliRunner().invoke(app, ["trace", "run_lead", "--db", str(db)])
    assert text.exit_code == 0 and "searcher" in text.output
