"""Every breaker transition reaches the journal: whatever a tool does (succeeds, fails,
asks the model to retry) and however time passes between calls, the ``breaker`` events
of a run chain from ``closed`` to the breaker's state now, one move at a time."""

from __future__ import annotations

import random

import pytest

from tether.core import EventType, ModelRetry, RunStatus, ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, BreakerBoard, BreakerSettings, Policy, RetryPolicy, Runner
from tether.store import SQLiteStore
from tether.testing import FakeClock
from tether.tools import tool

CALLS = 40


@pytest.mark.parametrize("seed", range(6))
async def test_the_breaker_events_chain_whatever_the_tool_does(store: SQLiteStore,
                                                               seed: int) -> None:
    rng = random.Random(seed)
    kinds = [rng.choice(["ok", "fail", "retry"]) for _ in range(CALLS)]
    ran: list[int] = []

    @tool(inline=True)
    def flaky(i: int) -> str:
        """Succeeds, fails or asks for another request, as the seed says."""
        ran.append(i)
        if kinds[i] == "fail":
            raise ConnectionError("backend down")
        if kinds[i] == "retry":
            raise ModelRetry("ask again")
        return "ok"

    clock = FakeClock()

    def model(request: ModelRequest) -> ToolCall | str:
        clock.advance(rng.choice([0.0, 1.0, 6.0]))  # sometimes past the reset timeout
        i = request.step - 1
        return ToolCall.of("flaky", call_id=f"c{i}", i=i) if i < CALLS else "done"

    board = BreakerBoard()
    policy = Policy(tool_retry=RetryPolicy(max_attempts={}),
                    breaker=BreakerSettings(failure_threshold=2, reset_timeout_s=5))
    agent = Agent(name="b", model=FunctionModel(model), tools=[flaky], policy=policy)
    result = await Runner(store, clock=clock, breakers=board).run(agent, "go")
    assert result.status == RunStatus.COMPLETED
    events = await store.read(result.run_id)
    moves = [(e.payload["from_state"], e.payload["to_state"])
             for e in events if e.type == EventType.BREAKER]
    state = "closed"
    for before, after in moves:
        assert before == state, f"a transition to {before!r} is missing: {moves}"
        state = after
    assert state == board.states()["tool:flaky"]
    assert ("half_open", "closed") in moves or not any(m[1] == "half_open" for m in moves)
    assert len(ran) < CALLS  # the breaker did refuse calls


@pytest.mark.parametrize("seed", range(6))
async def test_a_models_breaker_events_chain_across_calls_and_fallbacks(seed: int) -> None:
    """The same attack on the model path, with no Runner and no store: a primary that
    fails at random, a backup behind it, time passing between calls."""
    from tether.core import TransientModelError
    from tether.models import ScriptedModel
    from tether.runtime._model_call import call_model

    from .test_call_path import ListJournal, context, request

    rng = random.Random(seed)
    clock = FakeClock()

    def primary(req: ModelRequest) -> str:
        if rng.random() < 0.6:
            raise TransientModelError("503")
        return "primary"

    board = BreakerBoard()
    policy = Policy(model_retry=RetryPolicy(max_attempts={"transient": 2}),
                    breaker=BreakerSettings(failure_threshold=2, reset_timeout_s=5))
    journal = ListJournal(clock)
    chain = [FunctionModel(primary, model_name="p"), ScriptedModel(["backup"] * CALLS)]
    for step in range(1, CALLS + 1):
        clock.advance(rng.choice([0.0, 1.0, 6.0]))
        await call_model(context(journal, policy=policy, board=board), chain, request(step))
    moves = [(b["name"], b["from_state"], b["to_state"])
             for b in journal.of(EventType.BREAKER)]
    states: dict[str, str] = {}
    for name, before, after in moves:
        assert before == states.get(name, "closed"), f"a transition is missing: {moves}"
        states[name] = after
    assert states == {k: v for k, v in board.states().items() if k in states}
    assert moves  # the attack did open the breaker


def test_a_breaker_lets_its_probe_through_exactly_at_the_reset_time() -> None:
    """Opened at a time whose sum with the reset timeout rounds down (float spacing
    doubles past 1024 s), the breaker still half-opens once that much time passed."""
    from tether.runtime import Breaker, BreakerSettings

    opened = 1000.2769759355689
    assert (opened + 30) - opened < 30  # the rounding this test is about
    breaker = Breaker("model:m", BreakerSettings(failure_threshold=1, reset_timeout_s=30))
    breaker.on_failure(opened, "TransientModelError")
    assert breaker.state == "open"
    allowed, transition = breaker.before_call(opened + 30)
    assert allowed and transition is not None and transition.to_state == "half_open"
    assert breaker.retry_in(opened + 30) == 0.0
