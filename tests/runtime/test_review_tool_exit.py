"""Review (fixed): a tool that raises SystemExit (argparse on bad input, a CLI library, a stray
``sys.exit``) must not end the run by escaping ``Runner.run`` and leaving the run
``running``; it is the tool's failure, reported to the model like any other. The same
for a CancelledError a sync tool raises in its thread (fixed); not yet for an async or
inline tool (xfail)."""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

import pytest

from tether.core import EventType, RunStatus, ToolCall
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import Tool, tool


def _parse(flags: str) -> str:
    parser = argparse.ArgumentParser(prog="grep", exit_on_error=True)
    parser.add_argument("--count", type=int)
    return str(vars(parser.parse_args(flags.split())))  # "--count x": sys.exit(2)


def _tools() -> dict[str, Tool]:
    @tool
    def sync_cli(flags: str) -> str:
        """Run a command line (in a worker thread)."""
        return _parse(flags)

    @tool
    async def async_cli(flags: str) -> str:
        """Run a command line (async)."""
        return _parse(flags)

    @tool(inline=True)
    def inline_cli(flags: str) -> str:
        """Run a command line (inline)."""
        return _parse(flags)

    return {"sync": sync_cli, "async": async_cli, "inline": inline_cli}


@pytest.mark.parametrize("kind", ["sync", "async", "inline"])
async def test_a_tool_calling_sys_exit_fails_the_call_not_the_process(
    tmp_path: Path, kind: str, capsys: pytest.CaptureFixture[str]
) -> None:
    cli = _tools()[kind]
    agent = Agent(name="cli", model=ScriptedModel(
        [ToolCall.of(cli.name, flags="--count x"), "gave up on grep"]), tools=[cli])
    store = SQLiteStore(tmp_path / "t.db")
    try:
        result = await Runner(store).run(agent, "count")  # SystemExit escaped here
        events = await store.read(result.run_id)
    finally:
        await store.close()
    assert result.status == RunStatus.COMPLETED
    (error,) = [e for e in events if e.type == EventType.TOOL_ERROR]
    assert "SystemExit" in error.payload["content"]


_LEAK = ("an async or inline tool's own CancelledError escapes Runner.run and leaves the "
         "run running; tests/observe (test_jsonl_log, test_otel) use exactly that as their "
         "stand-in for a crash, so fixing it (_invoke: a done, cancelled future nobody "
         "cancelled is the tool's ToolError) needs those tests to crash another way")


def _leaky() -> dict[str, Tool]:
    @tool
    def sync_leak(x: int) -> str:
        """A client library that leaks a CancelledError of its own (in a thread)."""
        raise asyncio.CancelledError()

    @tool
    async def async_leak(x: int) -> str:
        """A client library that leaks a CancelledError of its own (async)."""
        raise asyncio.CancelledError()

    @tool(inline=True)
    def inline_leak(x: int) -> str:
        """A client library that leaks a CancelledError of its own (inline)."""
        raise asyncio.CancelledError()

    return {"sync": sync_leak, "async": async_leak, "inline": inline_leak}


@pytest.mark.parametrize("kind", [
    "sync",
    pytest.param("async", marks=pytest.mark.xfail(strict=True, reason=_LEAK)),
    pytest.param("inline", marks=pytest.mark.xfail(strict=True, reason=_LEAK)),
])
async def test_a_tool_raising_cancelled_error_fails_the_call(tmp_path: Path, kind: str) -> None:
    # Nobody cancelled the run: the CancelledError is the tool's own failure. It escaped
    # Runner.run and left the run `running`.
    leak = _leaky()[kind]
    agent = Agent(name="leak", model=ScriptedModel([ToolCall.of(leak.name, x=1), "done"]),
                  tools=[leak])
    store = SQLiteStore(tmp_path / "t.db")
    try:
        result = await Runner(store).run(agent, "go")
        events = await store.read(result.run_id)
    finally:
        await store.close()
    assert result.status == RunStatus.COMPLETED
    (error,) = [e for e in events if e.type == EventType.TOOL_ERROR]
    assert "CancelledError" in error.payload["content"]
