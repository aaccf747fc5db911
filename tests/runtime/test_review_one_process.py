"""Review: one driver per run holds inside one process too.

The lease's owner was ``host:pid:start``, the same for every driver in a process, and
the store lets an owner re-take a lease it already holds. So a second ``resume`` (or a
``resolve``) of a run that this very process is still driving (two requests of a
service, two tasks of a worker) was not refused: it took the live lease, treated the
live call as in doubt and ran it again.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tether.core import EventType, LeaseLostError, RunLeasedError, RunStatus, ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import Tool, ToolContext, tool


def _agent(send: Tool) -> Agent:
    return Agent(name="one", model=ScriptedModel([ToolCall.of("send", to="a@b.c"), "done"]),
                 tools=[send])


def _tool(effects: list[str], started: asyncio.Event, go: asyncio.Event) -> Tool:
    @tool(idempotent=True)
    async def send(to: str, ctx: ToolContext) -> str:
        """Send an email (idempotent by key: the mail server dedupes nothing here, so
        every call is counted)."""
        effects.append(ctx.idempotency_key)
        started.set()
        await go.wait()
        return "sent"

    return send


async def _drive_and_race(tmp_path: Path, racer: str) -> tuple[list[str], RunStatus]:
    effects: list[str] = []
    started, go = asyncio.Event(), asyncio.Event()
    send = _tool(effects, started, go)
    store = SQLiteStore(tmp_path / "t.db")
    other = SQLiteStore(tmp_path / "t.db")
    try:
        live = asyncio.create_task(Runner(store).run(_agent(send), "mail", run_id="run_x"))
        await asyncio.wait_for(started.wait(), 30)
        try:
            with pytest.raises(RunLeasedError):
                if racer == "resume":
                    go.set()  # had the resume been let through, it would not block
                    await asyncio.wait_for(
                        Runner(other).resume("run_x", _agent(send)), 30)
                else:
                    (intent,) = [e for e in await other.read("run_x")
                                 if e.type == EventType.TOOL_INTENT]
                    await Runner(other).resolve("run_x", intent.payload["call_id"],
                                                result="never sent")
        finally:
            go.set()
            try:
                status = (await asyncio.wait_for(live, 30)).status
            except LeaseLostError:
                status = RunStatus.RUNNING  # the live driver was fenced out
        return effects, status
    finally:
        await store.close()
        await other.close()


async def test_a_second_resume_in_the_same_process_is_refused(tmp_path: Path) -> None:
    effects, status = await _drive_and_race(tmp_path, "resume")
    assert len(effects) == 1, effects  # the email was sent once
    assert status == RunStatus.COMPLETED


async def test_a_live_run_of_this_process_cannot_be_resolved(tmp_path: Path) -> None:
    effects, status = await _drive_and_race(tmp_path, "resolve")
    assert len(effects) == 1
    assert status == RunStatus.COMPLETED  # the real result was not thrown away
