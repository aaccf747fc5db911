from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.store import SQLiteStore

AGENT = '''
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent
from tether.tools import tool

@tool
def add(a: int, b: int) -> int:
    """Add."""
    return a + b

agent = Agent(name="demo", model=ScriptedModel([ToolCall.of("add", a=2, b=3), "It is 5"]),
              tools=[add])
not_an_agent = 42
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "demo_agent.py").write_text(AGENT)
    (tmp_path / "broken_agent.py").write_text("agent = Agent(name=\"x\"\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TETHER_DB", raising=False)
    return tmp_path


def test_run_runs_show_resume(project: Path) -> None:
    cli = CliRunner()
    out = cli.invoke(app, ["run", "demo_agent:agent", "what is 2+3?"])
    assert out.exit_code == 0, out.output
    assert "It is 5" in out.output
    assert (project / ".tether" / "tether.db").exists()
    runs = json.loads(cli.invoke(app, ["runs", "--json"]).output)
    assert [(r["agent"], r["status"], r["steps"]) for r in runs] == [("demo", "completed", 2)]
    run_id = runs[0]["run_id"]
    assert run_id in out.output
    shown = cli.invoke(app, ["show", run_id])
    assert shown.exit_code == 0 and "add" in shown.output and "tool.result" in shown.output
    events = json.loads(cli.invoke(app, ["show", run_id, "--json"]).output)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    assert cli.invoke(app, ["resume", run_id]).exit_code == 0
    table = cli.invoke(app, ["runs", "--status", "completed"])
    assert table.exit_code == 0 and "demo" in table.output


@pytest.mark.parametrize(("args", "message"), [
    (["show", "run_nope"], "no run 'run_nope'"),
    (["resume", "run_nope"], "no run 'run_nope'"),
    (["run", "nomodule:agent", "x"], "cannot import module 'nomodule'"),
    (["run", "demo_agent:missing", "x"], "has no attribute 'missing'"),
    (["run", "demo_agent:not_an_agent", "x"], "not a tether Agent"),
    (["run", "demo_agent", "x"], "MODULE:ATTRIBUTE"),
    (["run", "broken_agent:agent", "x"], "raised SyntaxError"),
])
def test_clear_errors(project: Path, args: list[str], message: str) -> None:
    asyncio.run(SQLiteStore(project / ".tether" / "tether.db").close())  # the db exists
    out = CliRunner().invoke(app, args)
    assert out.exit_code == 2
    assert message in out.output
    assert "hint:" in out.output
    assert "Traceback" not in out.output


def test_views_never_create_a_database(project: Path) -> None:
    out = CliRunner().invoke(app, ["show", "run_nope", "--db", str(project / "typo.db")])
    assert out.exit_code == 1 and "no Tether database" in out.output
    assert "Traceback" not in out.output
    assert not (project / "typo.db").exists()


def test_store_errors(project: Path) -> None:
    bad = project / "bad.db"
    bad.write_bytes(b"garbage" * 1000)
    out = CliRunner().invoke(app, ["runs", "--db", str(bad)])
    assert out.exit_code == 1 and "not a valid SQLite database" in out.output


def test_every_command_has_help_and_a_docs_entry() -> None:
    root = Path(__file__).resolve().parents[2]
    docs = "".join(p.read_text() for p in [root / "README.md", *(root / "docs").glob("*.md")])
    cli = CliRunner()
    for command in app.registered_commands:
        assert command.callback is not None and command.callback.__doc__, command.name
        name = command.name or command.callback.__name__.replace("_", "-")
        out = cli.invoke(app, [name, "--help"])
        assert out.exit_code == 0, name
        assert f"tether {name}" in docs, f"`tether {name}` has no entry in the docs"


LOOPING = '''
from tether.core import ToolCall
from tether.models import FunctionModel, step_of
from tether.runtime import Agent, Budget
from tether.tools import tool

@tool
def tick(i: int) -> str:
    """Tick."""
    return f"tick {i}"

def script(request):
    k = step_of(request)
    return ToolCall.of("tick", i=k) if k < 5 else "five ticks"

agent = Agent(name="ticker", model=FunctionModel(script), tools=[tick], budget=Budget(max_steps=2))
'''


def test_budget_stop_then_resume_with_a_raised_budget(project: Path) -> None:
    (project / "ticker.py").write_text(LOOPING)
    cli = CliRunner()
    log = project / "log.jsonl"
    out = cli.invoke(app, ["run", "ticker:agent", "tick", "--log-file", str(log)])
    assert out.exit_code == 1 and "max_steps" in out.output and "--budget" in out.output
    run_id = json.loads(cli.invoke(app, ["runs", "--json"]).output)[0]["run_id"]
    bad = cli.invoke(app, ["resume", run_id, "--budget", "steps=9"])
    assert bad.exit_code == 2 and "limits: max_steps" in bad.output
    out = cli.invoke(app, ["resume", run_id, "--budget", "max_steps=10", "--log-file", str(log)])
    assert out.exit_code == 0, out.output
    assert "five ticks" in out.output
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    journal = json.loads(cli.invoke(app, ["show", run_id, "--json"]).output)
    assert [e["seq"] for e in logged] == [e["seq"] for e in journal]
    assert any(e["type"] == "budget" and e["payload"]["raised"] == {"max_steps": 10}
               for e in journal)
    since = cli.invoke(app, ["runs", "--since", "2000-01-01", "--json"])
    assert len(json.loads(since.output)) == 1
    future = cli.invoke(app, ["runs", "--since", "2999-01-01", "--json"])
    assert json.loads(future.output) == []


def test_run_ids_by_unique_prefix(project: Path) -> None:
    cli = CliRunner()
    for _ in range(2):
        assert cli.invoke(app, ["run", "demo_agent:agent", "x"]).exit_code == 0
    ids = [r["run_id"] for r in json.loads(cli.invoke(app, ["runs", "--json"]).output)]
    common = next(i for i in range(len(ids[0])) if ids[0][i] != ids[1][i])
    for run_id in ids:
        out = cli.invoke(app, ["show", run_id[: common + 1], "--json"])
        assert out.exit_code == 0, out.output
        assert json.loads(out.output)[0]["run_id"] == run_id
    ambiguous = cli.invoke(app, ["show", ids[0][:common]])
    assert ambiguous.exit_code == 2 and "more than one run id" in ambiguous.output
    assert "Traceback" not in ambiguous.output


def test_version() -> None:
    out = CliRunner().invoke(app, ["--version"])
    assert out.exit_code == 0 and out.output.startswith("tether ")
