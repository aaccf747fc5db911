"""Leases and fencing: one driver per run, attacked with real processes on a real file."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import apsw
import pytest

from tether.core import (
    ConcurrentWriteError,
    ConfigurationError,
    Event,
    EventType,
    LeaseLostError,
    RunLeasedError,
    StoreReadOnlyError,
    UsageError,
)
from tether.store import SCHEMA_VERSION, Lease, SQLiteStore, Store

from ._procs import finish, hear, say, spawn

CHILD = str(Path(__file__).with_name("_lease_child.py"))


def ev(run_id: str, seq: int, kind: str = EventType.DECISION, **payload: Any) -> Event:
    return Event(run_id=run_id, seq=seq, type=kind, step=0, ts=1000.0 + seq, payload=payload)


def started(run_id: str) -> Event:
    return ev(run_id, 1, EventType.RUN_STARTED, agent="a", task="t")


def tell(proc: subprocess.Popen[str], **command: Any) -> dict[str, Any]:
    say(proc, json.dumps(command))
    return hear(proc)


def child(db: Path, owner: str) -> subprocess.Popen[str]:
    proc = spawn(CHILD, str(db), owner)
    assert hear(proc) == {"ready": True}
    return proc


async def test_lease_lifecycle_in_one_process(store: SQLiteStore) -> None:
    assert isinstance(store, Store)
    lease = await store.acquire([started("r1")], owner="me", ttl_s=30)
    assert (lease.run_id, lease.owner, lease.token, lease.ttl_s) == ("r1", "me", 1, 30)
    assert lease.expires_at > time.time()
    assert await store.lease("r1") == lease
    await store.append([ev("r1", 2)], lease=lease)
    extended = await store.lease("r1")
    assert extended is not None and extended.expires_at >= lease.expires_at
    # Without the lease, a live run refuses appends, naming its driver; nothing written.
    with pytest.raises(RunLeasedError, match="driven by me") as refused:
        await store.append([ev("r1", 3)])
    assert (refused.value.owner, refused.value.run_id) == ("me", "r1")
    assert "not data loss" in (refused.value.hint or "")
    assert [e.seq for e in await store.read("r1")] == [1, 2]
    # Another owner is refused too; the same owner takes it again with a new token.
    with pytest.raises(RunLeasedError):
        await store.acquire([ev("r1", 3, EventType.RUN_RESUMED)], owner="other", ttl_s=30)
    again = await store.acquire([ev("r1", 3, EventType.RUN_RESUMED)], owner="me", ttl_s=5)
    assert again.token == 2
    with pytest.raises(LeaseLostError):  # the first lease is fenced off by the second
        await store.append([ev("r1", 4)], lease=lease)
    await store.renew(again)
    await store.release(again)
    released = await store.lease("r1")
    assert released is not None and released.expires_at == 0 and released.token == 2
    await store.append([ev("r1", 4)])  # no live lease: plain appends work
    taken = await store.acquire([ev("r1", 5, EventType.RUN_RESUMED)], owner="other", ttl_s=5)
    assert taken.token == 3
    await store.release(again)  # stale token: silent, and the new lease stays live
    live = await store.lease("r1")
    assert live is not None and live.owner == "other" and live.expires_at > time.time()
    assert await store.lease("nope") is None


async def test_acquire_writes_nothing_when_refused_or_stale(store: SQLiteStore) -> None:
    await store.acquire([started("r1")], owner="a", ttl_s=30)
    with pytest.raises(RunLeasedError):
        await store.acquire([ev("r1", 2, EventType.RUN_RESUMED), ev("r1", 3)], owner="b",
                            ttl_s=30)
    with pytest.raises(ConcurrentWriteError):  # same owner, stale seq: no new token
        await store.acquire([ev("r1", 5, EventType.RUN_RESUMED)], owner="a", ttl_s=30)
    lease = await store.lease("r1")
    assert lease is not None and lease.token == 1
    assert [e.seq for e in await store.read("r1")] == [1]
    # A new run's start cannot be acquired twice.
    with pytest.raises(RunLeasedError):
        await store.acquire([started("r1")], owner="b", ttl_s=30)


@pytest.mark.parametrize("ttl", [0, -1, math.nan, math.inf, "30"])
async def test_bad_ttl_is_a_configuration_error(store: SQLiteStore, ttl: Any) -> None:
    with pytest.raises(ConfigurationError):
        await store.acquire([started("r1")], owner="a", ttl_s=ttl)
    with pytest.raises(UsageError):
        await store.acquire([], owner="a", ttl_s=1)
    with pytest.raises(ConfigurationError):
        await store.acquire([started("r1")], owner="", ttl_s=1)
    assert await store.runs() == []


async def test_hostile_owner_and_foreign_lease(store: SQLiteStore) -> None:
    with pytest.raises(ConfigurationError):  # a lone surrogate cannot be stored
        await store.acquire([started("r1")], owner="host\udcff", ttl_s=30)
    owner = "h'ost\"; DROP TABLE leases;--\n\u202e\x00:1:x"
    lease = await store.acquire([started("r1")], owner=owner, ttl_s=30)
    assert (await store.lease("r1")) == lease
    with pytest.raises(RunLeasedError) as refused:
        await store.append([ev("r1", 2)])
    assert refused.value.owner == owner
    await store.acquire([started("r2")], owner="b", ttl_s=30)
    with pytest.raises(UsageError):  # a lease of another run does not fence this one
        await store.append([ev("r2", 2)], lease=lease)
    forged = Lease(run_id="r2", owner="b", token=7, ttl_s=30, expires_at=math.inf)
    with pytest.raises(LeaseLostError):
        await store.append([ev("r2", 2)], lease=forged)
    with pytest.raises(LeaseLostError):
        await store.renew(forged)
    assert [e.seq for e in await store.read("r2")] == [1]


def test_two_processes_acquiring_at_once_exactly_one_wins(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    asyncio.run(SQLiteStore(db).close())
    racers = [child(db, f"racer{i}") for i in range(3)]
    try:
        seq = 1
        for round_ in range(8):
            for proc in racers:  # all at once, with the same seq, as resumers would
                say(proc, json.dumps({"op": "acquire", "seq": seq, "ttl": 60}))
            answers = [hear(proc) for proc in racers]
            winners = [i for i, a in enumerate(answers) if "token" in a]
            assert len(winners) == 1, answers
            assert all(a["error"] == "RunLeasedError" and a["owner"] == f"racer{winners[0]}"
                       for a in answers if "error" in a), answers
            assert answers[winners[0]]["token"] == round_ + 1
            seq += 1
            assert tell(racers[winners[0]], op="release") == {"op": "release"}
    finally:
        for proc in racers:
            finish(proc)

    async def check() -> None:
        store = SQLiteStore(db, readonly=True)
        events = await store.read("r")
        assert [e.seq for e in events] == list(range(1, 9))
        assert [e.type for e in events] == ["run.started"] + ["run.resumed"] * 7
        await store.close()

    asyncio.run(check())


def test_a_stalled_driver_is_fenced_off_after_a_takeover(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    asyncio.run(SQLiteStore(db).close())
    stalled, taker = child(db, "stalled"), child(db, "taker")
    try:
        first = tell(stalled, op="acquire", seq=1, ttl=0.3)
        assert first["token"] == 1
        assert "error" not in tell(stalled, op="append", seq=2)
        refused = tell(taker, op="acquire", seq=3, ttl=60)
        while "error" in refused:  # until the stalled driver's lease lapses
            assert refused["error"] == "RunLeasedError" and refused["owner"] == "stalled"
            time.sleep(0.05)
            refused = tell(taker, op="acquire", seq=3, ttl=60)
        assert refused["token"] == 2
        # The stalled process wakes up and carries on: every write of it is refused.
        for command in ({"op": "append", "seq": 4}, {"op": "renew"}):
            lost = tell(stalled, **command)
            assert lost["error"] == "LeaseLostError" and "taker holds lease 2" in lost["message"]
        assert tell(stalled, op="append-bare", seq=4)["error"] == "RunLeasedError"
        assert tell(stalled, op="release") == {"op": "release"}  # silent, changes nothing
        assert "error" not in tell(taker, op="append", seq=4)
    finally:
        for proc in (stalled, taker):
            finish(proc)

    async def check() -> None:
        store = SQLiteStore(db, readonly=True)
        events = await store.read("r")
        assert [(e.seq, e.payload.get("by")) for e in events] == [
            (1, None), (2, "stalled"), (3, "taker"), (4, "taker")]
        lease = await store.lease("r")
        assert lease is not None and (lease.owner, lease.token) == ("taker", 2)
        assert lease.expires_at > time.time()
        await store.close()

    asyncio.run(check())


def test_the_lease_of_a_killed_owner_is_taken_over_when_it_expires(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    asyncio.run(SQLiteStore(db).close())
    owner = child(db, "doomed")
    assert tell(owner, op="acquire", seq=1, ttl=1.5)["token"] == 1
    assert "error" not in tell(owner, op="append", seq=2)
    os.kill(owner.pid, signal.SIGKILL)
    owner.communicate(timeout=30)

    async def take_over() -> None:
        store = SQLiteStore(db)
        held = await store.lease("r")
        assert held is not None and held.owner == "doomed"
        refusals = 0
        while True:
            before = time.time()
            try:
                lease = await store.acquire([ev("r", 3, EventType.RUN_RESUMED)],
                                            owner="heir", ttl_s=30)
                break
            except RunLeasedError as e:  # only while the dead owner's lease is live
                assert e.owner == "doomed" and before < e.expires_at
                refusals += 1
                await asyncio.sleep(0.05)
        assert time.time() >= held.expires_at
        assert refusals > 0
        assert (lease.owner, lease.token) == ("heir", 2)
        await store.append([ev("r", 4)], lease=lease)
        assert [e.seq for e in await store.read("r")] == [1, 2, 3, 4]
        await store.close()

    asyncio.run(take_over())


async def test_a_journal_from_before_leases_reads_and_appends(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    store = SQLiteStore(db)
    await store.append([started("r1")])
    await store.append([ev("r1", 2)])
    await store.close()
    old = apsw.Connection(str(db))  # as schema 1 wrote it: no lease table, no thread
    old.execute("DROP TABLE leases; DROP TABLE tether_migrations; DROP INDEX runs_by_thread; "
                "ALTER TABLE runs DROP COLUMN thread; PRAGMA user_version=1")
    old.close()
    reader = SQLiteStore(db, readonly=True)
    assert [e.seq for e in await reader.read("r1")] == [1, 2]
    assert await reader.lease("r1") is None
    await reader.close()
    assert apsw.Connection(str(db)).execute("PRAGMA user_version").fetchone()[0] == 1
    store = SQLiteStore(db)  # migrates
    assert store._conn.db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    await store.append([ev("r1", 3)])  # no lease row: appends as before
    lease = await store.acquire([ev("r1", 4, EventType.RUN_RESUMED)], owner="a", ttl_s=9)
    assert lease.token == 1
    await store.close()


async def test_a_read_only_store_takes_no_lease(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    writer = SQLiteStore(db)
    lease = await writer.acquire([started("r1")], owner="w", ttl_s=30)
    reader = SQLiteStore(db, readonly=True)
    assert await reader.lease("r1") == lease
    for attempt in (reader.acquire([ev("r1", 2, EventType.RUN_RESUMED)], owner="r", ttl_s=1),
                    reader.append([ev("r1", 2)], lease=lease), reader.renew(lease),
                    reader.release(lease)):
        with pytest.raises(StoreReadOnlyError):
            await attempt
    await writer.append([ev("r1", 2)], lease=lease)
    assert [e.seq for e in await reader.read("r1")] == [1, 2]
    await reader.close()
    await writer.close()
