"""The unit of work on the Store protocol: rows written inside an append commit with
its events, or neither does."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import apsw
import pytest

from tether.core import Event, EventType, LeaseLostError, StoreCorruptError, StoreError
from tether.store import Lease, SQLiteStore, Store, Transaction, Within

HOSTILE = "'); DROP TABLE events; --\u202e\x00𝔘"


def ev(seq: int, kind: str = EventType.DECISION, **payload: object) -> Event:
    base: dict[str, object] = {"agent": "a", "task": "t"} \
        if kind == EventType.RUN_STARTED else {"decision": "note", **payload}
    return Event(run_id="r", seq=seq, type=kind, step=0, ts=1000.0 + seq, payload=base)


async def _started(path: Path) -> tuple[SQLiteStore, Lease]:
    store = SQLiteStore(path)
    lease = await store.acquire([ev(1, EventType.RUN_STARTED)], owner="me", ttl_s=60)
    await store.append([], lease=lease, within=lambda tx: (
        tx.execute("CREATE TABLE notes (text TEXT NOT NULL)"), [])[1])
    return store, lease


def _notes(path: Path) -> list[str]:
    db = apsw.Connection(str(path))
    try:
        return [r[0] for r in db.execute("SELECT text FROM notes").fetchall()]
    finally:
        db.close()


def writing(text: str, *events: Event, fail: Exception | None = None) -> Within:
    def work(tx: Transaction) -> Sequence[Event]:
        tx.execute("INSERT INTO notes(text) VALUES (?)", (text,))
        if fail is not None:
            raise fail
        return list(events)
    return work


def test_the_sqlite_store_is_a_store_with_a_unit_of_work() -> None:
    assert issubclass(SQLiteStore, Store)
    assert "within" in Store.append.__code__.co_varnames


async def test_rows_and_events_commit_together(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    store, lease = await _started(path)
    await store.append([ev(2)], lease=lease, within=writing(HOSTILE, ev(3, text=HOSTILE)))
    assert _notes(path) == [HOSTILE]
    events = await store.read("r")
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[2].payload["text"] == HOSTILE
    await store.close()


@pytest.mark.parametrize("how", ["raises", "wrong_seq", "bad_payload", "lease_lost"])
async def test_a_failure_inside_rolls_back_rows_and_events(tmp_path: Path, how: str) -> None:
    path = tmp_path / "t.db"
    store, lease = await _started(path)
    await store.append([ev(2)], lease=lease, within=writing("kept", ev(3)))
    before = await store.read("r")
    work = {
        "raises": writing("lost", ev(5), fail=RuntimeError("the memory write failed")),
        "wrong_seq": writing("lost", ev(9)),  # does not follow the appended event
        "bad_payload": writing("lost", Event(run_id="r", seq=5, type=EventType.TOOL_INTENT,
                                             step=0, ts=1.0, payload={"call_id": "c"})),
        "lease_lost": writing("lost", ev(5)),
    }[how]
    expected: type[Exception] = {"raises": RuntimeError, "wrong_seq": StoreError,
                                 "bad_payload": StoreCorruptError,
                                 "lease_lost": LeaseLostError}[how]
    fenced = lease
    if how == "lease_lost":  # another process took the run over: its token moved on
        await store.acquire([ev(4)], owner="other", ttl_s=60, takeover="me")
        before = await store.read("r")
    with pytest.raises(expected):
        await store.append([ev(len(before) + 1)], lease=fenced, within=work)
    assert _notes(path) == ["kept"]
    assert await store.read("r") == before
    assert (await store.run("r")).last_seq == len(before)
    await store.close()
