"""The run table and the tool ledger are pure functions of the journal."""

from __future__ import annotations

import dataclasses
import random
import shutil
from functools import reduce
from pathlib import Path

import pytest

from tether.core import Event, EventType, RunStatus, StoreError
from tether.store import (
    LedgerEntry,
    LedgerOutcome,
    RunSummary,
    SQLiteStore,
    project_ledger,
    project_run,
)

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "journal_format1.db"


def ev(seq: int, kind: str, payload: dict[str, object], *, step: int = 0,
       ts: float | None = None) -> Event:
    return Event(run_id="r", seq=seq, type=kind, step=step,
                 ts=1000.0 + seq if ts is None else ts, payload=payload)


START = ev(1, EventType.RUN_STARTED, {"agent": "a", "task": "t", "parent_run_id": "p"})


def test_a_new_run_starts_its_row() -> None:
    row = project_run(None, [START])
    assert row == RunSummary(run_id="r", agent="a", status=RunStatus.RUNNING, task="t",
                             created_at=1001.0, updated_at=1001.0, steps=0, last_seq=1,
                             parent_run_id="p")
    with pytest.raises(StoreError, match="first event must be run.started"):
        project_run(None, [ev(1, EventType.DECISION, {"decision": "x"})])
    with pytest.raises(StoreError, match="at least one event"):
        project_run(row, [])


def test_usage_steps_status_and_activity() -> None:
    row = project_run(None, [START])
    batch = [
        ev(2, EventType.MODEL_RESPONSE, {"message": {"role": "assistant"},
                                         "usage": {"input_tokens": 10, "output_tokens": 3},
                                         "cost_usd": 0.25}, step=1),
        ev(3, EventType.MODEL_RESPONSE, {"message": {"role": "assistant"}, "usage": {},
                                         "cost_usd": 0}, step=2),
        ev(4, EventType.RUN_FAILED, {"reason": "model_error"}, step=2),
    ]
    row = project_run(row, batch)
    assert (row.steps, row.input_tokens, row.output_tokens, row.cost_usd) == (2, 10, 3, 0.25)
    assert (row.status, row.last_seq, row.updated_at) == (RunStatus.FAILED, 4, 1004.0)
    # A finding appended later is not the run's activity; an event made before the
    # last commit does not take the activity back; a lower step does not lower steps.
    later = project_run(row, [ev(5, EventType.FINDING, {"kind": "k"}, ts=9999.0),
                              ev(6, EventType.MODEL_RESPONSE, {"message": {}}, step=1,
                                 ts=1.0)])
    assert (later.updated_at, later.steps, later.last_seq) == (1004.0, 2, 6)
    assert project_run(row, [ev(5, EventType.DECISION, {"decision": "d"}, ts=2000.0)]
                       ).updated_at == 2000.0
    only_finding = project_run(row, [ev(5, EventType.FINDING, {"kind": "k"}, ts=9999.0)])
    assert only_finding.updated_at == row.updated_at
    assert row.status == RunStatus.FAILED  # the previous row is not changed
    assert project_run(row, [ev(5, EventType.RUN_RESUMED, {"from_status": "failed"})]
                       ).status == RunStatus.RUNNING


def test_the_ledger_changes() -> None:
    changes = project_ledger([
        ev(2, EventType.TOOL_INTENT, {"call_id": "c", "tool": "t", "arguments": {},
                                      "idempotency_key": "k", "index": 0}, step=1),
        ev(3, EventType.TOOL_ERROR, {"call_id": "bad", "tool": "x", "content": "no"}),
        ev(4, EventType.TOOL_RESULT, {"call_id": "c", "tool": "t", "content": "ok"}),
    ])
    assert changes == [
        LedgerEntry(run_id="r", call_id="c", tool="t", step=1, idempotency_key="k",
                    status="intent", intent_seq=2),
        LedgerOutcome(call_id="bad", status="error", result_seq=3),
        LedgerOutcome(call_id="c", status="done", result_seq=4),
    ]


async def test_the_store_holds_what_the_projection_says(tmp_path: Path) -> None:
    """For every run of a real journal, folding ``project_run`` over the events in any
    batching gives the row the SQLite store kept; the ledger likewise."""
    copy = tmp_path / "j.db"
    shutil.copyfile(FIXTURE, copy)
    store = SQLiteStore(copy, readonly=True)
    rng = random.Random(7)
    runs = await store.runs(limit=100)
    assert len(runs) == 7
    for stored in runs:
        events = await store.read(stored.run_id)
        one_by_one = reduce(lambda row, e: project_run(row, [e]), events[1:],
                            project_run(None, events[:1]))
        # Written by the previous code, which took a batch's latest event time even
        # when an earlier commit had a later one; equal but for that.
        assert one_by_one == dataclasses.replace(
            stored, updated_at=max(stored.updated_at, one_by_one.updated_at))
        stored = one_by_one
        cuts = sorted(rng.sample(range(1, len(events)), min(3, len(events) - 1)))
        batches = [events[a:b] for a, b in zip([0, *cuts], [*cuts, len(events)],
                                               strict=True)]
        row = None
        for batch in batches:
            row = project_run(row, batch)
        assert row == stored
        entries: dict[str, LedgerEntry] = {}
        for change in project_ledger(events):
            if isinstance(change, LedgerEntry):
                entries[change.call_id] = change
            elif change.call_id in entries:
                old = entries[change.call_id]
                entries[change.call_id] = LedgerEntry(
                    run_id=old.run_id, call_id=old.call_id, tool=old.tool, step=old.step,
                    idempotency_key=old.idempotency_key, status=change.status,
                    intent_seq=old.intent_seq, result_seq=change.result_seq)
        assert list(entries.values()) == await store.ledger(stored.run_id)
    await store.close()
