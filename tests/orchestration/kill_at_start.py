"""Drives the scripted team of ``team.py`` on a store that SIGKILLs this process right
after the commit holding its ``N``-th ``subrun.started``, before the child it announces
writes anything: ``python kill_at_start.py DB RUN_ID N`` (N=0: never kill).
It prints the status and the answer, as ``team.py`` does."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from tests.orchestration.team import team
from tether.core import Event, EventType, RunNotFoundError
from tether.runtime import Runner
from tether.store import Lease, SQLiteStore


class KillAfterStart(SQLiteStore):
    """SIGKILLs the process right after the commit holding the ``n``-th
    ``subrun.started`` (counted over this process's commits)."""

    def __init__(self, path: str, n: int) -> None:
        super().__init__(path)
        self.n = n
        self.seen = 0

    def _check(self, events: Sequence[Event]) -> None:
        self.seen += sum(1 for e in events if e.type == EventType.SUBRUN_STARTED)
        if self.n and self.seen >= self.n:
            os.kill(os.getpid(), signal.SIGKILL)

    async def append(self, events: Sequence[Event], **kwargs: Any) -> None:
        await super().append(events, **kwargs)
        self._check(events)

    async def acquire(self, events: Sequence[Event], **kwargs: Any) -> Lease:
        lease = await super().acquire(events, **kwargs)
        self._check(events)
        return lease


async def _main(db: str, run_id: str, n: int) -> None:
    store = KillAfterStart(db, n)
    try:
        runner = Runner(store)
        agent = team(concurrency=int(os.environ.get("TEAM_CONCURRENCY", "4")))
        try:
            await store.read(run_id)
            started = True
        except RunNotFoundError:
            started = False
        result = await (runner.resume(run_id, agent) if started else
                        runner.run(agent, "Research alpha, beta, gamma", run_id=run_id))
        print(result.status)
        print(result.output)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
