"""The CLI's views open the store read-only: no file made by a typo, a one-line error."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import Event, EventType
from tether.store import SQLiteStore

VIEWS = [["runs"], ["show", "r0"], ["trace", "r0"], ["tail", "r0", "--wait", "0"],
         ["diff", "r0", "r1"], ["export", "r0"], ["doctor", "r0"], ["cost", "r0"]]


def _make(db: Path) -> None:
    async def write() -> None:
        store = SQLiteStore(db)
        for r in range(2):
            await store.append([Event(run_id=f"r{r}", seq=1, type=EventType.RUN_STARTED, step=0,
                                      ts=1000.0, payload={"agent": "a", "task": "t"})])
            await store.append([Event(run_id=f"r{r}", seq=2, type=EventType.RUN_COMPLETED,
                                      step=1, ts=1001.0, payload={"output": "ok"})])
        await store.close()

    asyncio.run(write())


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v[0])
def test_a_mistyped_db_is_an_error_and_no_file(tmp_path: Path, view: list[str]) -> None:
    typo = tmp_path / "tehter.db"
    out = CliRunner().invoke(app, [*view, "--db", str(typo)])
    assert out.exit_code == 1, out.output
    assert out.output.startswith(f"error: no Tether database at {typo}"), out.output
    assert "check --db / TETHER_DB" in out.output
    assert "Traceback" not in out.output and len(out.output.strip().splitlines()) == 2
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("view", VIEWS, ids=lambda v: v[0])
def test_views_read_a_read_only_copy(tmp_path: Path, view: list[str]) -> None:
    db = tmp_path / "t.db"
    _make(db)  # closed: all of it is in the main file
    copy = tmp_path / "copy" / "t.db"
    copy.parent.mkdir()
    copy.write_bytes(db.read_bytes())
    copy.chmod(0o444)
    before = copy.read_bytes()
    out = CliRunner().invoke(app, [*view, "--db", str(copy)])
    assert out.exit_code == 0, out.output
    assert copy.read_bytes() == before


def test_views_on_a_read_only_mount(tmp_path: Path) -> None:
    where = tmp_path / "disk"
    where.mkdir()
    try:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(where)],
                       check=True, capture_output=True)
    except (OSError, subprocess.CalledProcessError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    try:
        _make(where / "t.db")
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        cli = CliRunner()
        runs = cli.invoke(app, ["runs", "--json", "--db", str(where / "t.db")])
        assert runs.exit_code == 0, runs.output
        assert sorted(r["run_id"] for r in json.loads(runs.output)) == ["r0", "r1"]
        shown = cli.invoke(app, ["show", "r1", "--json", "--db", str(where / "t.db")])
        assert [e["seq"] for e in json.loads(shown.output)] == [1, 2]
        # The doctor still diagnoses; it cannot save, and says so in one line.
        doctor = cli.invoke(app, ["doctor", "r0", "--db", str(where / "t.db")])
        assert "Traceback" not in doctor.output, doctor.output
        assert not os.access(where, os.W_OK)
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_a_corrupt_file_is_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"SQLite format 3\x00" + b"\xff" * 5000)
    out = CliRunner().invoke(app, ["show", "r0", "--db", str(bad)])
    assert out.exit_code == 1 and out.output.startswith("error: ")
    assert "Traceback" not in out.output
