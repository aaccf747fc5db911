"""The Store protocol: the only way anything above ``store`` reads or writes the journal.

A Postgres implementation must fit this protocol unchanged, so it speaks in
events and summaries, never in SQL, files or connections.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

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
    #: The thread the run continues (``run.started``), if any.
    thread: str | None = None


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """The right to drive one run, held by one process until it expires or is released.

    Every acquisition of a run's lease increments its ``token``; an append fenced by
    a lease commits only while the run's lease still has that token, so a process that
    lost the run (it stalled past its expiry and another took over) cannot write to it.
    Times are the store's wall clock (``time.time()`` on the machine that commits).
    """

    run_id: str
    #: Who drives the run, e.g. ``"host:pid:random"``.
    owner: str
    #: Increases by one at every acquisition of this run's lease (the fencing token).
    token: int
    #: Each fenced append, and each renewal, extends the expiry to now + ``ttl_s``.
    ttl_s: float
    #: Wall-clock seconds when the lease expires, as of its acquisition (or, read back
    #: with :meth:`Store.lease`, as of its last extension; 0 once released).
    expires_at: float


class Rows(Protocol):
    """What a statement run in a :class:`Transaction` gives back."""

    def fetchall(self) -> list[Any]:
        """All the rows the statement returned."""
        ...


class Transaction(Protocol):
    """A store's open write transaction, as work done inside an append sees it (the
    unit of work): statements on the store's own tables, committed with the append's
    events or rolled back with them. SQLite's is its connection; a Postgres store's
    would be its transaction's cursor."""

    def execute(self, sql: str, bindings: Any = ..., /) -> Rows:
        """Run one statement (SQL in the store's dialect) with its parameters."""
        ...


#: Work done inside an append's transaction (the unit of work): given the open
#: :class:`Transaction`, it writes rows of its own (a memory's) and returns further
#: events of the run to commit with the appended ones: all of it commits, or none.
Within = Callable[[Transaction], Sequence[Event]]


@runtime_checkable
class Store(Protocol):
    """Durable, append-only storage of runs."""

    async def acquire(
        self, events: Sequence[Event], *, owner: str, ttl_s: float, takeover: str | None = None
    ) -> Lease:
        """Commit ``events`` and take the run's lease, in one transaction.

        ``takeover`` names an owner the caller knows to be dead (a process of this host
        that no longer exists): its lease is taken over without waiting for it to lapse.

        ``events`` start or resume driving the run: ``run.started`` of a new run,
        ``run.resumed``, or a resolve's batch. An expired lease (its owner died or
        stalled) is taken over with ``token + 1``; so is one ``owner`` holds already.

        Raises:
            RunLeasedError: Another owner holds an unexpired lease; nothing is written.
            ConcurrentWriteError: ``seq`` does not follow the run's last one.
        """
        ...

    async def append(
        self, events: Sequence[Event], *, lease: Lease | None = None,
        within: Within | None = None,
    ) -> None:
        """Commit ``events`` (all of one run, consecutive ``seq``) atomically.

        ``within`` is a unit of work done in the same transaction: called with the open
        :class:`Transaction` after the lease is checked and before ``events`` are
        written, it may write rows of its own and returns further events of the run,
        numbered to follow ``events``, committed with them. If it raises, or the append
        fails after it, its rows and the events are rolled back together. It may be
        called again if the transaction is retried, so it must not keep state of its
        own between calls. With no ``events``, ``lease`` names the run.

        The first event's ``seq`` must follow the run's last committed one; otherwise
        another writer got there first and ``ConcurrentWriteError`` is raised with
        nothing written. With ``lease``, the same transaction checks the run's lease
        still has its token (else ``LeaseLostError``, nothing written) and extends its
        expiry to now + ``lease.ttl_s``. Without one, a run whose lease is live
        refuses the append with ``RunLeasedError``; a run that never had a lease
        (journals written before leases) appends as before.
        """
        ...

    async def renew(self, lease: Lease) -> None:
        """Extend the lease to now + ``ttl_s`` (a heartbeat between appends).

        Raises:
            LeaseLostError: The run's lease has another token now.
        """
        ...

    async def release(self, lease: Lease) -> None:
        """End the lease now if its token still holds; do nothing otherwise."""
        ...

    async def lease(self, run_id: str) -> Lease | None:
        """The run's lease as stored (live, expired or released), or None if it never
        had one."""
        ...

    async def read(self, run_id: str, *, after_seq: int = 0) -> list[Event]:
        """The run's events with ``seq > after_seq``, in order, payloads complete.

        Raises ``RunNotFoundError`` for an unknown run.
        """
        ...

    async def run(self, run_id: str) -> RunSummary:
        """One run's summary; ``RunNotFoundError`` if there is none."""
        ...

    async def match_run_ids(self, prefix: str, *, limit: int = 6) -> list[str]:
        """Run ids that start with ``prefix`` (at most ``limit``), in order."""
        ...

    async def runs(
        self,
        *,
        status: RunStatus | None = None,
        agent: str | None = None,
        since: float | None = None,
        parent_run_id: str | None = None,
        thread: str | None = None,
        limit: int = 50,
    ) -> list[RunSummary]:
        """Runs, newest first, filtered (``thread``: the runs continuing that thread)."""
        ...

    async def ledger(self, run_id: str) -> list[LedgerEntry]:
        """The run's tool calls in intent order."""
        ...

    async def close(self) -> None:
        """Release the store's connections and files; it cannot be used afterwards.
        Closing releases no lease: release them first, or they lapse after ``ttl_s``."""
        ...
