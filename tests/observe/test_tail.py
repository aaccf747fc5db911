"""``tether tail`` follows a run that another process is executing, and ends with it."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from tether.cli import app
from tether.core import EventType
from tether.observe import follow
from tether.store import SQLiteStore

AGENT = Path(__file__).with_name("slow_agent.py")


def _create(db: Path) -> None:
    asyncio.run(SQLiteStore(db).close())


def _start(db: Path, run_id: str, *, steps: int = 4, delay: float = 0.15,
           fail: bool = False) -> subprocess.Popen[bytes]:
    args = [sys.executable, str(AGENT), str(db), run_id, str(steps), str(delay)]
    return subprocess.Popen([*args, *(["--fail"] if fail else [])])


async def test_follow_sees_events_while_the_other_process_runs(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    await SQLiteStore(db).close()  # create the schema before two processes race to
    process = _start(db, "run_tailed")
    store = SQLiteStore(db)
    try:
        seen = []
        live = []
        async for event in follow(store, "run_tailed", poll_s=0.02, wait_s=30, timeout_s=60):
            seen.append(event)
            live.append(process.poll() is None)
        assert process.wait(timeout=30) == 0
        assert seen[-1].type == EventType.RUN_COMPLETED
        assert [e.to_dict() for e in seen] == [e.to_dict() for e in await store.read("run_tailed")]
        assert live[0] and live[len(live) // 2]  # read while the run was going on
    finally:
        process.kill()
        await store.close()


def test_tail_command_ends_when_the_run_ends(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    _create(db)
    cli = CliRunner()
    process = _start(db, "run_ok")
    try:
        started = time.monotonic()
        out = cli.invoke(app, ["tail", "run_ok", "--db", str(db), "--poll", "0.02"])
        assert out.exit_code == 0, out.output
        assert time.monotonic() - started < 30
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    lines = out.output.splitlines()
    assert "run.started" in lines[0] and "run.completed" in lines[-2]
    assert lines[-1] == "run run_ok is completed"
    assert sum("tool.result" in line for line in lines) == 4

    process = _start(db, "run_failing", fail=True)
    try:
        out = cli.invoke(app, ["tail", "run_failing", "--db", str(db), "--poll", "0.02",
                               "--json"])
        assert process.wait(timeout=30) == 0
    finally:
        process.kill()
    assert out.exit_code == 1
    events = [json.loads(line) for line in out.output.splitlines()]
    assert events[-1]["type"] == "run.failed"
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))


def test_tail_gives_up_on_a_run_that_never_appears(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    _create(db)
    out = CliRunner().invoke(app, ["tail", "run_never", "--db", str(db), "--wait", "0.2",
                                   "--poll", "0.05"])
    assert out.exit_code == 2 and "no run 'run_never'" in out.output
