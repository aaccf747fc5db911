"""The run table and the tool ledger as pure functions of the journal.

Every :class:`~tether.store.Store` keeps a row per run and a ledger of tool calls in
the transaction of the events they summarise; what those rows hold is decided here,
once, from events and the previous row, so a SQLite and a Postgres store agree row for
row. A store only writes what these functions return.
"""

from __future__ import annotations

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

_FINDING = EventType.FINDING
_RESPONSE = EventType.MODEL_RESPONSE
_INTENT = EventType.TOOL_INTENT
_OUTCOMES: dict[str, str] = {EventType.TOOL_RESULT: "done", EventType.TOOL_ERROR: "error"}


def project_run(previous: RunSummary | None, events: Sequence[Event]) -> RunSummary:
    """The run's row after ``events`` (one append: consecutive events of one run).

    Args:
        previous: The row before them; None for a new run, whose first event must be
            ``run.started``.
        events: What one append commits, in ``seq`` order.

    Raises:
        StoreError: A new run whose first event is not ``run.started``, or no events.
    """
    if not events:
        raise StoreError("a projection needs at least one event")
    row = previous if previous is not None else _new_row(events[0])
    status = row.status
    steps = row.steps
    input_tokens = output_tokens = 0
    cost = 0.0
    # Findings (the doctor's, appended after the run) are not the run's activity. The
    # latest activity never goes back (an event may be made before the last commit).
    updated_at = row.updated_at
    for e in events:
        kind = e.type
        if kind != _FINDING and e.ts > updated_at:
            updated_at = e.ts
        if kind in STATUS_AFTER:
            status = STATUS_AFTER[kind]
        elif kind == _RESPONSE:
            p = cast(ModelResponsePayload, e.data)
            if e.step > steps:
                steps = e.step
            input_tokens += p.usage.get("input_tokens", 0)
            output_tokens += p.usage.get("output_tokens", 0)
            cost += p.cost_usd or 0.0
    return RunSummary(
        run_id=row.run_id, agent=row.agent, status=status, task=row.task,
        created_at=row.created_at, updated_at=updated_at, steps=steps,
        last_seq=events[-1].seq, parent_run_id=row.parent_run_id,
        input_tokens=row.input_tokens + input_tokens,
        output_tokens=row.output_tokens + output_tokens,
        cost_usd=row.cost_usd + cost, thread=row.thread,
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
                      last_seq=0, parent_run_id=p.parent_run_id,
                      thread=(p.thread_key if isinstance(p.thread_key, str)
                              else p.thread if isinstance(p.thread, str) else None))


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
        kind = e.type
        if kind == _INTENT:
            p = cast(ToolIntentPayload, e.data)
            changes.append(LedgerEntry(run_id=e.run_id, call_id=p.call_id, tool=p.tool,
                                       step=e.step, idempotency_key=p.idempotency_key,
                                       status="intent", intent_seq=e.seq))
        elif kind in _OUTCOMES:
            q = cast(ToolResultPayload | ToolErrorPayload, e.data)
            changes.append(LedgerOutcome(call_id=q.call_id, status=_OUTCOMES[kind],
                                         result_seq=e.seq))
    return changes
