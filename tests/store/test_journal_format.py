"""Journals written before this version stay readable and resumable.

``tests/data/journal_format1.db`` was written by the code of commit 6bd45a6 (journal
format 1 before it was recorded, core schema 2 in ``user_version`` only; see
``tests/data/make_journal_format1.py``). These tests read it with today's code, check
every payload parses into its type's model and dumps back byte for byte, fold its runs,
upgrade the file to named migration sets, and resume its two interrupted runs.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import apsw
import pytest

from tests.data import journal_agents as ja
from tether.core import (
    JOURNAL_FORMAT,
    PAYLOADS,
    EventType,
    Payload,
    RunStatus,
    SchemaVersionError,
    ToolResultPayload,
)
from tether.runtime import Runner, fold
from tether.store import CORE_MIGRATIONS, SQLiteStore, applied_version

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "journal_format1.db"


@pytest.fixture
def old_db(tmp_path: Path) -> Path:
    copy = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, copy)
    return copy


def _schema(path: Path) -> tuple[int, list[tuple[str, int]]]:
    db = apsw.Connection(str(path))
    try:
        version = db.execute("PRAGMA user_version").fetchall()[0][0]
        rows = db.execute("SELECT name, version FROM tether_migrations ORDER BY name")
        return int(version), [(str(n), int(v)) for n, v in rows.fetchall()]
    finally:
        db.close()


async def test_every_payload_parses_and_dumps_back_the_same(old_db: Path) -> None:
    store = SQLiteStore(old_db, readonly=True)
    seen: set[str] = set()
    for run in await store.runs(limit=100):
        for event in await store.read(run.run_id):
            model = PAYLOADS[event.type]
            assert type(event.data) is model, event.type
            assert event.data is event.data  # parsed once
            assert event.data.dump() == event.payload, event.type  # nothing lost
            if not event.data.model_extra:  # what today's writers write: same bytes
                assert json.dumps(event.data.dump()) == json.dumps(event.payload), event.type
            seen.add(event.type)
    await store.close()
    # The fixture covers the journal's main shapes (the rest have their unit tests).
    assert {"run.started", "retry", "breaker", "tool.intent", "tool.result", "tool.error",
            "memory.write", "memory.recall", "context.built", "subrun.started",
            "subrun.completed", "decision"} <= seen
    assert _schema(old_db) == (2, [("memory", 1)])  # a read-only look wrote nothing


async def test_the_old_runs_fold_as_they_were(old_db: Path) -> None:
    store = SQLiteStore(old_db, readonly=True)
    tools = fold(ja.RUN_ID, await store.read(ja.RUN_ID))
    assert tools.status == RunStatus.RUNNING
    assert tools.format == 1  # no format recorded: the first one
    assert list(tools.open_calls) == ["call_2_0"]
    assert tools.open_calls["call_2_0"].tool == "send"
    assert tools.step == 3
    team = fold(ja.TEAM_RUN_ID, await store.read(ja.TEAM_RUN_ID))
    assert team.status == RunStatus.COMPLETED
    assert team.subrun_steps > 0
    assert team.subrun_usage.requests > 0
    children = await store.runs(parent_run_id=ja.TEAM_RUN_ID)
    assert len(children) == 4
    memory = fold(ja.MEMORY_RUN_ID, await store.read(ja.MEMORY_RUN_ID))
    assert memory.status == RunStatus.RUNNING
    assert memory.step == ja.MEMORY_KILL_AT - 1
    await store.close()


async def test_an_old_file_is_upgraded_to_named_migration_sets(old_db: Path) -> None:
    store = SQLiteStore(old_db)
    await store.close()
    assert _schema(old_db) == (CORE_MIGRATIONS.version,
                               [("core", CORE_MIGRATIONS.version), ("memory", 1)])
    db = apsw.Connection(str(old_db))
    assert applied_version(db, CORE_MIGRATIONS) == CORE_MIGRATIONS.version
    db.close()


async def test_the_run_killed_mid_call_resumes_to_completion(old_db: Path) -> None:
    store = SQLiteStore(old_db)
    before = await store.read(ja.RUN_ID)
    result = await Runner(store).resume(ja.RUN_ID, ja.fixture_agent())
    assert (result.status, result.output) == ("completed", "done: flaky, broken and send")
    after = await store.read(ja.RUN_ID)
    assert after[: len(before)] == before  # the old journal is kept as it was
    new = after[len(before):]
    assert [e.type for e in new][:3] == ["run.resumed", "decision", "tool.result"]
    settled = new[2].data
    assert isinstance(settled, ToolResultPayload)
    assert settled.reconciled is True  # the in-doubt call was settled by its hook
    assert settled.content.startswith("sent (checked by reconcile")
    assert [e.step for e in new if e.type == EventType.MODEL_RESPONSE] == [4]
    ledger = {entry.call_id: entry.status for entry in await store.ledger(ja.RUN_ID)}
    assert ledger == {"call_0_0": "done", "call_1_0": "error", "call_2_0": "done"}
    assert (await store.run(ja.RUN_ID)).status == RunStatus.COMPLETED
    await store.close()


async def test_the_memory_run_resumes_to_completion(old_db: Path) -> None:
    from tests.runtime.memory_agent import agent, memory_store

    mstore = memory_store(old_db)
    store = SQLiteStore(old_db)
    result = await Runner(store).resume(ja.MEMORY_RUN_ID,
                                        agent(ja.MEMORY_STEPS, store=mstore))
    assert (result.status, result.output) == ("completed", "done")
    state = fold(ja.MEMORY_RUN_ID, await store.read(ja.MEMORY_RUN_ID))
    assert state.step == ja.MEMORY_STEPS
    mstore.close()
    await store.close()
    db = apsw.Connection(str(old_db))
    texts = [r[0] for r in db.execute("SELECT text FROM memory_items").fetchall()]
    db.close()
    assert texts == ["fact 10: the code for batch 10 is 130"]  # written before the kill


async def test_a_newer_journal_format_is_read_but_not_resumed(old_db: Path) -> None:
    db = apsw.Connection(str(old_db))
    payload = json.loads(db.execute(
        "SELECT payload FROM events WHERE seq = 1 AND run_key = "
        "(SELECT run_key FROM runs WHERE run_id = ?)", (ja.RUN_ID,)).fetchall()[0][0])
    payload["format"] = JOURNAL_FORMAT + 1
    payload["from_the_future"] = {"kept": True}
    db.execute("UPDATE events SET payload = ? WHERE seq = 1 AND run_key = "
               "(SELECT run_key FROM runs WHERE run_id = ?)", (json.dumps(payload), ja.RUN_ID))
    db.close()
    store = SQLiteStore(old_db)
    events = await store.read(ja.RUN_ID)
    started = events[0].data
    assert isinstance(started, Payload)
    assert started.extra("from_the_future") == {"kept": True}  # unknown fields survive
    assert started.dump()["from_the_future"] == {"kept": True}
    assert fold(ja.RUN_ID, events).format == JOURNAL_FORMAT + 1
    with pytest.raises(SchemaVersionError, match="journal format"):
        await Runner(store).resume(ja.RUN_ID, ja.fixture_agent())
    assert await store.read(ja.RUN_ID) == events  # nothing was written
    await store.close()


async def test_todays_journal_records_its_format_and_round_trips(tmp_path: Path) -> None:
    from tether.core import ToolCall
    from tether.models import ScriptedModel
    from tether.runtime import Agent

    store = SQLiteStore(tmp_path / "new.db")
    agent = Agent(name="fmt", model=ScriptedModel([ToolCall.of("flaky", x=1), "ok"]),
                  tools=[ja.flaky])
    result = await Runner(store).run(agent, "go")
    events = await store.read(result.run_id)
    assert events[0].payload["format"] == JOURNAL_FORMAT
    assert fold(result.run_id, events).format == JOURNAL_FORMAT
    for event in events:
        assert json.dumps(event.data.dump()) == json.dumps(event.payload), event.type
    await store.close()
