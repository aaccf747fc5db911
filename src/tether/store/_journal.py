"""Rows of the journal: events, blobs, and the run-table and tool-ledger projections."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import apsw

from ..core import STATUS_AFTER, Event, EventType, RunStatus, StoreError
from ._blobs import externalize
from ._protocol import RunSummary

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


def insert_events(db: apsw.Connection, run_key: int | None, events: Sequence[Event]) -> int:
    """Write ``events`` (already checked to follow the run's last one) and their
    projections; return the run's key (new for ``run.started``)."""
    if run_key is None:
        run_key = _insert_run(db, events[0])
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
    _project(db, run_key, events)
    return run_key


def _insert_run(db: apsw.Connection, first: Event) -> int:
    if first.type != EventType.RUN_STARTED:
        raise StoreError(
            f"run {first.run_id} does not exist; its first event must be run.started",
            run_id=first.run_id,
        )
    p = first.payload
    thread = p.get("thread")
    db.execute(
        "INSERT INTO runs(run_id, agent, parent_run_id, status, task, created_at, "
        "updated_at, last_seq, thread) VALUES (?,?,?,?,?,?,?,0,?)",
        (first.run_id, p["agent"], p.get("parent_run_id"), RunStatus.RUNNING,
         p.get("task", ""), first.ts, first.ts, thread if isinstance(thread, str) else None),
    )
    return db.last_insert_rowid()


def _project(db: apsw.Connection, run_key: int, events: Sequence[Event]) -> None:
    """Keep the run table and the tool ledger in step with the journal."""
    status: str | None = None
    steps = 0
    input_tokens = output_tokens = 0
    cost = 0.0
    for e in events:
        p = e.payload
        if e.type in STATUS_AFTER:
            status = STATUS_AFTER[e.type]
        elif e.type == EventType.MODEL_RESPONSE:
            steps = max(steps, e.step)
            usage = p.get("usage") or {}
            input_tokens += usage.get("input_tokens", 0)
            output_tokens += usage.get("output_tokens", 0)
            cost += p.get("cost_usd") or 0.0
        elif e.type == EventType.TOOL_INTENT:
            db.execute(
                "INSERT INTO tool_ledger VALUES (?,?,?,?,?,'intent',?,NULL)",
                (run_key, p["call_id"], p["tool"], e.step, p["idempotency_key"], e.seq),
            )
        elif e.type in (EventType.TOOL_RESULT, EventType.TOOL_ERROR):
            db.execute(
                "UPDATE tool_ledger SET status = ?, result_seq = ? "
                "WHERE run_key = ? AND call_id = ?",
                ("done" if e.type == EventType.TOOL_RESULT else "error", e.seq, run_key,
                 p["call_id"]),
            )
    # Findings (the doctor's, appended after the run) are not the run's activity.
    active = [e.ts for e in events if e.type != EventType.FINDING]
    db.execute(
        "UPDATE runs SET last_seq = ?, updated_at = coalesce(?, updated_at), "
        "status = coalesce(?, status), steps = max(steps, ?), "
        "input_tokens = input_tokens + ?, output_tokens = output_tokens + ?, "
        "cost_usd = cost_usd + ? WHERE run_key = ?",
        (events[-1].seq, max(active, default=None), status, steps, input_tokens,
         output_tokens, cost, run_key),
    )
