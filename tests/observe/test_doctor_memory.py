"""The doctor and the trace on agents with memory: ``refetched_evidence`` fires on a
planted run (a result masked out of the prompt, then fetched again) and stays silent
on clean runs; ``trace`` shows each step's context and ``trace --prompt`` prints
exactly what the model was sent."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import Event, Message, ToolCall
from tether.memory import EstimateTokenCounter
from tether.models import FunctionModel, ModelRequest
from tether.observe import context_summary, diagnose
from tether.runtime import Agent, Budget, MemoryConfig, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from ..runtime.memory_agent import memory_store

pytest.importorskip("sqlite_vec")

STEPS = 40


@tool(idempotent=True)
def lookup(item: int) -> str:
    """Look an item up.

    Args:
        item: The item's number.
    """
    words = " ".join(f"detail{item}x{i}" for i in range(25))
    return f"item {item} sits on shelf {item * 7 % 97}: {words}"


def _run(tmp_path: Path, again: int | None, budget: int = 2000
         ) -> tuple[Path, str, list[ModelRequest]]:
    """A memory agent that looks items 1..STEPS up, then (``again``) item ``again``
    once more, under a budget that masks the old turns."""
    seen: list[ModelRequest] = []

    def answer(request: ModelRequest) -> Message:
        seen.append(request)
        if request.step <= STEPS:
            return Message.assistant(None, (ToolCall.of("lookup", item=request.step),))
        if request.step == STEPS + 1 and again is not None:
            return Message.assistant(None, (ToolCall.of("lookup", item=again),))
        return Message.assistant("done")

    db = tmp_path / "tether.db"
    agent = Agent(name="clerk", model=FunctionModel(answer), tools=[lookup],
                  budget=Budget(max_steps=STEPS + 5),
                  memory=MemoryConfig(budget=budget, store=memory_store(db),
                                      counter=EstimateTokenCounter()))
    result = Runner(SQLiteStore(db)).run_sync(agent, "Inventory the shelves.")
    assert str(result.status) == "completed", result.error
    return db, result.run_id, seen


def _events(db: Path, run_id: str) -> list[Event]:
    async def read() -> list[Event]:
        store = SQLiteStore(db)
        try:
            return await store.read(run_id)
        finally:
            await store.close()

    return asyncio.run(read())


def _kinds(events: list[Event]) -> list[str]:
    return [f.kind for f in diagnose(events)]


def test_a_masked_result_fetched_again_is_found(tmp_path: Path) -> None:
    db, run_id, _ = _run(tmp_path, again=1)
    events = _events(db, run_id)
    found = [f for f in diagnose(events) if f.kind == "refetched_evidence"]
    assert len(found) == 1
    assert found[0].steps == (1, STEPS + 1)
    assert "masked" in found[0].message or "dropped" in found[0].message
    assert found[0].how_to_look == f"tether trace {run_id} --prompt {STEPS + 1}"


def test_clean_runs_stay_silent(tmp_path: Path) -> None:
    db, run_id, _ = _run(tmp_path / "a", again=None)
    assert "refetched_evidence" not in _kinds(_events(db, run_id))
    # a result still whole in the prompt, asked again: a repeat, not the builder's doing
    db, run_id, _ = _run(tmp_path / "b", again=STEPS, budget=6000)
    events = _events(db, run_id)
    last = [e for e in events if e.type == "context.built"][STEPS]
    assert last.payload["recipe"]["mask_cut"] < STEPS  # step 40's turn is shown whole
    kinds = _kinds(events)
    assert "refetched_evidence" not in kinds and "repeated_call" in kinds


def test_trace_shows_each_step_s_context_and_prompt_reproduces_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db, run_id, seen = _run(tmp_path, again=1)
    monkeypatch.delenv("TETHER_DB", raising=False)
    cli = CliRunner()
    out = cli.invoke(app, ["trace", run_id, "--db", str(db), "--json"])
    assert out.exit_code == 0, out.output
    steps = json.loads(out.output)["trace"]["children"]
    contexts = [s["context"] for s in steps if s["kind"] == "step"]
    assert len(contexts) == STEPS + 2
    for c in contexts:
        assert 0 < c["tokens"] <= c["budget"] == 2000
        assert sum(p["tokens"] for p in c["parts"].values()) == c["tokens"]
    assert any(c["masked"] for c in contexts)  # the budget made the builder mask
    text = cli.invoke(app, ["trace", run_id, "--db", str(db)])
    assert text.exit_code == 0 and "context.built" in text.output
    assert "masked" in text.output and "/2,000 tok" in text.output
    for request in (seen[0], seen[STEPS // 2], seen[STEPS]):
        out = cli.invoke(app, ["trace", run_id, "--db", str(db), "--prompt",
                               str(request.step), "--json"])
        assert out.exit_code == 0, out.output
        (call,) = json.loads(out.output)
        sent = [m.model_dump(mode="json", exclude_defaults=True) for m in request.messages]
        assert call["messages"] == sent  # exactly what the model was sent


def test_context_summary_survives_hostile_payloads() -> None:
    for payload in [{}, {"recipe": "x", "parts": "y"}, {"tokens": True, "budget": 0},
                    {"parts": [{"name": {"a": 1}, "tokens": "many"}, 3]},
                    {"recipe": {"mask_cut": 5, "drop_cut": 9, "memories": "m"}}]:
        summary: dict[str, Any] = context_summary(payload)
        assert summary["masked"] >= 0 and isinstance(summary["memories"], list)
