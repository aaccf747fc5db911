"""Every payload today's writers journal is exactly its model's dump.

The scripted scenarios of the journal fixture (``tests/data/journal_agents.py``: model
and tool retries, a breaker, a tool error; an agent with memory; a team that delegates
to sub-runs) and a run held for approval then denied are run with today's code on a
fresh file. Every stored payload must parse into its type's model with no field the
model does not declare (a writer's new field goes into the model first), and dump back
to the same JSON text, field order included: building a payload with its model, or
reading one through it, never changes the stored bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.data import journal_agents as ja
from tether.core import PAYLOADS, Event, FatalModelError, ToolCall, parse_payload
from tether.models import FunctionModel, ModelRequest, ScriptedModel
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import ApprovalRequiredToolset, FunctionToolset, tool


@tool
def wire(amount: int) -> str:
    """Send money."""
    return f"sent {amount}"


#: Writers whose field order the model cannot give (one declared order serves every
#: writer of a type): the denied call's ``tool.error`` (``Runner.approve``) puts
#: ``content`` and ``denied`` before ``error``. It stays a dict so its stored bytes do
#: not change; its dump is the same object in the model's order.
ORDER_OF_ITS_OWN = {("tool.error", "denied")}


def _check(events: list[Event]) -> set[str]:
    for e in events:
        model = PAYLOADS[e.type]
        parsed = parse_payload(e.type, e.payload)
        assert type(parsed) is model, e.type
        assert not parsed.model_extra, (e.type, sorted(parsed.model_extra or {}))
        assert parsed.dump() == e.payload, (e.type, e.payload)  # nothing lost or added
        if not any(t == e.type and key in e.payload for t, key in ORDER_OF_ITS_OWN):
            assert json.dumps(parsed.dump()) == json.dumps(e.payload), (e.type, e.payload)
    return {e.type for e in events}


async def test_todays_writers_store_exactly_their_models_dump(tmp_path: Path) -> None:
    from tests.orchestration.team import team
    from tests.runtime.memory_agent import agent as memory_agent
    from tests.runtime.memory_agent import memory_store

    db = tmp_path / "today.db"
    store = SQLiteStore(db)
    runner = Runner(store)
    tools = await runner.run(ja.fixture_agent(), "Exercise every path.")
    assert tools.status == "completed", tools
    crew = await runner.run(team(), "Research alpha, beta, gamma")
    assert crew.status == "completed", crew
    mstore = memory_store(db)
    remembered = await runner.run(memory_agent(ja.MEMORY_STEPS, store=mstore), "remember")
    assert remembered.status == "completed", remembered
    payer = Agent(name="payer", model=ScriptedModel(
        [ToolCall.of("wire", amount=5, call_id="w1"), "not sent"]),
        tools=[ApprovalRequiredToolset(FunctionToolset([wire]))])
    held = await runner.run(payer, "pay")
    assert held.status == "needs_attention", held
    await runner.approve(held.run_id, "w1", deny=True, reason="freeze week")
    denied = await runner.resume(held.run_id, payer)
    assert denied.status == "completed", denied
    def down(request: ModelRequest) -> str:
        raise FatalModelError("the account is closed", hint="pay", provider="function")

    moved = await runner.run(Agent(name="mover", model=FunctionModel(down),
                                   fallbacks=[ScriptedModel(["fine"])]), "go")
    assert moved.status == "completed", moved
    failed = await runner.run(Agent(name="failer", model=FunctionModel(down)), "go")
    assert failed.status == "failed", failed
    seen: set[str] = set()
    for run in await store.runs(limit=100):
        seen |= _check(await store.read(run.run_id))
    mstore.close()
    await store.close()
    assert {"run.started", "run.completed", "run.needs_attention", "model.request",
            "model.response", "model.error", "fallback", "run.failed", "retry", "breaker",
            "tool.intent",
            "tool.result", "tool.error", "decision", "context.built", "memory.recall",
            "memory.write", "subrun.started", "subrun.completed"} <= seen, seen
