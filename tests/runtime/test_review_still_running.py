"""Review: a call whose thread still runs is not run again by a resume in its process.

A sync tool that passes its timeout keeps running in its thread; the run stops as
``needs_attention`` ("... is still running") and its lease is released. A resume in the
same process (a service that resumes what stopped, at once) asked the reconcile hook,
which could not see the effect yet (the first attempt had not got there), and ran the
call again while the first attempt was still running: two charges. Issue 15: "reconcile
... retried only once the first attempt is known to have stopped". Fixed: the call stays
in doubt while its thread runs (``Tool.still_running``), and the drive keeps its lease
until the thread ends, so a resume in another process is refused meanwhile.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from tether.core import RunLeasedError, RunStatus, ToolCall
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
        again: RunStatus | str
        try:  # refused while the first drive keeps the lease for its running thread
            again = (await Runner(store).resume("run_s", _agent(charge))).status
        except RunLeasedError:
            again = "refused"
        go.set()  # the first attempt finishes
        for _ in range(300):
            if effects:
                break
            threading.Event().wait(0.01)
        assert effects.count("run_s-1-0") == 1, effects  # charged once
        assert again in ("refused", RunStatus.NEEDS_ATTENTION)  # still in doubt
    finally:
        go.set()
        await store.close()


SERVICE = '''
import asyncio, sys, time
from pathlib import Path
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Policy, Runner
from tether.store import SQLiteStore
from tether.tools import ToolContext, tool

HERE = Path(sys.argv[2])

@tool(timeout_s=0.2)
def charge(cents: int, ctx: ToolContext) -> str:
    """Charge a card; a blocking client that ignores the cancel event."""
    while not (HERE / "go").exists():
        time.sleep(0.01)
    with (HERE / "effects").open("a") as f:
        f.write(ctx.idempotency_key + "\\n")
    (HERE / "done").touch()
    return "charged"

async def main():
    store = SQLiteStore(sys.argv[1])
    agent = Agent(name="c", model=ScriptedModel([ToolCall.of("charge", cents=5), "done"]),
                  tools=[charge], policy=Policy(tool_stop_grace_s=0.05))
    result = await Runner(store).run(agent, "pay", run_id="run_v")
    print(result.status, flush=True)
    (HERE / "stopped").touch()
    while not (HERE / "done").exists():  # the service lives on; so does the thread
        await asyncio.sleep(0.01)
    await store.close()

asyncio.run(main())
'''


def _service(tmp_path: Path) -> subprocess.Popen[str]:
    script = tmp_path / "service.py"
    script.write_text(SERVICE)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "t.db"),
                             str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)


async def test_another_process_does_not_rerun_a_call_still_running_in_a_live_one(
    tmp_path: Path,
) -> None:
    service = _service(tmp_path)
    try:
        _wait_for(tmp_path / "stopped", service)  # needs_attention, thread running
        effects_file = tmp_path / "effects"

        @tool
        def charge(cents: int, ctx: ToolContext) -> str:
            """Charge a card."""
            with effects_file.open("a") as f:
                f.write(ctx.idempotency_key + "\n")
            return "charged"

        @charge.reconciler
        def _done(key: str) -> object:
            done = effects_file.read_text().split() if effects_file.exists() else []
            return "charged" if key in done else NOT_APPLIED

        store = SQLiteStore(tmp_path / "t.db")
        try:
            resumed: RunStatus | str
            try:
                resumed = (await Runner(store).resume("run_v", _agent(charge))).status
            except RunLeasedError:
                resumed = "refused"
        finally:
            await store.close()
            (tmp_path / "go").touch()
        out, err = service.communicate(timeout=60)
        assert out.strip() == "needs_attention", err
        assert effects_file.read_text().count("\n") == 1, resumed  # charged once
        assert resumed in ("refused", RunStatus.NEEDS_ATTENTION)
    finally:
        if service.poll() is None:
            service.kill()
            service.communicate()
