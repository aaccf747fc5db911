"""Rows of the journal: events, blobs, and the run-table and tool-ledger projections
(decided by ``_projection.py``, written here)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import apsw

from ..core import Event, RunStatus
from ._blobs import externalize
from ._projection import project_ledger, project_run
from ._protocol import LedgerEntry, RunSummary

RUN_COLUMNS = (
    "run_id, agent, status, task, created_at, updated_at, steps, last_seq, parent_run_id, "
    "input_tokens, output_tokens, cost_usd"
)
#: The run table's columns on a schema with threads (``summary`` reads either).
RUN_COLUMNS_THREAD = RUN_COLUMNS + ", thread"


def dumps(value: Any) -> str:
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:  # lone surrogates: keep them as JSON escapes
            text = json.dumps(value, separators=(",", ":"))
    return text


def summary(row: Sequence[Any]) -> RunSummary:
    return RunSummary(
        run_id=row[0],
        agent=row[1],
        status=RunStatus(row[2]),
        task=row[3],
        created_at=row[4],
        updated_at=row[5],
        steps=row[6],
        last_seq=row[7],
        parent_run_id=row[8],
        input_tokens=row[9],
        output_tokens=row[10],
        cost_usd=row[11],
        thread=row[12] if len(row) > 12 else None,
    )


def insert_events(
    db: apsw.Connection, run_key: int | None, previous: RunSummary | None,
    events: Sequence[Event],
) -> int:
    """Write ``events`` (already checked to follow the run's last one) and their
    projections (``project_run``, ``project_ledger``); return the run's key (new for
    ``run.started``). ``previous`` is the run's row (None for a new run)."""
    row = project_run(previous, events)
    if run_key is None:
        db.execute(
            f"INSERT INTO runs({RUN_COLUMNS_THREAD}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (row.run_id, row.agent, row.status, row.task, row.created_at, row.updated_at,
             row.steps, row.last_seq, row.parent_run_id, row.input_tokens,
             row.output_tokens, row.cost_usd, row.thread),
        )
        run_key = db.last_insert_rowid()
    else:
        db.execute(
            "UPDATE runs SET status = ?, updated_at = ?, steps = ?, last_seq = ?, "
            "input_tokens = ?, output_tokens = ?, cost_usd = ? WHERE run_key = ?",
            (row.status, row.updated_at, row.steps, row.last_seq, row.input_tokens,
             row.output_tokens, row.cost_usd, run_key),
        )
    blobs: dict[str, bytes] = {}
    rows = []
    for e in events:
        payload = dumps(externalize(e.payload, blobs))
        rows.append((run_key, e.seq, e.type, e.step, e.ts, e.span_id, e.parent_span_id,
                     e.duration_ms, payload))
    if blobs:
        db.executemany(
            "INSERT OR IGNORE INTO blobs(hash, data) VALUES (?, ?)",
            [(bytes.fromhex(key), data) for key, data in blobs.items()],
        )
    db.executemany("INSERT INTO events VALUES (?,?,?,?,?,?,?,?,?)", rows)
    for change in project_ledger(events):
        if isinstance(change, LedgerEntry):
            db.execute(
                "INSERT INTO tool_ledger VALUES (?,?,?,?,?,'intent',?,NULL)",
                (run_key, change.call_id, change.tool, change.step, change.idempotency_key,
                 change.intent_seq),
            )
        else:
            db.execute(
                "UPDATE tool_ledger SET status = ?, result_seq = ? "
                "WHERE run_key = ? AND call_id = ?",
                (change.status, change.result_seq, run_key, change.call_id),
            )
    return run_key
