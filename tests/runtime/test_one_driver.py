"""One driver per run: a live run cannot be resumed or resolved by another process; a
dead driver's run is taken over (at once on this host, after its lease lapses elsewhere)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tether.core import Event, EventType, LeaseLostError, RunLeasedError, RunStatus
from tether.runtime import Runner
from tether.store import SQLiteStore

DRIVER = '''
import asyncio, sys, time
from pathlib import Path
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import ToolContext, tool

HERE = Path(sys.argv[2])

@tool
def charge(cents: int, ctx: ToolContext) -> str:
    """Charge a card (not idempotent, no reconcile: a call in doubt needs a human)."""
    (HERE / "started").touch()
    while not (HERE / "go").exists():
        time.sleep(0.02)
    with (HERE / "effects").open("a") as f:
        f.write(f"charge {ctx.idempotency_key}\\n")
    return "charged"

@tool(idempotent=True)
def note(text: str, ctx: ToolContext) -> str:
    """Idempotent note."""
    with (HERE / "effects").open("a") as f:
        f.write(f"note {ctx.idempotency_key}\\n")
    return "noted"

def agent():
    return Agent(name="one", model=ScriptedModel([ToolCall.of("charge", cents=5),
                 ToolCall.of("note", text="x"), "done"]), tools=[charge, note])

async def main():
    store = SQLiteStore(sys.argv[1])
    runner = Runner(store, lease_ttl_s=float(sys.argv[4]))
    if sys.argv[3] == "run":
        result = await runner.run(agent(), "go", run_id="run_one")
    else:
        result = await runner.resume("run_one", agent())
    print(result.status)
    await store.close()

asyncio.run(main())
'''


def _start(tmp_path: Path, mode: str, ttl: float = 30.0) -> subprocess.Popen[str]:
    script = tmp_path / "driver.py"
    if not script.exists():  # rewriting it truncates it under a racer still reading it
        script.write_text(DRIVER)
    return subprocess.Popen([sys.executable, str(script), str(tmp_path / "t.db"), str(tmp_path),
                             mode, str(ttl)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)


async def test_a_live_run_cannot_be_resumed_or_resolved(tmp_path: Path) -> None:
    driver = _start(tmp_path, "run")
    _wait_for(tmp_path / "started", driver)
    store = SQLiteStore(tmp_path / "t.db")
    try:
        from tether.models import ScriptedModel
        from tether.runtime import Agent

        with pytest.raises(RunLeasedError) as refused:
            await Runner(store).resume("run_one", Agent(name="one", model=ScriptedModel([])))
        assert "being driven by" in refused.value.message and refused.value.owner
        (intent,) = [e for e in await store.read("run_one") if e.type == EventType.TOOL_INTENT]
        with pytest.raises(RunLeasedError):
            await Runner(store).resolve("run_one", intent.payload["call_id"], result="x")
        before = await store.read("run_one")
    finally:
        await store.close()
    (tmp_path / "go").touch()
    out, err = driver.communicate(timeout=60)
    assert out.strip() == "completed", err
    assert (tmp_path / "effects").read_text().count("charge") == 1
    store = SQLiteStore(tmp_path / "t.db")
    try:
        after = await store.read("run_one")
    finally:
        await store.close()
    assert after[: len(before)] == before  # the refusals wrote nothing
    assert not [e for e in after if e.payload.get("resolved_by")]


async def test_a_killed_driver_is_taken_over_at_once_on_this_host(tmp_path: Path) -> None:
    driver = _start(tmp_path, "run")
    _wait_for(tmp_path / "started", driver)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    (tmp_path / "go").touch()
    # Resumed at once: the charge is in doubt (needs a human), never run twice.
    resumer = _start(tmp_path, "resume")
    out, err = resumer.communicate(timeout=60)
    assert out.strip() == "needs_attention", err
    assert "charge" not in (tmp_path / "effects").read_text() if (
        tmp_path / "effects").exists() else True


async def test_two_resumers_at_once_one_drives(tmp_path: Path) -> None:
    driver = _start(tmp_path, "run")
    _wait_for(tmp_path / "started", driver)
    driver.send_signal(signal.SIGKILL)
    driver.communicate()
    store = SQLiteStore(tmp_path / "t.db")
    (intent,) = [e for e in await store.read("run_one") if e.type == EventType.TOOL_INTENT]
    await Runner(store).resolve("run_one", intent.payload["call_id"], result="charged")
    await store.close()
    (tmp_path / "started").unlink()
    racers = [_start(tmp_path, "resume") for _ in range(4)]
    results = [r.communicate(timeout=60) for r in racers]
    outcomes = sorted(out.strip() or ("refused" if "RunLeasedError" in err or
                                      "ConcurrentWriteError" in err else err)
                      for out, err in results)
    assert outcomes.count("completed") >= 1
    assert set(outcomes) <= {"completed", "refused"}, outcomes
    notes = (tmp_path / "effects").read_text().splitlines()
    assert len(notes) == len(set(notes)) == 1  # the idempotent note ran once, once keyed


async def test_a_lease_held_elsewhere_is_taken_over_only_after_it_lapses(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "t.db")
    started = Event(run_id="run_far", seq=1, type=EventType.RUN_STARTED, step=0,
                    ts=time.time(), payload={"agent": "a", "task": "t"})
    far = await store.acquire([started], owner="another-host:123:456", ttl_s=0.5)
    from tether.models import ScriptedModel
    from tether.runtime import Agent

    agent = Agent(name="a", model=ScriptedModel(["done"]))
    with pytest.raises(RunLeasedError):
        await Runner(store).resume("run_far", agent)
    await asyncio.sleep(0.6)
    result = await Runner(store).resume("run_far", agent)
    assert result.status == RunStatus.COMPLETED
    # The far process wakes up and tries to write: fenced off, nothing written.
    resumed = Event(run_id="run_far", seq=len(await store.read("run_far")) + 1,
                    type=EventType.DECISION, step=0, ts=time.time(), payload={})
    with pytest.raises(LeaseLostError):
        await store.append([resumed], lease=far)
    await store.close()
    assert os.getpid()  # the test process itself was never the far owner
