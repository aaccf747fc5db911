"""Review: a lease that lapsed is not proof that its owner died.

A driver stopped with Ctrl-Z (SIGSTOP), or whose event loop is stalled, stops renewing
its lease. Once the lease lapsed, ``resume`` took the run over although the owner is a
live process of this very host (which ``owner_dead`` can tell), treated its call as in
doubt, reconciled it (not applied yet: the stopped driver had not got there) and ran it
again; the stopped driver, continued with ``fg``, then finished its own call: the card
was charged twice. Issue 15: "a lease whose owner died is taken over, and only then are
its open calls in doubt". Fixed: ``Runner.take_lease`` refuses a lapsed lease whose
owner is alive on this host, and the host part of an owner names its boot and pid
namespace too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tether.core import RunLeasedError, ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import NOT_APPLIED, Tool, ToolContext, tool

DRIVER = '''
import asyncio, sys, time
from pathlib import Path
from tether.core import ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import NOT_APPLIED, ToolContext, tool

HERE = Path(sys.argv[2])

@tool
def charge(cents: int, ctx: ToolContext) -> str:
    """Charge a card once (not idempotent; reconciled by key)."""
    (HERE / "started").touch()
    while not (HERE / "go").exists():
        time.sleep(0.01)
    with (HERE / "effects").open("a") as f:
        f.write(ctx.idempotency_key + "\\n")
    return "charged"

async def main():
    store = SQLiteStore(sys.argv[1])
    agent = Agent(name="c", model=ScriptedModel([ToolCall.of("charge", cents=5), "done"]),
                  tools=[charge])
    try:
        result = await Runner(store, lease_ttl_s=0.5).run(agent, "pay", run_id="run_z")
        print(result.status)
    finally:
        await store.close()

asyncio.run(main())
'''


def _charge(effects: Path) -> Tool:
    @tool
    def charge(cents: int, ctx: ToolContext) -> str:
        """Charge a card once (not idempotent; reconciled by key)."""
        with effects.open("a") as f:
            f.write(ctx.idempotency_key + "\n")
        return "charged"

    @charge.reconciler
    def _done(key: str) -> object:
        done = effects.read_text().split() if effects.exists() else []
        return "charged" if key in done else NOT_APPLIED

    return charge


def _spawn(argv: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_started(tmp_path: Path, driver: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not (tmp_path / "started").exists():
        assert driver.poll() is None and time.monotonic() < deadline, driver.communicate()
        time.sleep(0.01)


def _can_unshare() -> bool:
    return shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-p", "-f", "--mount-proc", "true"], capture_output=True).returncode == 0


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
async def test_a_stopped_live_driver_is_not_taken_over(tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    driver = _spawn([sys.executable, str(script), str(tmp_path / "t.db"), str(tmp_path)])
    try:
        _wait_started(tmp_path, driver)
        driver.send_signal(signal.SIGSTOP)  # Ctrl-Z
        await asyncio.sleep(1.5)  # its 0.5 s lease lapses; the process is alive all along
        (tmp_path / "go").touch()
        effects = tmp_path / "effects"
        agent = Agent(name="c", model=ScriptedModel([ToolCall.of("charge", cents=5), "done"]),
                      tools=[_charge(effects)])
        store = SQLiteStore(tmp_path / "t.db")
        try:
            with pytest.raises(RunLeasedError):
                await Runner(store, lease_ttl_s=0.5).resume("run_z", agent)
        finally:
            await store.close()
            driver.send_signal(signal.SIGCONT)  # fg
        out, err = driver.communicate(timeout=60)
        assert effects.read_text().count("\n") == 1, (out, err)  # charged once
        assert out.strip() == "completed", err
    finally:
        if driver.poll() is None:
            driver.send_signal(signal.SIGCONT)
            driver.kill()
            driver.communicate()


@pytest.mark.skipif(not _can_unshare(), reason="needs unshare(1) and pid namespaces")
async def test_a_live_driver_in_another_pid_namespace_is_not_taken_over(
    tmp_path: Path,
) -> None:
    """Two containers of one host (``docker run --network host``, the containers of a
    Kubernetes pod) share the host name but not the pid namespace: the driver's pid
    means another process here, so ``owner_dead`` declared a live driver dead."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.replace("lease_ttl_s=0.5", "lease_ttl_s=30"))
    driver = _spawn(["unshare", "-p", "-f", "--mount-proc", sys.executable, str(script),
                     str(tmp_path / "t.db"), str(tmp_path)])
    try:
        _wait_started(tmp_path, driver)
        effects = tmp_path / "effects"
        agent = Agent(name="c", model=ScriptedModel([ToolCall.of("charge", cents=5), "done"]),
                      tools=[_charge(effects)])
        store = SQLiteStore(tmp_path / "t.db")
        try:
            with pytest.raises(RunLeasedError):
                await Runner(store).resume("run_z", agent)
        finally:
            await store.close()
            (tmp_path / "go").touch()
        out, err = driver.communicate(timeout=60)
        assert effects.read_text().count("\n") == 1, (out, err)  # charged once
        assert out.strip() == "completed", err
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.communicate()
