from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from pathlib import Path

import apsw
import pytest

from tether.core import (
    ConcurrentWriteError,
    Event,
    EventType,
    RunNotFoundError,
    RunStatus,
    SchemaVersionError,
    StoreCorruptError,
    StoreLockedError,
)
from tether.store import SCHEMA_VERSION, SQLiteStore, open_store


def ev(run_id: str, seq: int, kind: str, payload: dict | None = None, step: int = 0) -> Event:  # type: ignore[type-arg]
    return Event(run_id=run_id, seq=seq, type=kind, step=step, ts=1000.0 + seq,
                 payload=payload or {})


def started(run_id: str) -> Event:
    return ev(run_id, 1, EventType.RUN_STARTED, {"agent": "a", "task": "t"})


async def test_append_read_roundtrip_and_summary(store: SQLiteStore) -> None:
    big = "x" * 5000
    await store.append([started("r1")])
    await store.append([
        ev("r1", 2, EventType.MODEL_RESPONSE, {"message": {"content": big},
           "usage": {"input_tokens": 10, "output_tokens": 3}, "cost_usd": 0.5}, step=1),
        ev("r1", 3, EventType.RUN_COMPLETED, {"output": big}, step=1),
    ])
    events = await store.read("r1")
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[2].payload["output"] == big
    assert [e.seq for e in await store.read("r1", after_seq=2)] == [3]
    summary = await store.run("r1")
    assert summary.status == RunStatus.COMPLETED
    assert (summary.steps, summary.last_seq) == (1, 3)
    assert (summary.input_tokens, summary.output_tokens, summary.cost_usd) == (10, 3, 0.5)


async def test_large_payloads_are_stored_once(store: SQLiteStore) -> None:
    big = "y" * 10_000
    await store.append([started("r1")])
    for seq in range(2, 12):
        await store.append([ev("r1", seq, EventType.DECISION, {"text": big})])
    db = apsw.Connection(str(store.path))
    (blobs,) = db.execute("SELECT count(*) FROM blobs").fetchone()
    (stored,) = db.execute("SELECT sum(length(payload)) FROM events").fetchone()
    assert blobs == 1
    assert stored < 2000


async def test_append_is_atomic_and_seq_dense(store: SQLiteStore) -> None:
    await store.append([started("r1")])
    with pytest.raises(ConcurrentWriteError):
        await store.append([ev("r1", 3, EventType.DECISION)])  # gap
    with pytest.raises(ConcurrentWriteError):
        await store.append([ev("r1", 1, EventType.DECISION)])  # duplicate
    # A failure half-way through a batch writes nothing of it.
    bad = ev("r1", 3, EventType.TOOL_INTENT, {"call_id": "c"})  # missing fields
    with pytest.raises(StoreCorruptError, match="tool.intent payload"):
        await store.append([ev("r1", 2, EventType.DECISION), bad])
    assert [e.seq for e in await store.read("r1")] == [1]
    assert (await store.run("r1")).last_seq == 1


async def test_tool_ledger_follows_intents_and_results(store: SQLiteStore) -> None:
    await store.append([started("r1")])
    await store.append([ev("r1", 2, EventType.TOOL_INTENT, {
        "call_id": "c1", "tool": "t", "idempotency_key": "r1-1-0", "arguments": {}}, step=1)])
    (entry,) = await store.ledger("r1")
    assert (entry.status, entry.result_seq) == ("intent", None)
    await store.append([ev("r1", 3, EventType.TOOL_RESULT, {
        "call_id": "c1", "tool": "t", "content": "ok"}, step=1)])
    (entry,) = await store.ledger("r1")
    assert (entry.status, entry.result_seq, entry.idempotency_key) == ("done", 3, "r1-1-0")


async def test_unknown_run(store: SQLiteStore) -> None:
    with pytest.raises(RunNotFoundError, match="tether runs"):
        await store.read("nope")
    with pytest.raises(RunNotFoundError):
        await store.run("nope")


async def test_runs_filters(store: SQLiteStore) -> None:
    for i, name in enumerate(["a", "b", "a"]):
        await store.append([Event(run_id=f"r{i}", seq=1, type=EventType.RUN_STARTED, step=0,
                                  ts=100.0 + i, payload={"agent": name, "task": "t"})])
    await store.append([ev("r2", 2, EventType.RUN_FAILED, {"error": {}})])
    assert [r.run_id for r in await store.runs()] == ["r2", "r1", "r0"]
    assert [r.run_id for r in await store.runs(agent="a")] == ["r2", "r0"]
    assert [r.run_id for r in await store.runs(status=RunStatus.FAILED)] == ["r2"]
    assert [r.run_id for r in await store.runs(since=101.0)] == ["r2", "r1"]


