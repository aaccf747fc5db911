"""An agent with a toolset that logs its lifecycle, for SIGKILL tests.

Run as a script (``DB RUN_ID run|resume``) it drives the run in a child process; with
``TOOLSET_HANG=1`` its tools record that they started, then hang until killed.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

if __name__ == "__main__":  # run as a script: the repository root is importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tether.core import ToolCall  # noqa: E402
from tether.models import ScriptedModel  # noqa: E402
from tether.runtime import Agent, Runner  # noqa: E402
from tether.tools import (  # noqa: E402
    ApprovalRequiredToolset,
    FunctionToolset,
    StepContext,
    ToolContext,
    ToolDef,
    WrapperToolset,
    tool,
)

LOG_ENV = "TOOLSET_LOG"
HANG_ENV = "TOOLSET_HANG"


def record(line: str) -> None:
    with Path(os.environ[LOG_ENV]).open("a") as f:
        f.write(f"{line} {os.getpid()}\n")
        f.flush()
        os.fsync(f.fileno())


def lines() -> list[list[str]]:
    path = Path(os.environ[LOG_ENV])
    return [line.split() for line in path.read_text().splitlines()] if path.exists() else []


def _hang() -> None:
    if os.environ.get(HANG_ENV) == "1":
        time.sleep(60)


@tool(idempotent=True)
def note(text: str) -> str:
    """Note something (idempotent)."""
    record(f"note {text}")
    _hang()
    return f"noted {text}"


@tool
def pay(cents: int, ctx: ToolContext) -> str:
    """Pay (not idempotent, no reconcile hook)."""
    record(f"pay {cents}")
    _hang()
    return f"paid {cents}"


class Logged(WrapperToolset):
    """Records entering and exiting with the process id."""

    async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
        return await self.wrapped.list_tools(ctx)

    async def __aenter__(self) -> Self:
        record("enter")
        return self

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None,
                        tb: TracebackType | None) -> None:
        record("exit")


def make_agent() -> Agent:
    tools: Any = [Logged(FunctionToolset([note])),
                  ApprovalRequiredToolset(FunctionToolset([pay]))]
    return Agent(name="kept", tools=tools, model=ScriptedModel([
        ToolCall.of("note", text="a"), ToolCall.of("pay", cents=500), "done"]),
        max_recoveries=5)


async def _main(db: str, run_id: str, mode: str) -> None:
    runner = Runner(db)
    if mode == "run":
        result = await runner.run(make_agent(), "note, then pay", run_id=run_id)
    else:
        result = await runner.resume(run_id, make_agent())
    print(result.status)


if __name__ == "__main__":
    asyncio.run(_main(*sys.argv[1:4]))
