"""The Store protocol: the only way anything above ``store`` reads or writes the journal.

A Postgres implementation must fit this protocol unchanged, so it speaks in
events and summaries, never in SQL, files or connections.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..core import Event, RunStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """A run's row in the run table: a projection of its journal, kept in the same
    transaction as the events it summarises."""

    run_id: str
    agent: str
    status: RunStatus
    task: str
    created_at: float
    updated_at: float
    steps: int
    last_seq: int
    parent_run_id: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """One tool call as the tool ledger knows it: intent only, or intent and outcome."""

    run_id: str
    call_id: str
    tool: str
    step: int
    idempotency_key: str
    status: str  # "intent", "done" or "error"
    intent_seq: int
    result_seq: int | None = None


@runtime_checkable
class Store(Protocol):
    """Durable, append-only storage of runs."""

    async def append(self, events: Sequence[Event]) -> None:
        """Commit ``events`` (all of one run, consecutive ``seq``) atomically.

        The first event's ``seq`` must follow the run's last committed one; otherwise
        another writer got there first and ``ConcurrentWriteError`` is raised with
        nothing written.
        """
        ...

    async def read(self, run_id: str, *, after_seq: int = 0) -> list[Event]:
        """The run's events with ``seq > after_seq``, in order, payloads complete.

        Raises ``RunNotFoundError`` for an unknown run.
        """
        ...

    async def run(self, run_id: str) -> RunSummary:
        """One run's summary; ``RunNotFoundError`` if there is none."""
        ...

    async def runs(
        self,
        *,
        status: RunStatus | None = None,
        agent: str | None = None,
        since: float | None = None,
        parent_run_id: str | None = None,
        limit: int = 50,
    ) -> list[RunSummary]:
        """Runs, newest first, filtered."""
        ...

    async def ledger(self, run_id: str) -> list[LedgerEntry]:
        """The run's tool calls in intent order."""
        ...

    async def close(self) -> None: ...
