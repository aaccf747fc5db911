"""Attacker's review (issue 19): a child resumed directly (``tether resume CHILD``) in
one process while its parent is resumed in another."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tether.core import EventType, RunNotFoundError, RunStatus
from tether.store import SQLiteStore

from . import team as team_module
from .team import CALLS_ENV, EXPECTED, LATENCY_ENV

TEAM = Path(team_module.__file__)
CHILD = TEAM.with_name("resume_child.py")
SRC = Path(__file__).resolve().parents[2] / "src"


def _env(calls: Path, latency: float) -> dict[str, str]:
    return {**os.environ, LATENCY_ENV: str(latency), CALLS_ENV: str(calls),
            "PYTHONPATH": os.pathsep.join([str(SRC), str(TEAM.parents[2]),
                                           os.environ.get("PYTHONPATH", "")])}


async def _read(db: Path, run_id: str) -> list:  # type: ignore[type-arg]
    store = SQLiteStore(db)
    try:
        return await store.read(run_id)
    except RunNotFoundError:
        return []
    finally:
        await store.close()


def _wait_for(db: Path, run_id: str, kind: EventType, timeout_s: float = 60) -> list:  # type: ignore[type-arg]
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        events = asyncio.run(_read(db, run_id))
        if any(e.type == kind for e in events):
            return events
        time.sleep(0.05)
    raise AssertionError(f"no {kind} in {run_id} within {timeout_s} s")


def test_a_child_resumed_directly_is_not_redone_by_its_resuming_parent(
    tmp_path: Path,
) -> None:
    db, calls = tmp_path / "t.db", tmp_path / "calls"
    # 1. The team runs; SIGKILL once the children are in their (slow) model calls.
    proc = subprocess.Popen([sys.executable, str(TEAM), str(db), "run_lead"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env(calls, 5.0))
    try:
        parent = _wait_for(db, "run_lead", EventType.SUBRUN_STARTED)
        first = next(e.payload["child_run_id"] for e in parent
                     if e.type == EventType.SUBRUN_STARTED and e.payload["branch"] == "a")
        _wait_for(db, first, EventType.RUN_STARTED)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
    # 2. An operator resumes child a directly; its model takes 3 s.
    child = subprocess.Popen([sys.executable, str(CHILD), str(db), first],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env=_env(calls, 3.0))
    try:
        _wait_for(db, first, EventType.RUN_RESUMED)
        # 3. Meanwhile the parent is resumed too.
        done = subprocess.run([sys.executable, str(TEAM), str(db), "run_lead"],
                              capture_output=True, text=True, env=_env(calls, 0.0),
                              timeout=120)
    finally:
        out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert done.returncode == 0, done.stderr
    events = asyncio.run(_read(db, "run_lead"))
    branches = sorted(e.payload["branch"] for e in events
                      if e.type == EventType.SUBRUN_STARTED)
    assert branches == ["a", "b", "c", "d"], branches  # no branch redone by a replan
    collected = {e.payload["child_run_id"] for e in events
                 if e.type == EventType.SUBRUN_COMPLETED}
    assert first in collected, "the first child's result was never collected"
    assert done.stdout.splitlines()[:2] == [str(RunStatus.COMPLETED), EXPECTED]
