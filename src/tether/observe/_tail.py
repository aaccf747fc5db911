"""Follow a run that another process is executing, by polling its journal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from ..core import STATUS_AFTER, Event, RunNotFoundError, RunStatus
from ..store import Store
from ._load import read_events
from ._spans import TERMINAL_STATUSES


async def follow(
    store: Store,
    run_id: str,
    *,
    poll_s: float = 0.25,
    wait_s: float = 10.0,
    timeout_s: float | None = None,
    after_seq: int = 0,
) -> AsyncIterator[Event]:
    """Yield a run's events as they are committed, until the run stops.

    It stops after the events that leave the run in a terminal status (completed,
    failed, needs_attention, quarantined, paused) once nothing more is committed.

    Args:
        store: The store the run journals to (another process may be driving it).
        run_id: The run to follow.
        poll_s: Seconds between reads of the journal.
        wait_s: How long to wait for a run that does not exist yet (its process may
            not have started it); then ``RunNotFoundError``.
        timeout_s: Give up (``TimeoutError``) after this many seconds; ``None``: never.
            A run whose process died without a final event never stops on its own.
        after_seq: Start after this event (0: from the beginning).
    """
    started = time.monotonic()
    last = after_seq
    status: RunStatus | None = None
    seen_run = after_seq > 0
    while True:
        try:
            events = await read_events(store, run_id, after_seq=last)
            seen_run = True
        except RunNotFoundError:
            if seen_run or time.monotonic() - started > wait_s:
                raise
            events = []
        for event in events:
            last = event.seq
            if event.type in STATUS_AFTER:
                status = STATUS_AFTER[event.type]
            yield event
        if not events and status in TERMINAL_STATUSES:
            return
        if status is None and seen_run and last > 0 and not events:
            # Started tailing mid-run: learn the status from the run table.
            status = (await store.run(run_id)).status
            if status in TERMINAL_STATUSES:
                return
        if timeout_s is not None and time.monotonic() - started > timeout_s:
            raise TimeoutError(f"run {run_id} did not stop within {timeout_s} s")
        if not events:
            await asyncio.sleep(poll_s)
