"""A locked store is waited for off the event loop, within a bound, and loses nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tether.core import Event, EventType, StoreLockedError
from tether.store import SQLiteStore

from ._procs import env, finish, hear, say, spawn

BENCH = Path(__file__).resolve().parents[2] / "bench"

#: Holds the write lock of a database (BEGIN IMMEDIATE) until told to let go.
HOLDER = """
import json, sys, apsw
db = apsw.Connection(sys.argv[1])
db.execute("BEGIN IMMEDIATE")
print(json.dumps({"holding": True}), flush=True)
sys.stdin.readline()
db.execute("COMMIT")
print(json.dumps({"released": True}), flush=True)
sys.stdin.readline()
"""


def ev(run_id: str, seq: int, kind: str = EventType.DECISION) -> Event:
    payload = {"agent": "a", "task": "t"} if kind == EventType.RUN_STARTED else {"i": seq}
    return Event(run_id=run_id, seq=seq, type=kind, step=0, ts=1000.0 + seq, payload=payload)


async def test_a_lock_is_waited_for_while_the_event_loop_runs(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = SQLiteStore(db)
    await store.append([ev("r", 1, EventType.RUN_STARTED)])
    holder = spawn("-c", HOLDER, str(db))
    try:
        assert hear(holder) == {"holding": True}
        seen: list[list[int]] = []

        async def meanwhile() -> None:
            # Runs only if the waiting append leaves the loop free; reads go on too.
            seen.append([e.seq for e in await store.read("r")])
            say(holder)  # let go of the lock: the waiting append can then commit
            await asyncio.to_thread(hear, holder)

        await asyncio.gather(store.append([ev("r", 2)]), meanwhile())
        assert seen == [[1]]
        assert store.busy_attempts > 0
        assert [e.seq for e in await store.read("r")] == [1, 2]
    finally:
        finish(holder)
        await store.close()


async def test_a_lock_held_past_the_bound_is_a_typed_error_and_loses_nothing(
    tmp_path: Path,
) -> None:
    db = tmp_path / "t.db"
    store = SQLiteStore(db, busy_timeout_ms=300)
    await store.append([ev("r", 1, EventType.RUN_STARTED)])
    holder = spawn("-c", HOLDER, str(db))
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.001)

    try:
        assert hear(holder) == {"holding": True}
        beat = asyncio.create_task(ticker())
        with pytest.raises(StoreLockedError) as locked:
            await store.append([ev("r", 2)])
        beat.cancel()
        assert ticks > 1  # the loop kept running while the append waited
        assert "300 ms" in locked.value.message
        assert "TETHER_BUSY_TIMEOUT_MS" in (locked.value.hint or "")
        assert locked.value.retryable
        say(holder)
        assert hear(holder) == {"released": True}
        assert [e.seq for e in await store.read("r")] == [1]  # nothing half-written
        await store.append([ev("r", 2)])  # and the store works on
        assert [e.seq for e in await store.read("r")] == [1, 2]
    finally:
        finish(holder)
        await store.close()


async def test_a_cancelled_wait_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    store = SQLiteStore(db)
    await store.append([ev("r", 1, EventType.RUN_STARTED)])
    holder = spawn("-c", HOLDER, str(db))
    try:
        assert hear(holder) == {"holding": True}
        waiting = asyncio.create_task(store.append([ev("r", 2)]))
        while store.busy_attempts < 3:  # noqa: ASYNC110 - a counter of the worker thread
            await asyncio.sleep(0.01)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        say(holder)
        assert hear(holder) == {"released": True}
        await asyncio.sleep(0.1)  # give a wrongly surviving retry every chance to commit
        assert [e.seq for e in await store.read("r")] == [1]
        await store.append([ev("r", 2)])
    finally:
        finish(holder)
        await store.close()


def test_processes_driving_runs_on_one_file_lose_no_result(tmp_path: Path) -> None:
    """The contention benchmark, smaller: 4 processes x 3 runs x 12 steps."""
    script = (
        "import sys, json; sys.path.insert(0, sys.argv[1]); import contention; "
        "from pathlib import Path; "
        "got = contention.run(Path(sys.argv[2]), 4, 3, 12); got.pop('reports'); "
        "print(json.dumps(got))"
    )
    out = subprocess.run([sys.executable, "-c", script, str(BENCH), str(tmp_path)],
                         capture_output=True, text=True, env=env(), timeout=600)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["failed_processes"] == 0
    assert got["effects"] == 4 * 3 * 12
    assert (got["lost_results"], got["crashed_runs"]) == (0, 0)
