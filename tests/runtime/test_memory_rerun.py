"""A remember call rerun after a crash between its memory write and its result: the
model must see what the first attempt did ("added"), not "duplicate". Real SQLite
file, a real child process SIGKILLed right after the write's commit."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # run as a child process: the repository root is importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.runtime.memory_agent import memory_store  # noqa: E402
from tether.core import Event, EventType, Message, ToolCall  # noqa: E402
from tether.memory import EstimateTokenCounter  # noqa: E402
from tether.models import FunctionModel, ModelRequest  # noqa: E402
from tether.runtime import Agent, Budget, MemoryConfig, Runner  # noqa: E402
from tether.store import Lease, SQLiteStore  # noqa: E402

pytest.importorskip("sqlite_vec")

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "run_remember_rerun"
FACT = "The loading dock closes at 17:30 on fridays"


class KillAfterWrite(SQLiteStore):
    """SIGKILLs the process right after committing a tool call's memory write."""

    async def append(self, events: Sequence[Event], *, lease: Lease | None = None,
                     **kwargs: Any) -> None:
        await super().append(events, lease=lease, **kwargs)
        if any(e.type == EventType.MEMORY_WRITE for e in await self.read(RUN_ID)):
            os.kill(os.getpid(), signal.SIGKILL)


def _agent(db: Path) -> Agent:
    def answer(request: ModelRequest) -> Message:
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("remember", text=FACT, key="dock"),))
        return Message.assistant("noted")

    return Agent(name="dock", instructions="Remember.", model=FunctionModel(answer),
                 budget=Budget(max_steps=4),
                 memory=MemoryConfig(store=memory_store(db), counter=EstimateTokenCounter()))


def _results(db: Path) -> list[str]:
    events = asyncio.run(SQLiteStore(db).read(RUN_ID))
    return [str(e.payload["content"]) for e in events
            if e.type == EventType.TOOL_RESULT and e.payload["tool"] == "remember"]


def test_a_rerun_remember_reports_what_the_first_attempt_did(tmp_path: Path) -> None:
    ref = tmp_path / "reference.db"
    done = Runner(SQLiteStore(ref)).run_sync(_agent(ref), "Note the dock hours.",
                                             run_id=RUN_ID)
    assert str(done.status) == "completed", done.error
    db = tmp_path / "killed.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    child = subprocess.run([sys.executable, __file__, str(db)], capture_output=True,
                           text=True, timeout=300, env=env)
    assert child.returncode == -signal.SIGKILL, child.stderr
    events = asyncio.run(SQLiteStore(db).read(RUN_ID))
    assert [e.payload["action"] for e in events if e.type == EventType.MEMORY_WRITE] == [
        "added"]
    assert _results(db) == []  # killed between the write and the call's result
    resumed = asyncio.run(Runner(SQLiteStore(db)).resume(RUN_ID, _agent(db)))
    assert str(resumed.status) == "completed", resumed.error
    assert _results(db) == _results(ref)
    assert _results(db)[0].startswith("added: mem_")
    writes = [e.payload["action"] for e in asyncio.run(SQLiteStore(db).read(RUN_ID))
              if e.type == EventType.MEMORY_WRITE]
    assert writes == ["added"]  # nothing written twice


if __name__ == "__main__":
    path = Path(sys.argv[1])
    asyncio.run(Runner(KillAfterWrite(path)).run(_agent(path), "Note the dock hours.",
                                                 run_id=RUN_ID))
