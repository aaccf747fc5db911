"""Attack on "nothing is lost, exactly once" (review of issue 18): the memory agent is
SIGKILLed at random instants, again and again, and resumed each time; its memories and
their events must then be exactly those of an uninterrupted run of the same script.
Real SQLite files, real child processes, SIGKILL. Kill instants are random; what is
checked is not (any instant must give the same end state)."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import apsw
import pytest

from tether.core import EventType, RunNotFoundError
from tether.store import SQLiteStore

pytest.importorskip("sqlite_vec")

HELPER = Path(__file__).with_name("memory_agent.py")
ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "run_review_kill"
STEPS = 120


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}


def _start(db: Path, prompts: Path, resume: bool) -> subprocess.Popen[str]:
    args = [sys.executable, str(HELPER), str(db), RUN_ID, str(prompts), str(STEPS)]
    return subprocess.Popen([*args, *(["--resume"] if resume else [])], env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _started(db: Path) -> bool:
    """Whether the run's ``run.started`` is committed (a kill may land before it, even
    after the file was created)."""
    if not db.exists():
        return False
    try:
        return bool(asyncio.run(SQLiteStore(db).read(RUN_ID)))
    except RunNotFoundError:
        return False


def _memories(db: Path) -> list[tuple[Any, ...]]:
    con = apsw.Connection(str(db))
    rows = con.execute("SELECT handle, text, key, kind, ns_agent, ns_user, ns_thread, "
                       "ns_run, metadata, run_id, step, seq, superseded_by FROM "
                       "memory_items ORDER BY handle").fetchall()
    fts = con.execute("SELECT count(*) FROM memory_fts").fetchall()[0][0]
    vectors = con.execute("SELECT count(*) FROM memory_vectors").fetchall()[0][0]
    con.close()
    assert fts == vectors == len(rows)
    return [tuple(r) for r in rows]


def _writes(db: Path) -> list[tuple[str, str]]:
    events = asyncio.run(SQLiteStore(db).read(RUN_ID))
    return [(e.payload["action"], e.payload["handle"]) for e in events
            if e.type == EventType.MEMORY_WRITE]


def test_random_sigkills_lose_nothing_and_write_nothing_twice(tmp_path: Path) -> None:
    ref_db = tmp_path / "reference.db"
    done = _start(ref_db, tmp_path / "reference.jsonl", False)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0 and out.strip() == "completed", err

    rng = random.Random(int.from_bytes(os.urandom(4), "little"))
    db, prompts = tmp_path / "killed.db", tmp_path / "killed.jsonl"
    kills = 0
    for _ in range(40):
        child = _start(db, prompts, _started(db))
        delay = rng.uniform(0.2, 1.5)
        try:
            out, err = child.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
            child.communicate()
            kills += 1
            time.sleep(0.01)
            continue
        assert child.returncode == 0, err
        if out.strip() == "completed" and kills >= 3:
            break
        if out.strip() == "completed":  # finished before enough kills: start over
            db.unlink()
            for extra in tmp_path.glob("killed.db-*"):
                extra.unlink()
            prompts.unlink(missing_ok=True)
    else:
        pytest.fail(f"the run did not complete after {kills} kills")

    # the same memories, rows and provenance as the uninterrupted run; FTS and vectors
    # have a row for each; every write event names a row and every row has its event
    mine, ref = _memories(db), _memories(ref_db)
    assert [r[:11] + r[12:] for r in mine] == [r[:11] + r[12:] for r in ref]
    written = _writes(db)
    handles = {r[0] for r in mine}
    assert {h for _, h in written} == handles
    assert sorted(h for a, h in written if a != "duplicate") == sorted(handles)
    assert json.dumps(sorted(written)) == json.dumps(sorted(_writes(ref_db)))


def test_prompts_after_a_resume_are_the_uninterrupted_runs(tmp_path: Path) -> None:
    ref_db, ref_prompts = tmp_path / "reference.db", tmp_path / "reference.jsonl"
    done = _start(ref_db, ref_prompts, False)
    out, err = done.communicate(timeout=300)
    assert done.returncode == 0 and out.strip() == "completed", err
    db, prompts = tmp_path / "killed.db", tmp_path / "killed.jsonl"
    args = [sys.executable, str(HELPER), str(db), RUN_ID, str(prompts), str(STEPS)]
    killed = subprocess.run([*args, "--kill-at", "30"], env=_env(), capture_output=True,
                            text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    resumed = subprocess.run([*args, "--resume"], env=_env(), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0 and resumed.stdout.strip() == "completed", resumed.stderr
    reference = {json.loads(line)["step"]: line
                 for line in ref_prompts.read_text().splitlines()}
    sent = prompts.read_text().splitlines()
    assert len(sent) == STEPS + 1  # step 30 twice
    for line in sent:
        assert line == reference[json.loads(line)["step"]]
