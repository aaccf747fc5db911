"""A lead agent and three narrow subagents, each delegated to as a child run.

The lead plans three subtasks (two independent lookups, then a report that needs both),
runs them with ``run_plan`` and answers from the report. The models are scripted, so the
example runs anywhere, offline; swap in real ones (``model="openai:gpt-4.1-mini"``).

    python examples/team.py
    tether run examples/team.py:team "Compare alpha and beta" && tether trace RUN_ID
"""

from __future__ import annotations

import asyncio
import json

from pydantic import BaseModel

from tether.core import ToolCall
from tether.models import FunctionModel, ModelRequest, step_of
from tether.orchestration import controller, formatter, retriever
from tether.runtime import Runner
from tether.store import SQLiteStore


class Report(BaseModel):
    """The final output's shape; the formatter's answer is validated against it."""

    summary: str
    sources: list[str]


def _task(request: ModelRequest) -> str:
    return next(m.content or "" for m in request.messages if m.role == "user")


def _retrieve(request: ModelRequest) -> str:
    topic = _task(request).split("\n", 1)[0].rsplit(" ", 1)[-1]
    return f"{topic} is fast (source: notes/{topic}.md)"


def _format(request: ModelRequest) -> str:
    inputs = json.loads(_task(request).split("Inputs (JSON):\n", 1)[1].split("\n\n")[0])
    facts = [str(v) for _, v in sorted(inputs.items())]
    return Report(summary="; ".join(facts),
                  sources=[f.split("source: ")[1].rstrip(")") for f in facts]).model_dump_json()


def _lead(request: ModelRequest) -> str | ToolCall:
    if step_of(request) == 0:
        return ToolCall.of("run_plan", subtasks=[
            {"id": "alpha", "objective": "Find facts about alpha", "agent": "retriever"},
            {"id": "beta", "objective": "Find facts about beta", "agent": "retriever"},
            {"id": "report", "objective": "Write the report", "agent": "formatter",
             "depends_on": ["alpha", "beta"], "output_schema": "Report"},
        ])
    result = json.loads(request.messages[-1].content or "{}")
    if result["status"] != "ok":
        return f"Incomplete: {result.get('error')}"
    return result["results"]["report"]["output"]["summary"]


team = controller(
    "lead", model=FunctionModel(_lead),
    agents=[retriever(FunctionModel(_retrieve)), formatter(FunctionModel(_format), Report)],
    schemas={"Report": Report},
)


async def main() -> None:
    store = SQLiteStore("team.db")
    try:
        result = await Runner(store).run(team, "Compare alpha and beta")
        print(result.status, "-", result.output)
        for child in await store.runs(parent_run_id=result.run_id):
            print("  child", child.run_id, child.agent, child.status)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
