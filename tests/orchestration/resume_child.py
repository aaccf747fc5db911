"""Resumes one child run of the scripted team directly, as ``tether resume CHILD`` does
(``python resume_child.py DB CHILD_ID``); its model answers after ``TEAM_LATENCY_S``."""

from __future__ import annotations

import asyncio
import sys

from tests.orchestration.team import _sub
from tether.models import FunctionModel
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore


async def _main(db: str, child_id: str) -> None:
    store = SQLiteStore(db)
    try:
        searcher = Agent(name="searcher", instructions="Search.",
                         model=FunctionModel(_sub), budget=Budget(max_steps=3),
                         max_recoveries=10)
        result = await Runner(store).resume(child_id, searcher)
        print(result.status)
        print(result.output)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
