"""`make run`'s example, end to end on the real local model (SmolLM2, in process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_calculator_example_on_the_local_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLES)
    monkeypatch.delenv("TETHER_MODEL", raising=False)
    db = str(tmp_path / "t.db")
    cli = CliRunner()
    out = cli.invoke(app, ["run", "calculator:agent", "What is 12.5 times 8?", "--db", db])
    assert out.exit_code == 0, out.output
    answer = [line for line in out.stdout.splitlines() if line.strip()]
    assert answer and not answer[0].startswith("run run_")
    run_id = json.loads(cli.invoke(app, ["runs", "--json", "--db", db]).output)[0]["run_id"]
    events = json.loads(cli.invoke(app, ["show", run_id, "--json", "--db", db]).output)
    started = events[0]["payload"]
    assert started["provider"] == "local" and "SmolLM2" in started["model"]
    assert events[-1]["type"] == "run.completed"
    # What holds on any CPU: the grammar offers only `multiply` (the one tool the task
    # names), with operands from the task, once; then only an answer.
    intents = [e["payload"] for e in events if e["type"] == "tool.intent"]
    assert len(intents) <= 1
    for intent in intents:
        assert intent["tool"] == "multiply"
        assert set(intent["arguments"]) == {"a", "b"}
        assert set(intent["arguments"].values()) <= {12.5, 8}
        (result,) = [e["payload"] for e in events if e["type"] == "tool.result"]
        assert float(result["content"]) == intent["arguments"]["a"] * intent["arguments"]["b"]
