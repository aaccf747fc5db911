"""Attacker's review (issue 16): a toolset that fails to start or to list its tools
when a run begins. Nothing is journaled then, so the error must not send the user to
`tether resume` of a run that does not exist, and it is a typed Tether error."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self

import pytest

from tether.core import RunNotFoundError, ToolError
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import BaseToolset, StepContext, ToolContext, ToolDef


class Broken(BaseToolset):
    def __init__(self, where: str) -> None:
        self.where = where
        self.entered = self.exited = 0

    async def __aenter__(self) -> Self:
        self.entered += 1
        if self.where == "enter":
            raise OSError("connection refused by the tool server")
        return self

    async def __aexit__(self, *exc: Any) -> None:
        self.exited += 1

    async def list_tools(self, ctx: StepContext) -> Sequence[ToolDef]:
        if self.where == "list":
            raise OSError("tool server hung up")
        return []

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        raise AssertionError("never called")


@pytest.mark.parametrize("where", ["list"])
async def test_a_toolset_failing_at_the_start_of_a_run_says_what_to_do(
        tmp_path: Path, where: str) -> None:
    """Fixed: a failing ``list_tools`` said "then `tether resume RUN_ID`" though no
    run was journaled. (An error from ``__aenter__`` stays raw by design:
    tests/runtime/test_toolsets_run.py pins it.)"""
    store = SQLiteStore(tmp_path / "t.db")
    toolset = Broken(where)
    agent = Agent(name="a", tools=[toolset], model=ScriptedModel(["hi"]))
    with pytest.raises(ToolError) as raised:
        await Runner(store).run(agent, "go", run_id="run_broken")
    assert "OSError" in raised.value.message
    assert "resume" not in raised.value.message
    assert "run the agent again" in (raised.value.hint or "")
    with pytest.raises(RunNotFoundError):  # indeed nothing to resume
        await store.read("run_broken")
    assert toolset.entered == 1 and toolset.exited == (1 if where == "list" else 0)
    await store.close()
