"""The Python API refuses misuse with typed errors that say what to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from tether.core import ConfigurationError, RunStatus, UsageError
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner
from tether.tools import tool


@tool
def ping() -> str:
    """Ping."""
    return "pong"


def test_a_path_is_accepted_where_a_store_is_expected(tmp_path: Path) -> None:
    runner = Runner(tmp_path / "agents.db")
    result = runner.run_sync(Agent(name="a", model=ScriptedModel(["hi"])), "go")
    assert result.status == RunStatus.COMPLETED
    runner_from_text = Runner(str(tmp_path / "agents.db"))
    again = runner_from_text.resume_sync(result.run_id, Agent(name="a", model=ScriptedModel([])))
    assert again.output == "hi"


def test_something_else_is_refused_with_a_typed_error() -> None:
    with pytest.raises(ConfigurationError, match="takes a Store or a database path"):
        Runner(42)  # type: ignore[arg-type]


async def test_run_sync_inside_a_running_loop_says_to_await(tmp_path: Path) -> None:
    runner = Runner(tmp_path / "t.db")
    with pytest.raises(UsageError) as refused:
        runner.run_sync(Agent(name="a", model=ScriptedModel(["hi"])), "go")
    assert "await runner.run" in (refused.value.hint or "")


def test_two_tools_of_one_name_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="more than one tool named ping"):
        Agent(name="a", tools=[ping, ping])


async def test_a_failed_runs_error_is_typed(tmp_path: Path) -> None:
    from tether.core import BudgetExceededError, TetherError, ToolCall
    from tether.models import FunctionModel
    from tether.runtime import Budget

    runner = Runner(tmp_path / "t.db")
    looping = Agent(name="loop", model=FunctionModel(lambda request: ToolCall.of("ping")),
                    tools=[ping], budget=Budget(max_steps=2))
    result = await runner.run(looping, "go")
    assert isinstance(result.error, BudgetExceededError)
    assert result.error.limit == "max_steps" and result.error.hint
    assert result.error.details["type"] == "BudgetExceededError"
    # an error type the reader does not know is still a TetherError with its details
    odd = TetherError.from_dict({"type": "SomethingNew", "message": "m", "extra": 1})
    assert type(odd) is TetherError and odd.message == "m" and odd.details["extra"] == 1

