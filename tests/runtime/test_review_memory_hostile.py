"""Attack on offloading (review of issue 18): a large tool result that is not valid
Unicode. Real run, real SQLite file."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tether.core import Message, ToolCall
from tether.memory import EstimateTokenCounter
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Budget, MemoryConfig, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .memory_agent import memory_store

pytest.importorskip("sqlite_vec")


@tool(idempotent=True)
def fetch(rows: int) -> str:
    """Rows of an API's JSON answer, decoded as the API sent them.

    Args:
        rows: How many rows.
    """
    return fetch_text(rows)  # a lone surrogate escape, in valid JSON


def _run(db: Path, seen: list[list[Message]]) -> str:
    """Fetch a large result, expand its handle, finish; the run's status."""
    def answer(request: ModelRequest) -> Message:
        seen.append(list(request.messages))
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("fetch", rows=400),))
        if request.step == 2:
            shown = next(m for m in request.messages if m.role == "tool")
            found = re.search(r"expand\(handle='([^']+)'\)", shown.content or "")
            assert found is not None, shown.content
            return Message.assistant(None, (ToolCall.of("expand", handle=found.group(1)),))
        return Message.assistant("done")

    agent = Agent(name="cafe", instructions="Count the cups.", model=FunctionModel(answer),
                  tools=[fetch], budget=Budget(max_steps=5),
                  memory=MemoryConfig(store=memory_store(db), counter=EstimateTokenCounter(),
                                      large_result_tokens=300, budget=10000))
    result = Runner(SQLiteStore(db)).run_sync(agent, "How many cups were sold?")
    return f"{result.status} {result.error or ''}".strip()


def test_a_large_result_with_a_lone_surrogate_is_offloaded(tmp_path: Path) -> None:
    """Fixed: offloading it raised UnicodeEncodeError (the handle's hash, then SQLite)
    and the run failed "unexpected"; a resume failed the same way."""
    db = tmp_path / "tether.db"
    assert _run(db, []) == "completed"
    mstore = memory_store(db)
    rows = mstore.connection.execute(
        "SELECT text FROM memory_items WHERE kind = 'artifact'").fetchall()
    mstore.close()
    assert len(rows) == 1
    assert rows[0][0] == fetch_text(400).replace("\ud800", "\ufffd")


def fetch_text(rows: int) -> str:
    name = json.loads('"caf\\ud800e"')
    return "".join(f"row {i}: {name} sold {i * 3} cups\n" for i in range(rows))


def test_expand_shows_the_large_result_whole_in_the_next_prompt(tmp_path: Path) -> None:
    seen: list[list[Message]] = []
    assert _run(tmp_path / "tether.db", seen) == "completed"
    whole = fetch_text(400).replace("\ud800", "\ufffd")
    expanded = [m for m in seen[2] if m.role == "tool" and m.name == "expand"]
    assert len(expanded) == 1
    assert expanded[0].content in (whole, fetch_text(400))
