"""The run table and the tool ledger as pure functions of the journal.

Every :class:`~tether.store.Store` keeps a row per run and a ledger of tool calls in
the transaction of the events they summarise; what those rows hold is decided here,
once, from events and the previous row, so a SQLite and a Postgres store agree row for
row. A store only writes what these functions return.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from ..core import (
    STATUS_AFTER,
    Event,
    EventType,
    ModelResponsePayload,
    RunStartedPayload,
    RunStatus,
    StoreError,
    ToolErrorPayload,
    ToolIntentPayload,
    ToolResultPayload,
)
from ._protocol import LedgerEntry, RunSummary


def project_run(previous: RunSummary | None, events: Sequence[Event]) -> RunSummary:
    """The run's row after ``events`` (one append: consecutive events of one run).

    Args:
        previous: The row before them; None for a new run, whose first event must be
            ``run.started``.

    Raises:
        StoreError: A new run whose first event is not ``run.started``, or no events.
    """
    if not events:
        raise StoreError("a projection needs at least one event")
    first = events[0]
    row = previous if previous is not None else _new_row(first)
    status = row.status
    steps = 0
    input_tokens = output_tokens = 0
    cost = 0.0
    for e in events:
        if e.type in STATUS_AFTER:
            status = STATUS_AFTER[e.type]
        elif e.type == EventType.MODEL_RESPONSE:
            p = cast(ModelResponsePayload, e.data)
            steps = max(steps, e.step)
            input_tokens += p.usage.get("input_tokens", 0)
            output_tokens += p.usage.get("output_tokens", 0)
            cost += p.cost_usd or 0.0
    # Findings (the doctor's, appended after the run) are not the run's activity. The
    # latest activity never goes back (an event may be made before the last commit).
    active = [row.updated_at, *(e.ts for e in events if e.type != EventType.FINDING)]
    return dataclasses.replace(
        row,
        status=status,
        last_seq=events[-1].seq,
        updated_at=max(active),
        steps=max(row.steps, steps),
        input_tokens=row.input_tokens + input_tokens,
        output_tokens=row.output_tokens + output_tokens,
        cost_usd=row.cost_usd + cost,
    )


def _new_row(first: Event) -> RunSummary:
    if first.type != EventType.RUN_STARTED:
        raise StoreError(
            f"run {first.run_id} does not exist; its first event must be run.started",
            run_id=first.run_id,
        )
    p = cast(RunStartedPayload, first.data)
    return RunSummary(run_id=first.run_id, agent=p.agent, status=RunStatus.RUNNING,
                      task=p.task or "", created_at=first.ts, updated_at=first.ts, steps=0,
                      last_seq=0, parent_run_id=p.parent_run_id)


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerOutcome:
    """A tool call's outcome, for the ledger entry of its intent."""

    call_id: str
    #: ``"done"`` (``tool.result``) or ``"error"`` (``tool.error``).
    status: str
    result_seq: int


def project_ledger(events: Sequence[Event]) -> list[LedgerEntry | LedgerOutcome]:
    """The tool ledger's changes for ``events``, in order: a new entry per
    ``tool.intent``, an outcome per ``tool.result``/``tool.error`` (a call the model
    got wrong has an outcome and no intent: its outcome changes no entry)."""
    changes: list[LedgerEntry | LedgerOutcome] = []
    for e in events:
        if e.type == EventType.TOOL_INTENT:
            p = cast(ToolIntentPayload, e.data)
            changes.append(LedgerEntry(run_id=e.run_id, call_id=p.call_id, tool=p.tool,
                                       step=e.step, idempotency_key=p.idempotency_key,
                                       status="intent", intent_seq=e.seq))
        elif e.type in (EventType.TOOL_RESULT, EventType.TOOL_ERROR):
            q = cast(ToolResultPayload | ToolErrorPayload, e.data)
            changes.append(LedgerOutcome(
                call_id=q.call_id, result_seq=e.seq,
                status="done" if e.type == EventType.TOOL_RESULT else "error"))
    return changes
