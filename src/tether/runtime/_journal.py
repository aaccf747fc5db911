"""A run's journal writer: numbers, seals, commits and folds its events.

Everything a run writes goes through :meth:`Journal.commit`. The ``Execution`` that
drives a run holds one; so do the Runner's one-off writers (``resolve``, a sealed
run's stop). It implements the call path's :class:`~._call.Journaling`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

from ..core import ConfigurationError, Event, EventType, UsageError, visible
from ..store import Lease, SQLiteStore
from ._call import Host
from ._state import RunState


class Journal:
    """Appends a run's events: numbers them, seals them, commits them, folds them into
    the state, and hands them to the observers. Everything a run writes goes through
    :meth:`commit`."""

    def __init__(self, runner: Host, state: RunState) -> None:
        self.runner = runner
        self.state = state
        self.lock = asyncio.Lock()
        #: The run's lease, taken by the first commit; every later commit is fenced by it.
        self.lease: Lease | None = None

    def event(
        self, kind: EventType, step: int, payload: dict[str, Any], *,
        span: str | None = None, duration_ms: float | None = None,
    ) -> Event:
        """An event to commit; ``seq`` is assigned by :meth:`commit`."""
        parent = None if span is None else (f"s{step}" if "." in span else "run")
        return Event(run_id=self.state.run_id, seq=0, type=kind, step=step,
                     ts=self.runner.clock.now(), payload=payload, span_id=span,
                     parent_span_id=parent, duration_ms=duration_ms)

    async def commit(self, events: list[Event], *, within: Within | None = None) -> None:
        """Append ``events`` in one transaction (redacted, originals sealed), then fold
        the originals into the state; observers get what the journal shows.

        ``within`` (a SQLite store only) runs inside that transaction with its
        connection and the ``seq`` that follows ``events``; the events it returns
        (a ``memory.write`` for the rows it wrote) are numbered, sealed and committed
        with them.

        The first commit takes the run's lease (``RunLeasedError`` if another live
        process drives the run); every later one is fenced by it (``LeaseLostError``
        once another process took the run over: nothing is written)."""
        seal = self.runner.sealer.seal
        async with self.lock:
            first = self.state.seq + 1
            numbered = _numbered(events, first)
            stored = [seal(e) for e in numbered]
            extra: list[Event] = []
            if within is not None:
                if self.lease is None:
                    raise UsageError("a commit with work inside it needs the run's lease",
                                     hint="commit run.started first")

                def hook(db: Any) -> list[Event]:
                    extra[:] = _numbered(within(db, first + len(events)),
                                         first + len(events))
                    return [seal(e) for e in extra]

                store = self.runner.store
                if not isinstance(store, SQLiteStore):
                    raise ConfigurationError(
                        "memory writes need a SQLite store (they commit with their events)",
                        hint="run agents with memory on the default SQLiteStore")
                await store.append(stored, lease=self.lease, within=hook)
            elif self.lease is None:
                self.lease = await self.runner.take_lease(stored)
            else:
                await self.runner.store.append(stored, lease=self.lease)
            for e in [*numbered, *extra]:
                self.state.apply(e)
        if self.runner.stream.subscribed:
            shown = [*stored, *(seal(e) for e in extra)]
            self.runner.notify([visible(e) for e in shown])


def _numbered(events: Sequence[Event], first: int) -> list[Event]:
    return [
        Event(run_id=e.run_id, seq=first + i, type=e.type, step=e.step, ts=e.ts,
              payload=e.payload, span_id=e.span_id, parent_span_id=e.parent_span_id,
              duration_ms=e.duration_ms)
        for i, e in enumerate(events)
    ]


#: Work inside a commit's transaction: gets the connection and the next free ``seq``,
#: returns the events to commit with the rows it wrote.
Within = Callable[[Any, int], list[Event]]
