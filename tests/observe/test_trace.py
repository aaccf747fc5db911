"""Span trees and exact prompts rebuilt from the journal."""

from __future__ import annotations

import json
from typing import Any

from tether.core import ContextLengthError, EventType, RunStatus, ToolCall, TransientModelError
from tether.models import FunctionModel, ModelRequest
from tether.observe import build_spans, build_trace, load_run_tree, prompts
from tether.runtime import Agent, Policy, RetryPolicy, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .conftest import Journal

FAST = RetryPolicy(max_attempts={"transient": 3}, base_delay_s=0.001)


@tool
def lookup(i: int) -> str:
    """Look a record up."""
    return f"record {i:04d} " * 30


@tool
def fail(x: int) -> str:
    """Always fails."""
    raise ValueError(f"cannot do {x}")


class Recorder:
    """A model that answers by step and records every prompt it actually received."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, list[dict[str, Any]]]] = []
        self.failed: set[int] = set()

    def __call__(self, request: ModelRequest) -> Any:
        step = request.step
        if step == 2 and 2 not in self.failed:
            self.failed.add(2)
            raise TransientModelError("overloaded", provider="scripted")
        if step == 4 and 4 not in self.failed:
            self.failed.add(4)
            raise ContextLengthError("too long", provider="scripted")
        self.seen.append((step, json.loads(json.dumps(
            [m.model_dump(exclude_defaults=True) for m in request.messages]))))
        if step < 5:
            return [ToolCall.of("lookup", i=step), ToolCall.of("fail", x=step)]
        return "done"


async def test_prompts_are_rebuilt_exactly_as_the_model_received_them(
    store: SQLiteStore,
) -> None:
    model = Recorder()
    agent = Agent(name="p", instructions="Look things up.", model=FunctionModel(model),
                  tools=[lookup, fail], policy=Policy(model_retry=FAST))
    result = await Runner(store).run(agent, "find records")
    assert result.status == RunStatus.COMPLETED, result.error
    events = await store.read(result.run_id)
    requests = [e for e in events if e.type == EventType.MODEL_REQUEST]
    rebuilt = prompts(events)
    assert [e.step for e in requests] == [step for step, _ in model.seen]
    for request, (_, seen) in zip(requests, model.seen, strict=True):
        assert json.loads(json.dumps(rebuilt[request.seq])) == seen, request.step
    # The compaction (step 4) dropped turns: the rebuilt prompt is the shorter one.
    assert any("left out" in str(m.get("content")) for m in rebuilt[requests[3].seq])


async def test_span_tree_of_a_run(store: SQLiteStore) -> None:
    model = Recorder()
    agent = Agent(name="tree", model=FunctionModel(model, model_name="m-1"),
                  tools=[lookup, fail], policy=Policy(model_retry=FAST))
    result = await Runner(store).run(agent, "find records")
    root = build_spans(await store.read(result.run_id))
    assert (root.kind, root.name, root.status) == ("run", "invoke_agent tree", "completed")
    steps = root.children
    assert [s.name for s in steps] == [f"step {k}" for k in range(1, 6)]
    first = steps[0]
    assert [(c.kind, c.name, c.status) for c in first.children] == [
        ("model", "chat m-1", "ok"), ("tool", "execute_tool lookup", "ok"),
        ("tool", "execute_tool fail", "error")]
    assert first.status == "error"  # one of its calls failed
    assert first.children[2].attrs["error"]["type"] == "ValueError"
    assert first.children[1].attrs["arguments"] == {"i": 1}
    # The model's retry belongs to step 2's model call.
    chat2 = steps[1].children[0]
    assert [e.type for e in chat2.events] == ["retry", "model.request", "model.response"]
    # Times nest: each child inside its step, each step inside the run.
    for step in steps:
        assert root.start <= step.start <= step.end <= root.end  # type: ignore[operator]
        for child in step.children:
            assert step.start <= child.start <= child.end <= step.end  # type: ignore[operator]
    assert root.input_tokens == sum(s.input_tokens for s in steps) > 0
    assert root.attrs["steps"] == 5


async def test_sub_runs_hang_under_the_span_that_started_them(store: SQLiteStore) -> None:
    parent = Journal("run_parent").started("planner", tools=["delegate"])
    parent.model(1, calls=[("delegate", {"task": "research"})], cost=0.01)
    parent.add(EventType.SUBRUN_STARTED, 1, {"child_run_id": "run_child", "agent": "worker"},
               span="s1.t0")
    child = Journal("run_child", t0=parent.ts).started("worker", parent="run_parent")
    child.model(1, answer="found it", cost=0.002)
    parent.ts = child.ts
    parent.add(EventType.SUBRUN_COMPLETED, 1, {"child_run_id": "run_child",
                                               "status": "completed"}, span="s1.t0")
    parent.result(1, 0, "delegate", "found it")
    parent.model(2, answer="all done", cost=0.01)
    await parent.save(store)
    await child.save(store)

    root = build_trace(await load_run_tree(store, "run_parent"))
    tool_span = root.children[0].children[1]
    assert tool_span.name == "execute_tool delegate"
    sub = tool_span.children[0]
    assert (sub.run_id, sub.kind, sub.name, sub.parent_id) == (
        "run_child", "run", "invoke_agent worker", "s1.t0")
    assert sub.cost_usd == 0.002 and root.cost_usd == 0.02
    assert abs(root.total_cost() - 0.022) < 1e-12
    alone = build_trace(await load_run_tree(store, "run_parent", subruns=False))
    assert all(s.run_id == "run_parent" for s in alone.walk())
