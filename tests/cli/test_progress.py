"""`tether run` shows live progress on a terminal and nothing extra when piped."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

AGENT = '''
import time
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent
from tether.tools import tool

@tool
def crunch(n: int) -> str:
    """Crunch [bold]numbers[/bold] for a while."""
    time.sleep(1.5)
    return f"crunched {n}"

agent = Agent(name="busy", model=ScriptedModel([ToolCall.of("crunch", n=7), "all done"]),
              tools=[crunch])
'''


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "TETHER_DB": str(tmp / "t.db"), "TERM": "xterm", "COLUMNS": "120"}


def test_progress_on_a_terminal(tmp_path: Path) -> None:
    (tmp_path / "busy_agent.py").write_text(AGENT)
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "tether.cli", "run", "busy_agent:agent",
                             "go"], cwd=tmp_path, env=_env(tmp_path), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=terminal)
    os.close(terminal)
    seen = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the process closed its end
            break
        if not chunk:
            break
        seen += chunk
    out, _ = proc.communicate(timeout=60)
    os.close(controller)
    screen = seen.decode(errors="replace")
    assert proc.returncode == 0, screen
    assert "run run_" in screen  # the id, at once
    assert "running crunch" in screen and "step 1" in screen
    assert b"all done" in out


def test_no_progress_when_piped(tmp_path: Path) -> None:
    (tmp_path / "busy_agent.py").write_text(AGENT)
    done = subprocess.run([sys.executable, "-m", "tether.cli", "run", "busy_agent:agent", "go"],
                          cwd=tmp_path, env=_env(tmp_path), capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    assert "running crunch" not in done.stderr and "\x1b[" not in done.stderr
    assert done.stderr.startswith("run run_")
    assert "all done" in done.stdout
