"""Review: a call whose thread still runs is not run again by a resume in its process.

A sync tool that passes its timeout keeps running in its thread; the run stops as
``needs_attention`` ("... is still running") and its lease is released. A resume in the
same process (a service that resumes what stopped, at once) asked the reconcile hook,
which could not see the effect yet (the first attempt had not got there), and ran the
call again while the first attempt was still running: two charges. Issue 15: "reconcile
... retried only once the first attempt is known to have stopped". Fixed: the call stays
in doubt while its thread runs (``Tool.still_running``).
"""

from __future__ import annotations

import threading
from pathlib import Path

from tether.core import RunStatus, ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Policy, Runner
from tether.store import SQLiteStore
from tether.tools import NOT_APPLIED, Tool, ToolContext, tool


def _charge(effects: list[str], go: threading.Event) -> Tool:
    calls = []

    @tool(timeout_s=0.2)
    def charge(cents: int, ctx: ToolContext) -> str:
        """Charge a card (not idempotent; reconciled by key). The first attempt is slow
        and ignores the cancel event, as a blocking client call does."""
        calls.append(ctx.idempotency_key)
        if len(calls) == 1:
            go.wait(30)
        effects.append(ctx.idempotency_key)
        return "charged"

    @charge.reconciler
    def _done(key: str) -> object:
        return "charged" if key in effects else NOT_APPLIED

    return charge


def _agent(charge: Tool) -> Agent:
    return Agent(name="c", model=ScriptedModel([ToolCall.of("charge", cents=5), "done"]),
                 tools=[charge], policy=Policy(tool_stop_grace_s=0.05))


async def test_a_resume_does_not_rerun_a_call_still_running_here(tmp_path: Path) -> None:
    effects: list[str] = []
    go = threading.Event()
    charge = _charge(effects, go)
    store = SQLiteStore(tmp_path / "t.db")
    try:
        first = await Runner(store).run(_agent(charge), "pay", run_id="run_s")
        assert first.status == RunStatus.NEEDS_ATTENTION
        assert "still running" in str(first.error)
        again = await Runner(store).resume("run_s", _agent(charge))
        go.set()  # the first attempt finishes
        for _ in range(300):
            if effects:
                break
            threading.Event().wait(0.01)
        assert effects.count("run_s-1-0") == 1, effects  # charged once
        assert again.status == RunStatus.NEEDS_ATTENTION  # still in doubt: a human decides
    finally:
        go.set()
        await store.close()
