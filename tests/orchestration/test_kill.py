"""SIGKILL a real process mid-fan-out at random instants, several times, then resume."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tether.core import EventType, RunStatus
from tether.store import SQLiteStore

from . import team as team_module
from .team import CALLS_ENV, EXPECTED, LATENCY_ENV

SCRIPT = Path(team_module.__file__)
SRC = Path(__file__).resolve().parents[2] / "src"


def _start(db: Path, calls: Path) -> subprocess.Popen[str]:
    env = {**os.environ, LATENCY_ENV: "0.5", CALLS_ENV: str(calls),
           "PYTHONPATH": os.pathsep.join([str(SRC), str(SCRIPT.parents[2]),
                                          os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(db), "run_lead"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


async def _journals(db: Path) -> tuple[list, dict[str, list]]:  # type: ignore[type-arg]
    store = SQLiteStore(db)
    try:
        parent = await store.read("run_lead")
        children = {r.run_id: await store.read(r.run_id)
                    for r in await store.runs(parent_run_id="run_lead")}
        return parent, children
    finally:
        await store.close()


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_kill_mid_fan_out_then_resume(seed: int, tmp_path: Path) -> None:
    rng = random.Random(seed)
    db, calls = tmp_path / "t.db", tmp_path / "calls"
    kills = 0
    for _ in range(4):  # several kills at random instants, each followed by a resume
        proc = _start(db, calls)
        time.sleep(rng.uniform(0.4, 1.4))
        if proc.poll() is not None:
            proc.communicate()
            break
        os.kill(proc.pid, signal.SIGKILL)
        proc.communicate()
        kills += 1
    proc = _start(db, calls)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    status, answer = out.splitlines()[:2]
    assert (status, answer) == (str(RunStatus.COMPLETED), EXPECTED)
    parent, children = asyncio.run(_journals(db))
    # Exactly the four branches, each started once.
    assert len(children) == 4
    started = Counter(e.payload["child_run_id"] for e in parent
                      if e.type == EventType.SUBRUN_STARTED)
    assert set(started) == set(children) and set(started.values()) == {1}, started
    for run_id, events in children.items():
        assert [e.type for e in events].count(EventType.RUN_STARTED) == 1
        # A finished branch is never driven again: nothing follows its completion.
        kinds = [e.type for e in events]
        assert kinds.count(EventType.RUN_COMPLETED) == 1
        assert kinds[-1] == EventType.RUN_COMPLETED, (run_id, kinds)
        assert kinds.count(EventType.MODEL_RESPONSE) == 1
    # Every recorded completion is used once; the parent records each child's end once.
    done = Counter(e.payload["child_run_id"] for e in parent
                   if e.type == EventType.SUBRUN_COMPLETED)
    assert set(done) == set(children) and set(done.values()) == {1}
    # A model call whose answer was committed is never made again.
    made = Counter(calls.read_text().splitlines())
    assert set(made) == {"search alpha", "search beta", "search gamma", "summarise"}
    assert sum(made.values()) <= 4 + kills * 3  # only calls cut off by a kill repeat


AT_START = Path(__file__).with_name("kill_at_start.py")


@pytest.mark.parametrize("n", [1, 3, 4])
def test_kill_right_after_subrun_started_then_resume(n: int, tmp_path: Path) -> None:
    """SIGKILL lands between a ``subrun.started`` and the first event of the child it
    announces: the resumed parent finds that child by its derived id, journals no
    second start, and the child runs once."""
    db, calls = tmp_path / "t.db", tmp_path / "calls"
    env = {**os.environ, CALLS_ENV: str(calls),
           "PYTHONPATH": os.pathsep.join([str(SRC), str(SCRIPT.parents[2]),
                                          os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run([sys.executable, str(AT_START), str(db), "run_lead", str(n)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    before, children_before = asyncio.run(_journals(db))
    announced = [e.payload["child_run_id"] for e in before
                 if e.type == EventType.SUBRUN_STARTED]
    assert len(announced) == n
    # The kill landed exactly there: the last child announced has no journal yet.
    assert announced[-1] not in children_before
    done = subprocess.run([sys.executable, str(AT_START), str(db), "run_lead", "0"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == [str(RunStatus.COMPLETED), EXPECTED]
    parent, children = asyncio.run(_journals(db))
    started = Counter(e.payload["child_run_id"] for e in parent
                      if e.type == EventType.SUBRUN_STARTED)
    assert set(started) == set(children) and set(started.values()) == {1}, started
    assert set(announced) <= set(started)
    for events in children.values():
        assert [e.type for e in events].count(EventType.RUN_STARTED) == 1
    made = Counter(calls.read_text().splitlines())
    assert set(made.values()) == {1}, made  # no child's model call was made twice

