"""The example team end to end on the real local model (SmolLM2-135M, in process), with
`tether run`, `tether trace` and `tether cost`.

Only what holds on any CPU is asserted (greedy numerics differ between AVX2 and AMX):
what the grammar admits (a tool call first, the tool the task's words name, then only
an answer) and the structure of the journals, never the text the model writes.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "team.py"


def _json(cli: CliRunner, *args: str) -> Any:
    out = cli.invoke(app, list(args))
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)


def _of(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e["payload"] for e in events if e["type"] == kind]


def test_the_team_delegates_on_the_local_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TETHER_MODEL", raising=False)
    monkeypatch.delenv("TEAM_API_HOSTS", raising=False)
    monkeypatch.setenv("TEAM_MEMORY_DB", str(tmp_path / "memory.db"))
    db = str(tmp_path / "t.db")
    cli = CliRunner()
    out = cli.invoke(app, ["run", f"{EXAMPLE}:team", "Search the notes for the launch day.",
                           "--db", db])
    assert out.exit_code == 0, out.output
    assert [line for line in out.stdout.splitlines() if line.strip()]  # an answer
    runs = _json(cli, "runs", "--json", "--db", db)
    [lead] = [r for r in runs if r["agent"] == "lead"]
    events = _json(cli, "show", lead["run_id"], "--json", "--db", db)
    assert events[0]["payload"]["provider"] == "local"
    assert events[-1]["type"] == "run.completed" and events[-1]["payload"]["output"]
    # The first step could only be a delegation, to the one specialist the task names.
    intents = _of(events, "tool.intent")
    assert intents and {i["tool"] for i in intents} == {"retriever"}
    started = _of(events, "subrun.started")
    children = {r["run_id"]: r for r in runs if r["run_id"] != lead["run_id"]}
    assert sorted(s["child_run_id"] for s in started) == sorted(children)  # once each
    assert len(_of(events, "subrun.completed")) == len(started)
    calls = {i["call_id"] for i in intents}
    for child_id in children:
        child = _json(cli, "show", child_id, "--json", "--db", db)
        first = child[0]["payload"]
        assert first["parent_run_id"] == lead["run_id"] and first["delegated_by"] in calls
        assert first["agent"] == "retriever" and first["provider"] == "local"
        # Phased: its one real tool (recall over the memory file) once, then an answer.
        assert [i["tool"] for i in _of(child, "tool.intent")] == ["recall"]
        [found] = _of(child, "tool.result")
        assert found["content"]  # what the memory file gave back (or "nothing relevant")
        assert child[-1]["type"] == "run.completed"
    # The trace is a tree: each child run under the delegating call of the lead.
    trace = _json(cli, "trace", lead["run_id"], "--json", "--db", db)
    text = json.dumps(trace["trace"])
    assert all(child_id in text for child_id in children)
    cost = _json(cli, "cost", lead["run_id"], "--json", "--db", db)
    assert trace["delegation"] == cost["delegation"]
    delegation = cost["delegation"]
    assert delegation["coordinating_runs"] == 1 and delegation["work_runs"] == len(children)
    assert delegation["coordination"]["input_tokens"] == cost["own"]["input_tokens"]
    assert delegation["coordination"]["tokens"] + delegation["work"]["tokens"] == (
        cost["rolled_up"]["input_tokens"] + cost["rolled_up"]["output_tokens"])
