"""A run keeps its configuration across resumes, from any directory; Ctrl-C is a clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.testing import FaultServer, counting_responder

AGENT = '''
from tether.runtime import Agent
from tether.tools import tool

@tool(idempotent=True)
def lookup(i: int) -> str:
    """Look up i."""
    return f"value {i}"

agent = Agent(name="cfg", tools=[lookup])   # model: None, chosen by --model / TETHER_MODEL
'''


def _events(cli: CliRunner, run_id: str, db: Path) -> list[dict]:  # type: ignore[type-arg]
    out = cli.invoke(app, ["show", run_id, "--json", "--db", str(db)])
    assert out.exit_code == 0, out.output
    return json.loads(out.output)  # type: ignore[no-any-return]


def test_resume_keeps_model_and_budget_from_another_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "cfg_agent.py").write_text(AGENT)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = tmp_path / "t.db"
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "test")
    cli = CliRunner()
    with FaultServer(responder=counting_responder(3)) as first, \
            FaultServer(responder=counting_responder(3)) as other:
        monkeypatch.chdir(project)
        out = cli.invoke(app, ["run", "cfg_agent:agent", "go", "--db", str(db),
                               "--model", f"openai-compatible:{first.base_url}#m1",
                               "--max-steps", "2"])
        assert out.exit_code == 1, out.output  # stopped by its budget
        run_id = next(w for w in out.output.split() if w.startswith("run_"))
        # Another directory, another default model in the environment: the run keeps its own.
        monkeypatch.chdir(elsewhere)
        monkeypatch.setenv("TETHER_MODEL", f"openai-compatible:{other.base_url}#m2")
        out = cli.invoke(app, ["resume", run_id, "--db", str(db), "--budget", "max_steps=10"])
        assert out.exit_code == 0, out.output
        assert len(first.received) == 4 and other.received == []
        events = _events(cli, run_id, db)
        started = events[0]["payload"]
        assert started["agent_spec"] == f"{project / 'cfg_agent.py'}:agent"
        assert started["budget"]["max_steps"] == 2
        # Asked explicitly, a resume moves to another model and journals the decision.
        out = cli.invoke(app, ["run", f"{project / 'cfg_agent.py'}:agent", "go", "--db",
                               str(db), "--model", f"openai-compatible:{first.base_url}#m1",
                               "--max-steps", "1"])
        second = next(w for w in out.output.split() if w.startswith("run_"))
        out = cli.invoke(app, ["resume", second, "--db", str(db), "--budget", "max_steps=10",
                               "--model", f"openai-compatible:{other.base_url}#m2"])
        assert out.exit_code == 0, out.output
        assert len(other.received) == 3
        decisions = [e["payload"] for e in _events(cli, second, db) if e["type"] == "decision"]
        assert decisions and decisions[0]["decision"] == "model"


SLOW_AGENT = '''
import threading, time
from pathlib import Path
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent
from tether.tools import ToolContext, tool

EFFECTS = Path(__file__).with_name("effects.txt")

@tool
def quick() -> str:
    """Quick."""
    with EFFECTS.open("a") as f:
        f.write("quick\\n")
    return "q"

@tool
def slow(ctx: ToolContext) -> str:
    """Slow; stops when asked."""
    Path(__file__).with_name("started").touch()
    ctx.cancel_event.wait(30)
    with EFFECTS.open("a") as f:
        f.write("slow\\n")
    return "s"

agent = Agent(name="slow", model=ScriptedModel([[ToolCall.of("quick"), ToolCall.of("slow")],
              "finished"]), tools=[quick, slow])
'''


def test_ctrl_c_commits_what_finished_and_prints_how_to_resume(tmp_path: Path) -> None:
    (tmp_path / "slow_agent.py").write_text(SLOW_AGENT)
    db = tmp_path / "t.db"
    env = {**os.environ, "TETHER_DB": str(db)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "tether.cli", "run", "slow_agent:agent", "go"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    run_id = next(w for w in err.split() if w.startswith("run_"))
    assert f"tether resume {run_id}" in err
    assert "Traceback" not in err + out
    assert sorted((tmp_path / "effects.txt").read_text().split()) == ["quick", "slow"]
    cli = CliRunner()
    events = _events(cli, run_id, db)
    assert [e["type"] for e in events if e["type"].startswith("tool.")].count("tool.result") == 2
    assert any(e["type"] == "run.paused" for e in events)
    resumed = subprocess.run(
        [sys.executable, "-m", "tether.cli", "resume", run_id], cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60)
    assert resumed.returncode == 0, resumed.stderr
    assert "finished" in resumed.stdout
    assert sorted((tmp_path / "effects.txt").read_text().split()) == ["quick", "slow"]
