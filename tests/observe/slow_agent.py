"""Runs a slow scripted agent in its own process, for the ``tether tail`` tests.

Usage: python slow_agent.py DB RUN_ID STEPS DELAY_S [--fail]
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

from tether.core import ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore
from tether.tools import tool


@tool(inline=True)
def lookup(i: int) -> str:
    """Look a record up."""
    return f"record {i}"


async def main(db: str, run_id: str, steps: int, delay: float, fail: bool) -> None:
    async def script(request: ModelRequest) -> Any:
        await asyncio.sleep(delay)
        if request.step <= steps:
            return ToolCall.of("lookup", i=request.step)
        return f"looked up {steps} records"

    budget = Budget(max_steps=steps - 1 if fail else steps + 1)
    agent = Agent(name="slow", model=FunctionModel(script), tools=[lookup], budget=budget)
    store = SQLiteStore(db)
    try:
        await Runner(store).run(agent, "look slowly", run_id=run_id)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]),
                     "--fail" in sys.argv))
