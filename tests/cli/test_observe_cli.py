"""The observe commands: trace, diff, export, doctor, cost, tail (text and --json)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import tool

COMMANDS = ("trace", "tail", "diff", "export", "doctor", "cost")


@tool(inline=True)
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


def _agent(repeat: bool = False) -> Agent:
    def script(request: ModelRequest) -> Any:
        if request.step <= 2:
            return ToolCall.of("add", a=2, b=3 if repeat else request.step)
        sums = [m.content for m in request.messages if m.role == "tool"]
        return f"The sums are {' and '.join(str(s) for s in sums)}."

    return Agent(name="adder", instructions="Add carefully.", model=FunctionModel(script),
                 tools=[add])


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Path, str, str]:
    """A database with a clean run and a run that repeats a call."""
    db = tmp_path / "t.db"
    store = SQLiteStore(db)
    runner = Runner(store)
    clean = runner.run_sync(_agent(), "add things")
    repeated = runner.run_sync(_agent(repeat=True), "add things")
    asyncio.run(store.close())
    return db, clean.run_id, repeated.run_id


def _invoke(*args: str) -> Any:
    out = CliRunner().invoke(app, list(args))
    assert out.exit_code == 0, out.output
    return out


def test_trace(runs: tuple[Path, str, str]) -> None:
    db, run_id, _ = runs
    text = _invoke("trace", run_id, "--db", str(db)).output
    assert text.splitlines()[0].startswith(f"invoke_agent adder  {run_id}  completed  3 steps")
    for piece in ("├── ✓ step 1", "chat function", "execute_tool add({\"a\": 2, \"b\": 1})",
                  "→ 3", "└── ✓ step 3", "→ answers"):
        assert piece in text
    full = _invoke("trace", run_id, "--full", "--db", str(db)).output
    assert "[system] Add carefully." in full and "[user] add things" in full
    assert "[assistant] The sums are 3 and 4." in full and "result: 3" in full
    data = json.loads(_invoke("trace", run_id, "--json", "--db", str(db)).output)
    root = data["trace"]
    assert (root["kind"], root["status"], root["run_id"]) == ("run", "completed", run_id)
    assert [c["name"] for c in root["children"]] == ["step 1", "step 2", "step 3"]
    assert [c["kind"] for c in root["children"][0]["children"]] == ["model", "tool"]
    assert data["cost"]["run_id"] == run_id and "rolled_up" in data["cost"]
    assert "prompt" not in root["children"][0]["children"][0]
    full_json = json.loads(_invoke("trace", run_id, "--json", "--full", "--db", str(db)).output)
    chat = full_json["trace"]["children"][1]["children"][0]
    # What the request adds to the previous one: step 1's answer and its result.
    assert chat["prompt"]["prefix"] == 2
    assert [m["role"] for m in chat["prompt"]["new"]] == ["assistant", "tool"]
    assert chat["response"]["tool_calls"][0]["name"] == "add"
    assert "prompt: the previous request's 2 message(s), then 2 new:" in full
    # The whole prompt of one step.
    whole = _invoke("trace", run_id, "--prompt", "2", "--db", str(db)).output
    assert "4 message(s)" in whole and "[system] Add carefully." in whole
    assert "[tool] 3" in whole
    (request,) = json.loads(_invoke("trace", run_id, "--prompt", "2", "--json", "--db",
                                    str(db)).output)
    assert [m["role"] for m in request["messages"]] == ["system", "user", "assistant", "tool"]
    assert "made no model call" in _invoke("trace", run_id, "--prompt", "9", "--db",
                                           str(db)).output


def test_diff(runs: tuple[Path, str, str]) -> None:
    db, clean, repeated = runs
    text = _invoke("diff", clean, repeated, "--db", str(db)).output
    assert "first divergence: step 1, response" in text
    data = json.loads(_invoke("diff", clean, repeated, "--json", "--db", str(db)).output)
    assert data["first_divergence"]["what"] == "response"
    assert data["a"]["run_id"] == clean and data["b"]["run_id"] == repeated
    assert [s["step"] for s in data["steps"]] == [1, 2, 3]
    same = json.loads(_invoke("diff", clean, clean, "--json", "--db", str(db)).output)
    assert same["identical"] is True


def test_export(runs: tuple[Path, str, str], tmp_path: Path) -> None:
    db, run_id, _ = runs
    lines = _invoke("export", run_id, "--db", str(db)).output.splitlines()
    shown = json.loads(_invoke("show", run_id, "--json", "--db", str(db)).output)
    assert [json.loads(line) for line in lines] == shown
    document = json.loads(_invoke("export", run_id, "-f", "otlp-json", "--db", str(db)).output)
    spans = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert sorted(s["name"] for s in spans) == [
        "chat function", "chat function", "chat function", "execute_tool add",
        "execute_tool add", "invoke_agent adder", "step 1", "step 2", "step 3"]
    target = tmp_path / "out" / "trace.json"
    summary = json.loads(_invoke("export", run_id, "-f", "otlp-json", "-o", str(target),
                                 "--json", "--db", str(db)).output)
    assert summary == {"format": "otlp-json", "spans": 9, "output": str(target)}
    assert json.loads(target.read_text()) == document


def test_doctor_prints_and_records_findings_once(runs: tuple[Path, str, str]) -> None:
    db, clean, repeated = runs
    assert "no findings" in _invoke("doctor", clean, "--db", str(db)).output
    text = _invoke("doctor", repeated, "--db", str(db)).output
    assert "● repeated_call  steps 1, 2" in text
    assert f"look: tether trace {repeated} --full" in text
    assert "recorded 2 finding event(s)" in text
    data = json.loads(_invoke("doctor", repeated, "--json", "--db", str(db)).output)
    assert {f["kind"] for f in data["findings"]} == {"repeated_call", "no_progress"}
    assert data["saved"] == 0  # already recorded
    shown = json.loads(_invoke("show", repeated, "--json", "--db", str(db)).output)
    findings = [e for e in shown if e["type"] == "finding"]
    assert [f["payload"]["kind"] for f in findings] == ["repeated_call", "no_progress"]
    assert [f["seq"] for f in findings] == [len(shown) - 1, len(shown)]
    unsaved = json.loads(_invoke("doctor", clean, "--no-save", "--json", "--db", str(db)).output)
    assert unsaved == {"run_id": clean, "findings": [], "saved": 0}


def test_cost_and_tail_of_a_finished_run(runs: tuple[Path, str, str]) -> None:
    db, run_id, _ = runs
    text = _invoke("cost", run_id, "--db", str(db)).output
    assert text.startswith(f"{run_id} (adder)  own $")
    data = json.loads(_invoke("cost", run_id, "--json", "--db", str(db)).output)
    assert [s["step"] for s in data["steps"]] == [1, 2, 3]
    tail = _invoke("tail", run_id, "--db", str(db)).output.splitlines()
    assert "run.started" in tail[0] and tail[-1] == f"run {run_id} is completed"


@pytest.mark.parametrize("command", ["trace", "doctor", "cost", "export"])
def test_unknown_run(command: str, runs: tuple[Path, str, str]) -> None:
    db, _, _ = runs
    out = CliRunner().invoke(app, [command, "run_nope", "--db", str(db)])
    assert out.exit_code == 2 and "no run 'run_nope'" in out.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = _invoke(command, "--help")
    assert "--db" in out.output and len(out.output.splitlines()) > 5
    info = next(c for c in app.registered_commands
                if (c.name or c.callback.__name__) == command)  # type: ignore[union-attr]
    assert info.callback is not None and (info.callback.__doc__ or "").strip()


def test_doctor_does_not_write_into_a_running_run(tmp_path: Path) -> None:
    from tests.observe.conftest import Journal

    db = tmp_path / "t.db"
    journal = Journal("run_busy").started(tools=["t"])
    for step in (1, 2):
        journal.model(step, calls=[("t", {"same": 1})])
        journal.result(step, 0, "t", "same result")
    store = SQLiteStore(db)
    asyncio.run(journal.save(store))
    asyncio.run(store.close())
    data = json.loads(_invoke("doctor", "run_busy", "--json", "--db", str(db)).output)
    assert data["findings"] and data["saved"] == 0 and "still running" in data["note"]
    assert "finding" not in _invoke("show", "run_busy", "--db", str(db)).output
