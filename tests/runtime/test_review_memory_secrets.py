"""Attacks on secrets in memory (review of issue 18): a value under a sensitive name
is redacted wherever the journal sees the name (tool arguments, JSON results); a
working-memory entry names its value by its key too. Real SQLite file, raw bytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.core import Message, ToolCall
from tether.memory import EstimateTokenCounter
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Budget, MemoryConfig, Runner
from tether.store import SQLiteStore
from tether.tools import ToolContext, tool

from .memory_agent import memory_store

pytest.importorskip("sqlite_vec")

PASSWORD = "correct horse battery staple ninety"


@tool(idempotent=True)
def connect(db_password: str, ctx: ToolContext) -> str:
    """Connect to the database and keep the credential for the step.

    Args:
        db_password: The database password.
    """
    ctx.working.put("db_password", db_password)
    ctx.working.promote("db_password")
    return "connected"


def _raw(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in db.parent.iterdir()
                    if p.name.startswith(db.name))


def _run(db: Path) -> None:
    def answer(request: ModelRequest) -> Message:
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("connect", db_password=PASSWORD),))
        return Message.assistant("done")

    mstore = memory_store(db)
    agent = Agent(name="dba", instructions="Connect.", model=FunctionModel(answer),
                  tools=[connect], budget=Budget(max_steps=4),
                  memory=MemoryConfig(store=mstore, counter=EstimateTokenCounter()))
    result = Runner(SQLiteStore(db)).run_sync(agent, "Connect to the database.")
    assert str(result.status) == "completed", result.error
    mstore.close()


def test_a_promoted_entry_under_a_sensitive_name_is_stored_redacted(tmp_path: Path) -> None:
    """Fixed: the promotion's text was the bare value, so the name that makes it a
    secret was lost and the password went to memory_items and the FTS index."""
    db = tmp_path / "tether.db"
    _run(db)
    mstore = memory_store(db)
    texts = [str(r[0]) for r in mstore.connection.execute("SELECT text FROM memory_items")]
    fts = mstore.connection.execute(
        "SELECT count(*) FROM memory_fts WHERE memory_fts MATCH 'horse'").fetchall()
    mstore.close()
    assert len(texts) == 1 and PASSWORD not in texts[0] and "[REDACTED" in texts[0]
    assert fts[0][0] == 0


def test_a_working_entry_under_a_sensitive_name_is_sealed_in_the_journal(tmp_path: Path
                                                                          ) -> None:
    db = tmp_path / "tether.db"
    _run(db)
    assert PASSWORD.encode() not in _raw(db)
