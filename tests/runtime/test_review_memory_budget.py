"""Attack on the budget in the step loop (review of issue 18): instructions and task
that alone exceed the budget, at the start or after context-length errors lowered it.
Real runs on a real SQLite file."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether.core import ContextLengthError, EventType, Message
from tether.memory import EstimateTokenCounter
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Budget, MemoryConfig, Runner
from tether.store import SQLiteStore

from .memory_agent import memory_store

pytest.importorskip("sqlite_vec")


def _failed_cleanly(db: Path, agent: Agent, task: str) -> None:
    store = SQLiteStore(db)
    result = Runner(store).run_sync(agent, task)  # a result, not an exception
    assert str(result.status) == "failed"
    assert result.error is not None and "budget" in result.error.message
    assert result.error.hint
    events = asyncio.run(store.read(result.run_id))
    assert events[-1].type == EventType.RUN_FAILED
    assert events[-1].payload["reason"] == "context_length_exceeded"


def test_instructions_over_the_budget_fail_the_run(tmp_path: Path) -> None:
    """Fixed: ContextBudgetError escaped Runner.run and left the run 'running' with
    nothing but run.started in its journal."""
    db = tmp_path / "tether.db"
    agent = Agent(name="verbose", instructions="Always be thorough. " * 800,
                  model=FunctionModel(lambda r: Message.assistant("done")),
                  budget=Budget(max_steps=3),
                  memory=MemoryConfig(store=memory_store(db), budget=1000,
                                      counter=EstimateTokenCounter()))
    _failed_cleanly(db, agent, "Say hello.")


def test_a_budget_lowered_below_the_task_fails_the_run(tmp_path: Path) -> None:
    """Fixed: after context-length errors lowered the budget under the task's size, the
    rebuild raised out of the runner instead of failing the run."""
    calls: list[int] = []

    def answer(request: ModelRequest) -> Message:
        calls.append(request.step)
        raise ContextLengthError("the prompt is too long for this model",
                                 hint="send fewer tokens")

    db = tmp_path / "tether.db"
    agent = Agent(name="long", instructions="Read carefully.", model=FunctionModel(answer),
                  budget=Budget(max_steps=3),
                  memory=MemoryConfig(store=memory_store(db), budget=2000,
                                      counter=EstimateTokenCounter()))
    _failed_cleanly(db, agent, "Summarise this: " + "the quarterly figures rose " * 150)
    assert len(calls) >= 1
