"""The context builder: budget, pairs, masking, handles, determinism, replay."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tether.core import Message, ToolCall
from tether.memory import (
    ContextBudgetError,
    ContextBuilder,
    EstimateTokenCounter,
    Memory,
    MiniLMEmbedder,
    Namespace,
    SQLiteMemoryStore,
    memory_tools,
    message_tokens,
    offload_large_results,
)
from tether.tools import ToolContext

from .history import synthetic_history

INSTRUCTIONS = "You are a careful log analyst. Answer with facts from the logs."
TASK = "Find every error in the logs and summarise them."


def _memories(n: int) -> list[Memory]:
    return [Memory(handle=f"mem_{i:04d}", text=f"Remembered fact {i}: value {i * 7}",
                   namespace=Namespace(agent="a")) for i in range(n)]


def _recount(messages: tuple[Message, ...]) -> int:
    counter = EstimateTokenCounter()
    return sum(message_tokens(m, counter.count) for m in messages)


def _check_pairs(messages: tuple[Message, ...]) -> None:
    i = 0
    while i < len(messages):
        m = messages[i]
        assert m.role != "tool", f"tool result at {i} without its call"
        if m.role == "assistant" and m.tool_calls:
            ids = [c.id for c in m.tool_calls]
            got = [r.tool_call_id for r in messages[i + 1:i + 1 + len(ids)]]
            assert got == ids, f"calls {ids} answered by {got}"
            i += len(ids)
        i += 1


@pytest.mark.parametrize("budget", [8000, 3000])
def test_budget_never_exceeded_over_1000_steps(budget: int) -> None:
    history = synthetic_history(1000)
    builder = ContextBuilder(budget=budget)
    memories = _memories(30)
    ends = [i + 1 for i, m in enumerate(history)
            if i + 1 == len(history) or history[i + 1].role != "tool"]
    dropped_some = masked_some = False
    for end in ends:
        built = builder.build(instructions=INSTRUCTIONS, task=TASK, history=history[:end],
                              pinned=["The customer is Acme."], memories=memories)
        tokens = _recount(built.messages)
        assert tokens == built.tokens <= budget
        assert sum(p.tokens for p in built.parts) == built.tokens
        _check_pairs(built.messages)
        assert built.messages[0].role == "system" and built.messages[1].content == TASK
        dropped_some |= built.recipe["drop_cut"] > 0
        masked_some |= built.recipe["mask_cut"] > 0
    assert dropped_some and masked_some  # the test reached both regimes


def test_same_inputs_build_identical_prompts_and_replay() -> None:
    history = synthetic_history(300, seed=5)
    memories = _memories(12)

    def build() -> tuple[str, dict[str, object]]:
        b = ContextBuilder(budget=6000).build(
            instructions=INSTRUCTIONS, task=TASK, history=history, memories=memories,
            pinned=["p1", "p2"], refs=[f"evt:run_x:{i + 3}" for i in range(len(history))])
        return json.dumps([m.model_dump() for m in b.messages]), b.recipe

    first, recipe = build()
    second, _ = build()
    assert first == second
    stored = json.loads(json.dumps(recipe))  # as journaled
    again = ContextBuilder(budget=6000).replay(
        stored, instructions=INSTRUCTIONS, task=TASK, history=[*history, *history[:5]],
        pinned=["p1", "p2"], memories={m.handle: m for m in memories})
    assert json.dumps([m.model_dump() for m in again.messages]) == first
    assert "evt:run_x:" in first  # masked turns point at their journal events


def test_prefix_stays_stable_between_cut_points() -> None:
    history = synthetic_history(400, seed=9)
    builder = ContextBuilder(budget=8000, batch_turns=8)
    ends = [i + 1 for i, m in enumerate(history)
            if i + 1 == len(history) or history[i + 1].role != "tool"]
    previous: tuple[Message, ...] | None = None
    kept = 0
    for end in ends:
        built = builder.build(instructions=INSTRUCTIONS, task=TASK, history=history[:end])
        if previous is not None and built.messages[:len(previous)] == previous:
            kept += 1
        previous = built.messages
    assert kept / (len(ends) - 1) >= 0.75


def test_a_large_result_becomes_a_handle_that_expand_returns_whole(
        tmp_path: Path, embedder: MiniLMEmbedder) -> None:
    import asyncio

    store = SQLiteMemoryStore(tmp_path / "m.db", embedder=embedder)
    ns = Namespace(agent="a", run="r1")
    big = "".join(f"row {i}: temperature {i % 37} °C, status ok\n" for i in range(3000))
    call = ToolCall.of("dump_table", call_id="call_big", table="sensors")
    history = [Message.assistant(None, (call,)), Message.tool(call, big),
               Message.assistant("The table is large; let me look at it.")]
    builder = ContextBuilder(budget=4000)

    async def go() -> str:
        handles = await offload_large_results(store, history, namespace=ns,
                                              max_tokens=builder.large_result_tokens,
                                              count=builder.counter.count)
        built = builder.build(instructions=INSTRUCTIONS, task=TASK, history=history,
                              handles=handles)
        shown = built.messages[3].content or ""
        assert big not in shown and handles["call_big"] in shown
        assert built.tokens <= 4000
        expand = {t.name: t for t in memory_tools(store, ns)}["expand"]
        ctx = ToolContext(run_id="r1", step=2, call_id="c", tool="expand",
                          idempotency_key="r1-2-0")
        return await expand.invoke(expand.validate(json.dumps(
            {"handle": handles["call_big"]})), ctx)

    assert asyncio.run(go()) == big
    store.close()


def test_fixed_parts_over_budget_is_an_error() -> None:
    with pytest.raises(ContextBudgetError) as e:
        ContextBuilder(budget=50).build(instructions="x " * 400, task=TASK)
    assert e.value.hint


def test_a_reused_builder_matches_a_fresh_one() -> None:
    """The incremental caches never leak one history, ref or handle into another."""
    shared = ContextBuilder(budget=5000)
    a = synthetic_history(200, seed=1)
    b = synthetic_history(200, seed=2)
    big_calls = [m.tool_call_id for m in a if m.role == "tool" and len(m.content or "") > 5000]
    cases = [
        {"history": a}, {"history": b}, {"history": a[:150]}, {"history": a},
        {"history": a, "refs": [f"r{i}" for i in range(len(a))]},
        {"history": a, "handles": {big_calls[0]: "mem_x"}}, {"history": a},
    ]
    for case in cases:
        got = shared.build(instructions=INSTRUCTIONS, task=TASK, **case)  # type: ignore[arg-type]
        want = ContextBuilder(budget=5000).build(instructions=INSTRUCTIONS, task=TASK,
                                                 **case)  # type: ignore[arg-type]
        assert got.messages == want.messages and got.recipe == want.recipe
