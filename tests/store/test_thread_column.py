"""The run table's ``thread`` column: filled from ``run.started`` for new runs and, by
its migration, for runs written before it; indexed; what ``Store.runs(thread=)``,
``thread_runs`` and ``list_threads`` read instead of every run's journal."""

from __future__ import annotations

import asyncio
from pathlib import Path

import apsw
import pytest

from tether.core import Event, EventType, StoreCorruptError, UsageError
from tether.models import ScriptedModel
from tether.runtime import (
    Agent,
    Runner,
    list_threads,
    parse_thread_key,
    thread_key,
    thread_runs,
)
from tether.store import SCHEMA_VERSION, SQLiteStore

#: Names a user may give a thread, and payloads an old journal may hold.
THREADS = ["support-ada", "it's \"quoted\"; DROP TABLE runs;--", "ключ🔑", "a\nb", "%", "_"]


def started(run_id: str, ts: float, **payload: object) -> Event:
    return Event(run_id=run_id, seq=1, type=EventType.RUN_STARTED, step=0, ts=ts,
                 payload={"agent": "a", "task": "t", **payload})


async def _fill(store: SQLiteStore) -> None:
    for i, thread in enumerate(THREADS):
        await store.append([started(f"r{i}a", 100.0 + i, thread=thread, thread_runs=[])])
        await store.append([started(f"r{i}b", 200.0 + i, thread=thread, thread_runs=[])])
    await store.append([started("plain", 300.0)])
    # Not a name: the payload does not have run.started's shape, and nothing is written.
    for run_id, thread in (("numeric", 42), ("nested", {"thread": "support-ada"})):
        with pytest.raises(StoreCorruptError, match="thread"):
            await store.append([started(run_id, 301.0, thread=thread)])


async def _check(store: SQLiteStore) -> None:
    for thread in THREADS:
        runs = await store.runs(thread=thread)
        assert [r.run_id for r in runs] == [f"r{THREADS.index(thread)}{x}" for x in "ba"]
        assert all(r.thread == thread for r in runs)
        found = await thread_runs(store, thread)
        assert [r for r, _ in found] == [runs[1].run_id, runs[0].run_id]  # oldest first
    assert await store.runs(thread="support") == []  # exact names, no patterns
    assert await store.runs(thread="%") != await store.runs(thread="_")
    by_id = {r.run_id: r for r in await store.runs(limit=100)}
    assert by_id["plain"].thread is None
    assert "numeric" not in by_id and "nested" not in by_id
    threads = await list_threads(store)
    assert list(threads) == list(reversed(THREADS))  # newest latest run first
    assert [r.run_id for r in threads["support-ada"]] == ["r0a", "r0b"]


async def test_new_runs_record_their_thread(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    await _fill(store)
    await _check(store)
    await store.close()


async def test_the_migration_fills_the_column_from_older_journals(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = SQLiteStore(db)
    await _fill(store)
    await store.close()
    old = apsw.Connection(str(db))  # as schema 2 wrote it: no thread column
    old.execute("DROP INDEX runs_by_thread; ALTER TABLE runs DROP COLUMN thread; "
                f"UPDATE tether_migrations SET version = {SCHEMA_VERSION - 1} "
                f"WHERE name = 'core'; PRAGMA user_version={SCHEMA_VERSION - 1}")
    old.close()
    reader = SQLiteStore(db, readonly=True)  # a read-only look does not migrate
    assert all(r.thread is None for r in await reader.runs(limit=100))
    assert await reader.runs(thread="support-ada") == []
    await reader.close()
    store = SQLiteStore(db)  # migrates
    assert store._conn.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    await _check(store)
    await store.close()


async def test_runs_of_a_thread_are_found_by_the_index(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    await _fill(store)
    plan = store._conn.db.execute(
        "EXPLAIN QUERY PLAN SELECT run_id FROM runs WHERE thread = ? "
        "ORDER BY created_at DESC LIMIT 5", ("support-ada",)).fetchall()
    assert any("runs_by_thread" in str(row[-1]) for row in plan), plan
    await store.close()


def test_a_runner_finds_a_thread_s_runs_without_reading_journals(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    agent = Agent(name="a", model=ScriptedModel(["one", "two", "three"]))
    runner = Runner(store)
    first = runner.run_sync(agent, "hi", thread="t1")
    runner.run_sync(agent, "other", thread="t2")
    third = runner.run_sync(agent, "again", thread="t1")
    events = asyncio.run(store.read(third.run_id))
    last = asyncio.run(store.run(first.run_id)).last_seq
    assert events[0].payload["thread_runs"] == [[first.run_id, last]]
    summary = asyncio.run(store.run(third.run_id))
    assert summary.thread == thread_key("t1", agent="a") and events[0].payload["thread"] == "t1"
    assert parse_thread_key(summary.thread) == ("a", None, "t1")
    with pytest.raises(UsageError):
        runner.run_sync(agent, "long", thread="x" * 201)
