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
    assert "100" in out.output.splitlines()[0]
    run_id = json.loads(cli.invoke(app, ["runs", "--json", "--db", db]).output)[0]["run_id"]
    events = json.loads(cli.invoke(app, ["show", run_id, "--json", "--db", db]).output)
    (intent,) = [e["payload"] for e in events if e["type"] == "tool.intent"]
    assert (intent["tool"], intent["arguments"]) == ("multiply", {"a": 12.5, "b": 8})
    (result,) = [e["payload"] for e in events if e["type"] == "tool.result"]
    assert result["content"] == "100.0"
    started = events[0]["payload"]
    assert started["provider"] == "local" and "SmolLM2" in started["model"]