async def test_schema_is_versioned(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await SQLiteStore(path).close()
    db = apsw.Connection(str(path))
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    db.close()
    with pytest.raises(SchemaVersionError, match="upgrade tether"):
        SQLiteStore(path)


def test_durability_settings(tmp_path: Path) -> None:
    for mode, value in (("FULL", 2), ("NORMAL", 1)):
        store = SQLiteStore(tmp_path / f"{mode}.db", synchronous=mode)  # type: ignore[arg-type]
        assert store._conn.db.execute("PRAGMA synchronous").fetchone()[0] == value
        asyncio.run(store.close())


def test_corrupt_and_foreign_files(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreCorruptError, match="not a valid SQLite database"):
        SQLiteStore(garbage)
    foreign = tmp_path / "foreign.db"
    db = apsw.Connection(str(foreign))
    db.execute("CREATE TABLE t(x)")
    db.close()
    with pytest.raises(StoreCorruptError, match="not a Tether store"):
        SQLiteStore(foreign)


async def test_locked_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    await SQLiteStore(path).close()
    holder = apsw.Connection(str(path))
    holder.execute("BEGIN EXCLUSIVE")
    store = SQLiteStore(path, busy_timeout_ms=50)
    with pytest.raises(StoreLockedError, match="locked"):
        await store.append([started("r1")])
    holder.execute("ROLLBACK")
    await store.append([started("r1")])  # nothing was lost or left half-done


def test_open_store_reads_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TETHER_DB", str(tmp_path / "env.db"))
    monkeypatch.setenv("TETHER_SYNCHRONOUS", "normal")
    store = open_store()
    assert isinstance(store, SQLiteStore)
    assert (store.path, store.synchronous) == (tmp_path / "env.db", "NORMAL")
    asyncio.run(store.close())


WRITER = textwrap.dedent("""
    import asyncio, sys
    from tether.core import Event
    from tether.store import SQLiteStore

    async def main(path, run_id, n):
        store = SQLiteStore(path)
        await store.append([Event(run_id=run_id, seq=1, type="run.started", step=0, ts=0.0,
                                  payload={"agent": "w", "task": "t"})])
        for seq in range(2, n + 2):
            await store.append([Event(run_id=run_id, seq=seq, type="decision", step=seq,
                                      ts=0.0, payload={"i": seq, "pad": "z" * 300 + run_id})])
        await store.close()

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
""")


def test_two_processes_appending_to_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    asyncio.run(SQLiteStore(path).close())
    n = 300
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), f"run_{i}", str(n)])
               for i in range(2)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]

    async def check() -> None:
        store = SQLiteStore(path)
        for i in range(2):
            events = await store.read(f"run_{i}")
            assert [e.seq for e in events] == list(range(1, n + 2))
            assert all(e.payload["pad"].endswith(f"run_{i}") for e in events[1:])
        await store.close()

    asyncio.run(check())


async def test_payload_dicts_that_look_like_blob_references_round_trip(
    store: SQLiteStore,
) -> None:
    tricky = {"a": {"$blob": "00"}, "b": {"$escaped": {"$blob": "abc"}}, "c": [{"$blob": 1}],
              "long": "z" * 400}
    await store.append([started("r1")])
    await store.append([ev("r1", 2, EventType.DECISION, tricky)])
    assert (await store.read("r1"))[1].payload == tricky


async def test_lone_surrogates_round_trip(store: SQLiteStore) -> None:
    name = b"report-\xe9.txt".decode("utf-8", "surrogateescape")
    payload = {"short": name, "long": name * 50}
    await store.append([started("r1")])
    await store.append([ev("r1", 2, EventType.DECISION, payload)])
    assert (await store.read("r1"))[1].payload == payload


def test_two_processes_creating_one_file_at_once(tmp_path: Path) -> None:
    code = "import sys; from tether.store import SQLiteStore; SQLiteStore(sys.argv[1])"
    for i in range(5):
        path = str(tmp_path / f"new{i}.db")
        procs = [subprocess.Popen([sys.executable, "-c", code, path], stderr=subprocess.PIPE)
                 for _ in range(2)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
