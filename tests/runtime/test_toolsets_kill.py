"""SIGKILL a real child process inside a toolset's drive: the toolset is entered again
by the resume, and an approved call that was cut short is never run a second time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tether.core import EventType, RunStatus
from tether.runtime import Runner
from tether.store import SQLiteStore

from . import toolset_agent

CHILD = Path(toolset_agent.__file__)


def _kill_when(db: Path, mode: str, started: str) -> int:
    """Drive the run in a child whose tools hang; SIGKILL it once ``started`` is logged."""
    env = {**os.environ, toolset_agent.HANG_ENV: "1"}
    child = subprocess.Popen([sys.executable, str(CHILD), str(db), "run_kept", mode], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while not any(line[0] == started and line[-1] == str(child.pid)
                  for line in toolset_agent.lines()):
        assert child.poll() is None, child.communicate()
        assert time.monotonic() < deadline, "the child never started its tool"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.communicate(timeout=30)
    return child.pid


def _of(pid: int) -> list[str]:
    return [line[0] for line in toolset_agent.lines() if line[-1] == str(pid)]


async def test_killed_inside_a_toolset_then_resumed_and_approved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(toolset_agent.LOG_ENV, str(tmp_path / "log"))
    db = tmp_path / "t.db"
    killed = _kill_when(db, "run", "note")
    assert _of(killed) == ["enter", "note"]  # killed: never exited

    store = SQLiteStore(db)
    runner = Runner(store)
    try:
        agent = toolset_agent.make_agent()
        held = await runner.resume("run_kept", agent)
        me = os.getpid()
        assert _of(me) == ["enter", "note", "exit"]  # entered again, the note re-run
        assert held.status == RunStatus.NEEDS_ATTENTION
        (attention,) = [e for e in await store.read("run_kept")
                        if e.type == EventType.RUN_NEEDS_ATTENTION]
        (call,) = attention.payload["calls"]
        assert call["awaiting"] == "approval"
        await runner.approve("run_kept", call["call_id"])
    finally:
        await store.close()

    # The approved call starts in another process, which is killed mid-call.
    payer = _kill_when(db, "resume", "pay")
    assert _of(payer) == ["enter", "pay"]

    store = SQLiteStore(db)
    runner = Runner(store)
    try:
        # It may have paid: not run again, in doubt like any call cut short.
        doubt = await runner.resume("run_kept", agent)
        assert doubt.status == RunStatus.NEEDS_ATTENTION
        assert [line[0] for line in toolset_agent.lines()].count("pay") == 1
        last = [e for e in await store.read("run_kept")
                if e.type == EventType.RUN_NEEDS_ATTENTION][-1]
        (call,) = last.payload["calls"]
        assert "awaiting" not in call and "reconcile" in call["why"]
        await runner.resolve("run_kept", call["call_id"], result="paid 500 (checked)")
        done = await runner.resume("run_kept", agent)
        assert done.status == RunStatus.COMPLETED
        assert [line[0] for line in toolset_agent.lines()].count("pay") == 1
    finally:
        await store.close()
