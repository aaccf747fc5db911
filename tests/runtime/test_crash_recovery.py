"""Crash at every commit point: SIGKILL a real child process, resume in a fresh one."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tether.core import EventType, RunStatus
from tether.store import SQLiteStore

from . import crash_agent

CHILD = Path(crash_agent.__file__)


def _child(db: Path, effects: Path, run_id: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, crash_agent.EFFECTS_ENV: str(effects)}
    return subprocess.run([sys.executable, str(CHILD), str(db), run_id, *args],
                          capture_output=True, text=True, env=env, timeout=60)


def _journal(db: Path, run_id: str) -> list:  # type: ignore[type-arg]
    async def read() -> list:  # type: ignore[type-arg]
        store = SQLiteStore(db)
        try:
            return await store.read(run_id)
        finally:
            await store.close()

    return asyncio.run(read())


def _effects(path: Path) -> Counter[tuple[str, str]]:
    lines = path.read_text().splitlines() if path.exists() else []
    return Counter((line.split(" ")[0], line.split(" ")[1]) for line in lines)


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Counter[tuple[str, str]]]:
    """An uninterrupted run: its answer and its side effects."""
    tmp = tmp_path_factory.mktemp("reference")
    done = _child(tmp / "t.db", tmp / "effects", "run_ref")
    assert done.returncode == 0, done.stderr
    status, answer = done.stdout.splitlines()[:2]
    assert status == "completed"
    events = _journal(tmp / "t.db", "run_ref")
    # The commit points the test walks are the ones the run really has.
    assert len({(e.type, e.seq) for e in events}) == len(events)
    return answer, _effects(tmp / "effects")


def _kinds(effects: Counter[tuple[str, str]]) -> Counter[str]:
    return Counter(kind for kind, _key in effects.elements())


@pytest.mark.parametrize("k", range(1, crash_agent.COMMIT_POINTS + 1))
def test_kill_after_commit_point(
    k: int, tmp_path: Path, reference: tuple[str, Counter[tuple[str, str]]]
) -> None:
    answer, ref_effects = reference
    db, effects, run_id = tmp_path / "t.db", tmp_path / "effects", f"run_k{k}"

    killed = _child(db, effects, run_id, "--kill-after", str(k))
    assert killed.returncode == -9, (killed.returncode, killed.stdout, killed.stderr)

    before = _journal(db, run_id)
    answered = {e.payload["call_id"] for e in before
                if e.type in (EventType.TOOL_RESULT, EventType.TOOL_ERROR)}
    emails_in_doubt = [e.payload["call_id"] for e in before if e.type == EventType.TOOL_INTENT
                       and e.payload["tool"] == "send_email"
                       and e.payload["call_id"] not in answered]

    effects_before = _effects(effects)
    resumed = _child(db, effects, run_id, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    status = resumed.stdout.splitlines()[0]
    events = _journal(db, run_id)

    # The journal: dense seq, no event twice, nothing committed before the kill lost.
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[: len(before)] == before
    intents = [e.payload["call_id"] for e in events if e.type == EventType.TOOL_INTENT]
    assert len(intents) == len(set(intents))
    responses = [e.step for e in events if e.type == EventType.MODEL_RESPONSE]
    assert responses == sorted(set(responses))

    got = _effects(effects)
    # No side effect ever happened twice for the same call.
    assert all(n == 1 for n in got.values()), got
    if emails_in_doubt:
        assert status == RunStatus.NEEDS_ATTENTION
        last = events[-1]
        assert last.type == EventType.RUN_NEEDS_ATTENTION
        assert [c["call_id"] for c in last.payload["calls"]] == emails_in_doubt
        assert "send_email" in last.payload["error"]["message"]
        # The email in doubt (which may or may not have gone out before the kill) was
        # not sent again by the resume.
        key = ("email", last.payload["calls"][0]["idempotency_key"])
        assert got[key] == effects_before[key]
    else:
        assert status == RunStatus.COMPLETED
        assert resumed.stdout.splitlines()[1] == answer
        assert _kinds(got) == _kinds(ref_effects)


def test_needs_attention_resolved_by_hand_then_completes(tmp_path: Path) -> None:
    """Kill inside the first email's intent→result window, resolve, resume."""
    db, effects, run_id = tmp_path / "t.db", tmp_path / "effects", "run_resolve"
    # Commit points: 1 start, 2-3 step 1, 4-5 step 2, 6 = step 3's response + email intent.
    assert _child(db, effects, run_id, "--kill-after", "6").returncode == -9
    first = _child(db, effects, run_id, "--resume")
    assert first.stdout.splitlines()[0] == "needs_attention"
    call_id = _journal(db, run_id)[-1].payload["calls"][0]["call_id"]

    from typer.testing import CliRunner

    from tether.cli import app

    cli = CliRunner()
    out = cli.invoke(app, ["resolve", run_id, call_id, "--result", "not sent", "--db", str(db)])
    assert out.exit_code == 0, out.output
    done = _child(db, effects, run_id, "--resume")
    assert done.stdout.splitlines()[0] == "completed"
    resolved = [e for e in _journal(db, run_id) if e.payload.get("resolved_by") == "user"]
    assert [e.payload["content"] for e in resolved] == ["not sent"]
