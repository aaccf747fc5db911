"""Attacker's review (issue 19): a child that pauses on its own (its heartbeat could
not renew its lease, e.g. the store was busy) while its parent was not interrupted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tether.core import EventType, RunStatus, StoreError, ToolCall
from tether.models import FunctionModel, ModelRequest, ScriptedModel
from tether.orchestration import Brief, delegate
from tether.runtime import Agent, Runner
from tether.store import Lease, SQLiteStore
from tether.tools import ToolContext, tool


class BusyOnce(SQLiteStore):
    """The first heartbeat of a sub-run's lease fails, as a store busy past its timeout
    does (``StoreError``); everything else is the real SQLite store."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failed = False

    async def renew(self, lease: Lease) -> None:
        if lease.run_id != "run_p" and not self.failed:
            self.failed = True
            raise StoreError("database is locked", hint="retry")
        await super().renew(lease)


async def _slow(request: ModelRequest) -> str:
    await asyncio.sleep(0.6)
    return "child answer"


SUB = Agent(name="sub", model=FunctionModel(_slow))


@tool(idempotent=True)
async def hand_off(ctx: ToolContext) -> str:
    """Delegates one slow subtask."""
    return (await delegate(ctx, SUB, Brief(objective="work"))).model_dump_json()


async def test_a_child_that_pauses_by_itself_does_not_hang_its_parent(
    tmp_path: Path,
) -> None:
    store = BusyOnce(tmp_path / "t.db")
    try:
        parent = Agent(name="p", model=ScriptedModel([ToolCall.of("hand_off"), "done"]),
                       tools=[hand_off])
        runner = Runner(store, lease_ttl_s=0.3)
        task = asyncio.ensure_future(runner.run(parent, "go", run_id="run_p"))
        # Generous: the whole run takes well under a second when nothing hangs.
        finished, _ = await asyncio.wait({task}, timeout=20)
        if not finished:
            runner.interrupt()
            await asyncio.wait({task}, timeout=20)
        assert finished, "the parent never ended: it waits for a child that paused"
        result = task.result()
        # Paused with its child (resumable), or an end naming the child: never stuck.
        assert result.status != RunStatus.RUNNING
        [child] = await store.runs(parent_run_id="run_p")
        assert child.status == RunStatus.PAUSED  # the attack really happened
        if result.status == RunStatus.PAUSED:
            resumed = await Runner(store).resume("run_p", parent)
            assert resumed.status == RunStatus.COMPLETED
            done = [e.payload for e in await store.read("run_p")
                    if e.type == EventType.SUBRUN_COMPLETED]
            assert [d["status"] for d in done] == ["completed"]
    finally:
        await store.close()
