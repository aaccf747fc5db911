"""Attacker's review (issue 16): a call that stays open across a resume while its
tool is no longer offered (a FilteredToolset's choice, a tool server that lost it).

A deferred call's work goes on outside the run, and a call cut short by a kill may
have taken effect: neither may be journaled as "not available" (a failure the model
then works around, e.g. by doing it again another way)."""

from __future__ import annotations

import json
from pathlib import Path

from tether.core import CallDeferred, EventType, RunStatus, ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import FilteredToolset, FunctionToolset, tool

SENT: list[str] = []


@tool
def wire(amount: int) -> str:
    """Send money; a human confirms it at the bank (the result comes later)."""
    SENT.append(f"wire {amount}")
    raise CallDeferred("the bank confirms the transfer by hand")


def _agent(offered: bool) -> Agent:
    tools = FilteredToolset(FunctionToolset([wire]), lambda ctx, t: offered)
    return Agent(name="pay", tools=[tools], model=ScriptedModel([
        ToolCall.of("wire", amount=500, call_id="w1"), "Sent."]))


async def test_a_deferred_call_is_not_closed_when_its_tool_is_no_longer_offered(
        tmp_path: Path) -> None:
    """Fixed: ``settle_one`` looked the tool up before checking whether the call was
    deferred, and journaled a ``tool.error`` "is not available" for a transfer that
    the outside world was still carrying out."""
    SENT.clear()
    store = SQLiteStore(tmp_path / "t.db")
    held = await Runner(store).run(_agent(True), "pay 500", run_id="run_pay")
    assert held.status == RunStatus.NEEDS_ATTENTION and SENT == ["wire 500"]
    again = await Runner(store).resume("run_pay", _agent(False))
    assert again.status == RunStatus.NEEDS_ATTENTION, again.status
    events = await store.read("run_pay")
    assert not [e for e in events if e.type == EventType.TOOL_ERROR], \
        [e.payload for e in events if e.type == EventType.TOOL_ERROR]
    # Its result still comes from outside and the run goes on from it.
    await Runner(store).resolve("run_pay", "w1", result=json.dumps({"ok": True}))
    done = await Runner(store).resume("run_pay", _agent(False))
    assert (done.status, done.output) == (RunStatus.COMPLETED, "Sent.")
    assert SENT == ["wire 500"]  # once
    await store.close()


KILLED_MID_CALL = '''
import asyncio, os, signal, sys
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import tool

@tool
def wire(amount: int) -> str:
    """Send money (not idempotent)."""
    with open(sys.argv[2], "a") as f:
        f.write(f"wire {amount}\\n")
    os.kill(os.getpid(), signal.SIGKILL)
    return "sent"

agent = Agent(name="pay", tools=[wire], model=ScriptedModel([
    ToolCall.of("wire", amount=500, call_id="w1"), "Sent."]))
asyncio.run(Runner(SQLiteStore(sys.argv[1])).run(agent, "pay 500", run_id="run_pay"))
'''


async def test_a_call_cut_short_by_a_kill_stays_in_doubt_when_its_tool_vanished(
        tmp_path: Path) -> None:
    """A non-idempotent call whose process was SIGKILLed mid-call may have taken
    effect; resumed by an agent that no longer offers its tool, it is in doubt (the
    run needs attention), never a "not available" failure the model works around."""
    import asyncio
    import subprocess
    import sys

    db, effects = tmp_path / "t.db", tmp_path / "effects"
    child = await asyncio.to_thread(
        subprocess.run, [sys.executable, "-c", KILLED_MID_CALL, str(db), str(effects)],
        capture_output=True, timeout=120)
    assert child.returncode == -9 and effects.read_text() == "wire 500\n"
    store = SQLiteStore(db)
    again = await Runner(store).resume("run_pay", _agent(False))
    assert again.status == RunStatus.NEEDS_ATTENTION, again.status
    events = await store.read("run_pay")
    assert not [e for e in events if e.type == EventType.TOOL_ERROR]
    (attention,) = [e for e in events if e.type == EventType.RUN_NEEDS_ATTENTION]
    assert "may have taken effect" in json.dumps(attention.payload)
    # A human settles it; the run goes on without doing it again.
    await Runner(store).resolve("run_pay", "w1", result="sent")
    done = await Runner(store).resume("run_pay", _agent(False))
    assert (done.status, done.output) == (RunStatus.COMPLETED, "Sent.")
    assert effects.read_text() == "wire 500\n"
    await store.close()
