"""Helpers for the working-memory tests: an agent whose step 1 runs two concurrent
calls on one working memory, and a child process that drives it and can be SIGKILLed.

Step 1 calls ``collect`` (a sync tool, in a thread: puts an order, the customer's name
with a secret in it, hostile keys; promotes the customer) and ``inspect`` (async: waits
until ``collect``'s outcome is committed, then logs what its working memory shows to
LOG as one JSON line). Step 2 calls ``inspect`` alone (a new step: no entries), step 3
recalls the promoted fact, step 4 answers.

Run as a script (``python tests/runtime/working_agent.py DB RUN_ID LOG``), with
``--resume`` to resume; ``--kill-in-inspect`` SIGKILLs the process inside step 1's
``inspect`` (after it logged, before its outcome commits), once (a marker file next to
LOG); ``--kill-at N`` when the model is asked for step N; ``--kill-in-write N`` inside
the N-th memory write's transaction.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

if __name__ == "__main__":  # run as a script: the repository root is importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.runtime.memory_agent import kill_in_write, memory_store  # noqa: E402
from tether.core import Message, ToolCall  # noqa: E402
from tether.memory import EstimateTokenCounter, SQLiteMemoryStore  # noqa: E402
from tether.models import FunctionModel, ModelRequest  # noqa: E402
from tether.runtime import Agent, Budget, MemoryConfig, Runner  # noqa: E402
from tether.store import SQLiteStore  # noqa: E402
from tether.tools import Tool, ToolContext, tool  # noqa: E402

SECRET = "sk-proj-" + "Wm4Kx8Pq2Lr7Tz9Nc3Vb" * 2
CUSTOMER = f"Customer Ada Lovelace pays with deploy key {SECRET}"
#: Keys a careless or hostile tool may use: all legal, all must round-trip.
HOSTILE_KEYS = ["'; DROP TABLE events;--", "nul\x00byte", "ключ🔑", "line\nbreak",
                '{"op": "promote", "key": "order"}', "step_end", " "]


def make_tools(log: Path, kill_in_inspect: bool) -> list[Tool]:
    @tool(idempotent=True)
    def collect(order: int, ctx: ToolContext) -> str:
        """Collect an order into working memory.

        Args:
            order: The order's number.
        """
        working = ctx.working
        assert working is not None
        working.put("order", {"id": order, "total": "12.50", "lines": [1, 2, 3]})
        working.put("customer", CUSTOMER)
        for i, key in enumerate(HOSTILE_KEYS):
            working.put(key, {"i": i, "text": key})
        working.promote("customer", as_key="customer")
        return f"order {order} collected"

    @tool(idempotent=True)
    async def inspect(ctx: ToolContext) -> str:
        """Report what the step's working memory holds."""
        working = ctx.working
        assert working is not None
        if working.step == 1:  # wait for collect's outcome to be committed
            for _ in range(2000):
                if any(c["tool"] == "collect" and c["call_id"] in working.outputs()
                       for c in working.calls):
                    break
                await asyncio.sleep(0.005)
        seen = {"step": working.step, "items": working.items(),
                "outputs": working.outputs(), "calls": [dict(c) for c in working.calls],
                "message": working.message}
        with log.open("a") as f:
            f.write(json.dumps({"call_id": ctx.call_id, "seen": seen}) + "\n")
            f.flush()
            os.fsync(f.fileno())
        marker = log.with_suffix(".killed")
        if kill_in_inspect and working.step == 1 and not marker.exists():
            marker.write_text("1")
            os.kill(os.getpid(), signal.SIGKILL)
        return json.dumps(sorted(seen["items"]))

    return [collect, inspect]


def answer(request: ModelRequest) -> Message:
    if request.step == 1:
        return Message.assistant("Collecting order 7.", (
            ToolCall.of("collect", order=7), ToolCall.of("inspect")))
    if request.step == 2:
        return Message.assistant(None, (ToolCall.of("inspect"),))
    if request.step == 3:
        return Message.assistant(None, (ToolCall.of("recall", query="customer Ada Lovelace"),))
    return Message.assistant("done")


def agent(log: Path, mstore: SQLiteMemoryStore, *, kill_in_inspect: bool = False,
          kill_at: int | None = None) -> Agent:
    def model(request: ModelRequest) -> Message:
        if kill_at is not None and request.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return answer(request)

    return Agent(name="clerk", instructions="Process orders.", model=FunctionModel(model),
                 tools=make_tools(log, kill_in_inspect), budget=Budget(max_steps=10),
                 memory=MemoryConfig(budget=4000, store=mstore,
                                     counter=EstimateTokenCounter()))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("run_id")
    parser.add_argument("log")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-in-inspect", action="store_true")
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--kill-in-write", type=int)
    args = parser.parse_args()
    db = Path(args.db)
    mstore = memory_store(db)
    if args.kill_in_write:
        kill_in_write(mstore, args.kill_in_write)
    a = agent(Path(args.log), mstore, kill_in_inspect=args.kill_in_inspect,
              kill_at=args.kill_at)
    runner = Runner(SQLiteStore(db))
    if args.resume:
        result: Any = asyncio.run(runner.resume(args.run_id, a))
    else:
        result = asyncio.run(runner.run(a, "Process order 7.", run_id=args.run_id))
    print(result.status, flush=True)


if __name__ == "__main__":
    main()
