r"""A team: a lead agent and the four standard specialists, each delegated to as a child
run, each specialist on its real tools.

- ``retriever``: ``recall`` over a SQLite memory file holding the notes registered
  below (``$TEAM_MEMORY_DB``, default ``team-memory.db`` beside ``$TETHER_DB``);
- ``coder``: ``run_python`` in a bubblewrap sandbox;
- ``api_caller``: ``http_request`` to the hosts listed in ``$TEAM_API_HOSTS``
  (comma-separated; none by default, so every URL is refused before any connection);
- ``formatter``: answers with a ``Report``, validated (and repaired once if need be).

``team`` runs on the default model (the embedded SmolLM2-135M, offline, or
``$TETHER_MODEL``). The lead delegates through one tool per specialist, whose
descriptions use the words a task asks with ("search the notes", "compute ... with
Python", "fetch ... over HTTP", "format a report"). On the embedded model every agent
works in phases (``LocalModel(tool_mode="phased")``): the grammar admits only a tool
call after the task, the tool the task's words name most, then only an answer; so the
lead hands the task to one specialist, which calls its tool, and both answer. A larger
model may delegate several times::

    tether run examples/team.py:team \
        "Search the notes for the launch day, then compute 6 times 7 with Python."
    tether trace RUN_ID      # the lead, and a child run per specialist under its call

``scripted_team`` is a controller that writes a plan (``run_plan``: two searches, then a
report that needs both), on scripted models, so it runs the same anywhere::

    tether run examples/team.py:scripted_team "Compare alpha and beta"
"""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from tether.core import ToolCall
from tether.memory import SQLiteMemoryStore
from tether.models import FunctionModel, LocalModel, ModelRequest, step_of
from tether.orchestration import api_caller, as_tool, coder, controller, formatter, retriever
from tether.runtime import Agent, Budget

#: The documents the retriever searches (registered once; registering again adds nothing).
DOCUMENTS = {
    "notes/alpha.md": "Alpha is the fast path: it answers in 40 ms at the median.",
    "notes/beta.md": "Beta is the safe path: it answers in 90 ms and never loses a write.",
    "notes/launch.md": "The launch is on Tuesday 3 March, at 10:00 in Lyon.",
}


class Report(BaseModel):
    """The final output's shape; the formatter's answer is validated against it."""

    summary: str
    sources: list[str]


def _memory() -> SQLiteMemoryStore:
    default = Path(os.environ.get("TETHER_DB", ".tether/tether.db")).with_name(
        "team-memory.db")
    return SQLiteMemoryStore(os.environ.get("TEAM_MEMORY_DB") or default)


def _hosts() -> list[str]:
    return [h.strip() for h in os.environ.get("TEAM_API_HOSTS", "").split(",") if h.strip()]


MEMORY = _memory()


def _specialists(models: dict[str, Any]) -> list[Agent]:
    return [
        retriever(models["retriever"], memory=MEMORY, documents=DOCUMENTS),
        coder(models["coder"]),
        api_caller(models["api_caller"], allowed_hosts=_hosts()),
        formatter(models["formatter"], Report),
    ]


# -- the team on the default model ---------------------------------------------------


def _local_model() -> LocalModel | None:
    """On the embedded model, agents work in phases: call a tool, then answer (what a
    135M model does reliably). Otherwise ``None``: the default model."""
    if os.environ.get("TETHER_MODEL", "local") != "local" or \
            importlib.util.find_spec("llama_cpp") is None:
        return None
    return LocalModel(tool_mode="phased")


_DESCRIPTIONS = {
    "retriever": "Search the notes and documents for facts.",
    "coder": "Compute a number with Python code.",
    "api_caller": "Fetch data from a web API over HTTP.",
    "formatter": "Format the final report as JSON.",
}

_model = _local_model()
_team = {a.name: a for a in _specialists({name: _model for name in _DESCRIPTIONS})}

team = Agent(
    name="lead",
    model=_model,
    instructions="You lead a team. Hand each part of the task to the specialist for it, "
                 "then answer from what they found.",
    tools=[as_tool(_team[name], description=text, **(
        {"output": Report, "repairs": 1} if name == "formatter" else {}))
        for name, text in _DESCRIPTIONS.items()],
    budget=Budget(max_steps=8),
)


# -- the scripted team: a controller that writes a plan ------------------------------


def _task(request: ModelRequest) -> str:
    return next(m.content or "" for m in request.messages if m.role == "user")


def _retrieve(request: ModelRequest) -> str | ToolCall:
    topic = _task(request).split("\n", 1)[0].rsplit(" ", 1)[-1]
    if step_of(request) == 0:
        return ToolCall.of("recall", query=f"{topic} path")
    found = request.messages[-1].content or ""
    # "[mem_...] notes/alpha.md: Alpha is the fast path: ..." -> the fact and its source
    line = next((x for x in found.splitlines() if topic in x.lower()), "nothing found")
    source, _, fact = line.partition("] ")[2].partition(": ")
    return f"{fact} (source: {source})"


def _format(request: ModelRequest) -> str:
    inputs = json.loads(_task(request).split("Inputs (JSON):\n", 1)[1].split("\n\n")[0])
    facts = [str(v) for _, v in sorted(inputs.items())]
    return Report(summary=" ".join(f.split(" (source: ")[0] for f in facts),
                  sources=[f.split("source: ")[1].rstrip(")") for f in facts]
                  ).model_dump_json()


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
    return str(result["results"]["report"]["output"]["summary"])


def _idle(request: ModelRequest) -> str:
    return "not used by this plan"


scripted_team = controller(
    "lead", model=FunctionModel(_lead),
    agents=_specialists({"retriever": FunctionModel(_retrieve), "coder": FunctionModel(_idle),
                         "api_caller": FunctionModel(_idle),
                         "formatter": FunctionModel(_format)}),
    schemas={"Report": Report},
)
