"""`tether approve`: a held call is approved or denied from the command line."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import EventType
from tether.store import SQLiteStore

AGENT = '''
from pathlib import Path
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent
from tether.tools import ApprovalRequiredToolset, FunctionToolset, tool

@tool
def deploy(env: str) -> str:
    """Deploy."""
    with open("deploys", "a") as f:
        f.write(env + "\\n")
    return f"deployed to {env}"

agent = Agent(name="ops", tools=[ApprovalRequiredToolset(FunctionToolset([deploy]))],
              model=ScriptedModel([ToolCall.of("deploy", env="prod", call_id="d1"),
                                   "Deployed."]))
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "ops_agent.py").write_text(AGENT)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TETHER_DB", str(tmp_path / "t.db"))
    return tmp_path


def _events(db: Path, run_id: str) -> list:  # type: ignore[type-arg]
    async def read() -> list:  # type: ignore[type-arg]
        store = SQLiteStore(db)
        try:
            return await store.read(run_id)
        finally:
            await store.close()

    return asyncio.run(read())


def test_approve_then_resume_runs_the_call_once(project: Path) -> None:
    cli = CliRunner()
    held = cli.invoke(app, ["run", "ops_agent.py:agent", "ship it"])
    assert held.exit_code != 0 and "needs_attention" in held.output, held.output
    assert "tether approve" in held.output
    run_id = next(w for w in held.output.split() if w.startswith("run_"))
    assert not (project / "deploys").exists()
    wrong = cli.invoke(app, ["approve", run_id, "nope"])
    assert wrong.exit_code != 0 and "calls waiting: d1" in wrong.output
    ok = cli.invoke(app, ["approve", run_id[:12], "d1", "--reason", "change #42"])
    assert ok.exit_code == 0 and "approved; continue with: tether resume" in ok.output
    done = cli.invoke(app, ["resume", run_id])
    assert done.exit_code == 0 and "Deployed." in done.output, done.output
    assert (project / "deploys").read_text() == "prod\n"
    again = cli.invoke(app, ["approve", run_id, "d1"])
    assert again.exit_code != 0
    kinds = [e.type for e in _events(project / "t.db", run_id)]
    assert kinds.count(EventType.TOOL_RESULT) == 1 and kinds.count(EventType.DECISION) == 1


def test_deny_tells_the_model(project: Path) -> None:
    cli = CliRunner()
    held = cli.invoke(app, ["run", "ops_agent.py:agent", "ship it"])
    run_id = next(w for w in held.output.split() if w.startswith("run_"))
    out = cli.invoke(app, ["approve", run_id, "d1", "--deny", "--reason", "freeze week"])
    assert out.exit_code == 0 and "denied" in out.output
    done = cli.invoke(app, ["resume", run_id])
    assert done.exit_code == 0, done.output
    assert not (project / "deploys").exists()
    (error,) = [e for e in _events(project / "t.db", run_id) if e.type == EventType.TOOL_ERROR]
    assert error.payload["denied"] and "freeze week" in error.payload["content"]
