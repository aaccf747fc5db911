"""The agents of the committed journal ``journal_format1.db`` (made by
``make_journal_format1.py``), shared by the script and by the test that resumes it.

``fixture_agent`` makes, in one run: a model call that fails once and is retried, an
idempotent tool that fails once and is retried, a tool that keeps failing until its
circuit breaker opens, and a tool with a reconcile hook that SIGKILLs its process the
first time it runs (``FIXTURE_KILL`` set), leaving its call in doubt.
"""

from __future__ import annotations

import os
import signal

from tether.core import ToolCall, TransientModelError
from tether.models import FunctionModel, ModelRequest, step_of
from tether.runtime import Agent, BreakerSettings, Budget, Policy, RetryPolicy
from tether.tools import tool

KILL_ENV = "FIXTURE_KILL"
RUN_ID = "run_fixture_tools"
MEMORY_RUN_ID = "run_fixture_memory"
TEAM_RUN_ID = "run_fixture_team"
#: The step at which the memory run was killed (after its ``remember`` at step 10).
MEMORY_KILL_AT = 11
MEMORY_STEPS = 12

_flaky_calls: list[int] = []


@tool(idempotent=True)
def flaky(x: int) -> str:
    """Fails on its first attempt in a process, then answers.

    Args:
        x: A number.
    """
    _flaky_calls.append(x)
    if len(_flaky_calls) == 1:
        raise ConnectionError("connection reset by peer")
    return f"flaky says {x * 2}"


@tool(idempotent=True)
def broken() -> str:
    """Always fails."""
    raise ConnectionError("the service is down")


def _sent(key: str) -> str:
    return f"sent (checked by reconcile for {key})"


@tool(reconcile=_sent)
def send(to: str) -> str:
    """Send a message; not idempotent.

    Args:
        to: Who to send it to.
    """
    if os.environ.get(KILL_ENV):
        os.kill(os.getpid(), signal.SIGKILL)
    return f"sent to {to}"


def fixture_agent() -> Agent:
    calls = [0]

    def answer(request: ModelRequest) -> str | ToolCall:
        calls[0] += 1
        step = step_of(request)
        if step == 0 and calls[0] == 1:
            raise TransientModelError("the server is overloaded")
        if step == 0:
            return ToolCall.of("flaky", x=21)
        if step == 1:
            return ToolCall.of("broken")
        if step == 2:
            return ToolCall.of("send", to="ops")
        return "done: flaky, broken and send"

    fast = RetryPolicy(base_delay_s=0.01, max_delay_s=0.01)
    return Agent(name="fixture", instructions="Exercise every path.",
                 model=FunctionModel(answer), tools=[flaky, broken, send],
                 budget=Budget(max_steps=8),
                 policy=Policy(model_retry=fast, tool_retry=fast,
                               breaker=BreakerSettings(failure_threshold=2,
                                                       reset_timeout_s=3600)))
