"""A scripted team for the orchestration tests: a controller that plans three
independent searches and a summary that depends on two of them.

Run as a script, it drives one controller run in this process (for the SIGKILL tests):
``python team.py DB RUN_ID`` starts the run, or resumes it if it exists; it prints
the status and the answer.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import sys
from typing import Any

from tether.core import Message, RunNotFoundError, ToolCall
from tether.models import FunctionModel, ModelRequest, step_of
from tether.orchestration import controller
from tether.runtime import Agent, Budget, Runner
from tether.store import SQLiteStore

#: Seconds each subagent "thinks" (env), so a kill lands mid-fan-out.
LATENCY_ENV = "TEAM_LATENCY_S"
#: A file each subagent model call appends its objective to (env): who really ran.
CALLS_ENV = "TEAM_CALLS"

PLAN = [
    {"id": "a", "objective": "search alpha", "agent": "searcher"},
    {"id": "b", "objective": "search beta", "agent": "searcher"},
    {"id": "c", "objective": "search gamma", "agent": "searcher"},
    {"id": "d", "objective": "summarise", "agent": "writer", "depends_on": ["a", "b"]},
]


def _task(request: ModelRequest) -> str:
    return next(m.content or "" for m in request.messages if m.role == "user")


def _objective(task: str) -> str:
    return task.split("\n", 1)[0].removeprefix("Objective: ")


def _inputs(task: str) -> dict[str, Any]:
    if "Inputs (JSON):\n" not in task:
        return {}
    return dict(json.loads(task.split("Inputs (JSON):\n", 1)[1].split("\n\n", 1)[0]))


async def _sub(request: ModelRequest) -> str:
    task = _task(request)
    latency = float(os.environ.get(LATENCY_ENV, "0") or 0)
    if latency:
        await asyncio.sleep(latency)
    path = os.environ.get(CALLS_ENV)
    if path:
        with open(path, "a") as f:  # noqa: ASYNC230 - a tiny append, in a test helper
            f.write(_objective(task).replace("\n", " ") + "\n")
    inputs = _inputs(task)
    objective = _objective(task)
    if inputs:
        return f"{objective} of [{' + '.join(str(inputs[k]) for k in sorted(inputs))}]"
    return f"found {objective.removeprefix('search ')}"


def _plan_step(request: ModelRequest) -> str | ToolCall | Message:
    if step_of(request) == 0:
        return ToolCall.of("run_plan", subtasks=PLAN)
    last = request.messages[-1]
    result = json.loads(last.content or "{}")
    if result.get("status") != "ok":
        return f"could not finish: {result.get('error')}"
    outputs = result["results"]
    return f"final: {outputs['d']['output']} / {outputs['c']['output']}"


def team(*, concurrency: int = 4, max_replans: int = 1) -> Agent:
    searcher = Agent(name="searcher", instructions="Search.", model=FunctionModel(_sub),
                     budget=Budget(max_steps=3), max_recoveries=10)
    writer = Agent(name="writer", instructions="Summarise.", model=FunctionModel(_sub),
                   budget=Budget(max_steps=3), max_recoveries=10)
    lead = controller("lead", model=FunctionModel(_plan_step), agents=[searcher, writer],
                      budget=Budget(max_steps=40), concurrency=concurrency,
                      max_replans=max_replans)
    # Kills may land before anything commits, several times in a row: not a crash loop.
    return dataclasses.replace(lead, max_recoveries=10)


EXPECTED = "final: summarise of [found alpha + found beta] / found gamma"


async def _main(db: str, run_id: str) -> None:
    store = SQLiteStore(db)
    try:
        runner = Runner(store)
        agent = team()
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
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
