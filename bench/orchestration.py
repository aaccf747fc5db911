"""Orchestration figures (issue 19): fan-out speed-up, per-delegation overhead, and
the token overhead of a controller and its briefs.

- ``fanout_ratio``: 8 independent subtasks, each with 100 ms of scripted model
  latency, concurrency 8, over the time of one such subtask delegated alone (target
  at most 1.3).
- ``delegation_overhead_ms``: per delegated subtask, the time a child run takes as a
  delegation (brief, budget share, ``subrun.*`` events, the child's own journal and
  lease, collecting its typed result) less the time of the same agent run directly, at
  ``synchronous=NORMAL``, scripted model (target at most 2 ms).
- ``delegation_token_ratio``: on a scripted team whose brief and result sizes are
  known, the tokens spent coordinating (the controller) over the tokens of the
  subtasks' own work (the child runs), as ``tether cost`` and ``tether trace`` show
  it: :func:`tether.orchestration.delegation_overhead`, from the journals (target at
  most 1.5); ``team_token_ratio`` is the whole team's tokens over the same. As a check
  of that definition, ``delegation_token_ratio_vs_alone`` is what the team spent
  beyond the tokens the subtasks need when each is run alone on its bare objective
  (so the briefs' framing counts as overhead there), over the latter.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, write_results  # noqa: E402

from tether.core import ToolCall  # noqa: E402
from tether.models import FunctionModel, ModelRequest, step_of  # noqa: E402
from tether.orchestration import (  # noqa: E402
    Branch,
    Brief,
    controller,
    fan_out,
    run_delegation_overhead,
)
from tether.runtime import Agent, Budget, Runner  # noqa: E402
from tether.store import SQLiteStore  # noqa: E402
from tether.tools import ToolContext, tool  # noqa: E402

LATENCY_S = 0.1
FANOUT = 8
REPEATS = 5
OVERHEAD_N = 200


def _sub(latency: float) -> Agent:
    async def answer(request: ModelRequest) -> str:
        if latency:
            await asyncio.sleep(latency)
        return "done"

    return Agent(name="sub", model=FunctionModel(answer), budget=Budget(max_steps=2))


def _fanout_parent(n: int, latency: float, concurrency: int) -> Agent:
    sub = _sub(latency)

    @tool(idempotent=True)
    async def spread(ctx: ToolContext) -> str:
        """Fan out."""
        results = await fan_out(ctx, [Branch(name=f"b{i}", agent=sub, brief=Brief(
            objective=f"subtask {i}")) for i in range(n)], concurrency=concurrency)
        assert all(r.status == "ok" for r in results), results
        return "ok"

    def script(request: ModelRequest) -> str | ToolCall:
        return ToolCall.of("spread") if step_of(request) == 0 else "all done"

    return Agent(name="parent", model=FunctionModel(script), tools=[spread],
                 budget=Budget(max_steps=None))


async def _timed_run(store: SQLiteStore, agent: Agent) -> float:
    started = time.perf_counter()
    result = await Runner(store).run(agent, "go")
    assert result.status == "completed", result.error
    return time.perf_counter() - started


async def fanout(tmp: Path) -> list[dict[str, object]]:
    store = SQLiteStore(tmp / "fanout.db", synchronous="NORMAL")
    try:
        single, many = [], []
        for _ in range(REPEATS):
            single.append(await _timed_run(store, _fanout_parent(1, LATENCY_S, 1)))
            many.append(await _timed_run(store, _fanout_parent(FANOUT, LATENCY_S, FANOUT)))
    finally:
        await store.close()
    one, eight = statistics.median(single), statistics.median(many)
    config = {"subtasks": FANOUT, "concurrency": FANOUT, "latency_ms": LATENCY_S * 1000,
              "repeats": REPEATS, "load_avg_1m": round(os.getloadavg()[0], 2)}
    return [emit("fanout_ratio", eight / one, "x", **config),
            emit("fanout_single_ms", one * 1000, "ms", **config),
            emit("fanout_all_ms", eight * 1000, "ms", **config)]


async def overhead(tmp: Path) -> list[dict[str, object]]:
    store = SQLiteStore(tmp / "overhead.db", synchronous="NORMAL")
    sub = _sub(0.0)
    try:
        direct, delegated = [], []
        for _ in range(3):
            runner = Runner(store)
            started = time.perf_counter()
            for i in range(OVERHEAD_N):
                await runner.run(sub, f"Objective: subtask {i}")
            direct.append((time.perf_counter() - started) / OVERHEAD_N)
            parent = _fanout_parent(OVERHEAD_N, 0.0, 1)
            # The parent's own two steps, measured alone, are not delegation overhead.
            alone = await _timed_run(store, _fanout_parent(0, 0.0, 1))
            delegated.append((await _timed_run(store, parent) - alone) / OVERHEAD_N)
    finally:
        await store.close()
    plain, via = min(direct), min(delegated)
    config = {"subtasks": OVERHEAD_N, "synchronous": "NORMAL", "model": "scripted",
              "load_avg_1m": round(os.getloadavg()[0], 2)}
    return [emit("delegation_overhead_ms", (via - plain) * 1000, "ms", **config),
            emit("delegated_subtask_ms", via * 1000, "ms", **config),
            emit("direct_run_ms", plain * 1000, "ms", **config)]


#: The scripted team: 4 subtasks, each a 400-character objective and a 400-character
#: answer (about 100 tokens each way at the scripted models' 4 characters a token).
TEAM = [{"id": f"t{i}", "objective": (f"subtask {i}: " + "look into this " * 30)[:400],
         "agent": "worker"} for i in range(4)]
ANSWER = ("finding " * 60)[:400]


async def tokens(tmp: Path) -> list[dict[str, object]]:
    store = SQLiteStore(tmp / "tokens.db", synchronous="NORMAL")
    worker = Agent(name="worker", model=FunctionModel(lambda r: ANSWER))

    def lead(request: ModelRequest) -> str | ToolCall:
        return ToolCall.of("run_plan", subtasks=TEAM) if step_of(request) == 0 else \
            "summary: " + "finding " * 10

    team = controller("lead", model=FunctionModel(lead), agents=[worker],
                      instructions="Plan, delegate, answer.")
    try:
        result = await Runner(store).run(team, "Look into four things.")
        overhead = await run_delegation_overhead(store, result.run_id)
        ratio, team_ratio = overhead.token_ratio, overhead.team_token_ratio
        assert ratio is not None and team_ratio is not None, overhead
        total = overhead.total_tokens
        alone = 0
        for subtask in TEAM:
            run = await Runner(store).run(worker, subtask["objective"])
            alone += run.usage.total_tokens
    finally:
        await store.close()
    config = {"subtasks": len(TEAM), "objective_chars": 400, "answer_chars": 400,
              "team_tokens": total, "coordination_tokens": overhead.coordination_tokens,
              "work_tokens": overhead.work_tokens, "subtask_tokens_alone": alone}
    return [emit("delegation_token_ratio", ratio, "x", **config),
            emit("team_token_ratio", team_ratio, "x", **config),
            emit("delegation_token_ratio_vs_alone", (total - alone) / alone, "x", **config)]


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        lines = await fanout(Path(tmp))
        lines += await overhead(Path(tmp))
        lines += await tokens(Path(tmp))
    write_results(__file__, lines)


if __name__ == "__main__":
    asyncio.run(main())
