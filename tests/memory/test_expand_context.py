"""An expand's result in the prompt: whole while it fits, masked again (saying so)
when it does not. Pure builder, estimate counter."""

from __future__ import annotations

from tether.core import Message, ToolCall
from tether.memory import ContextBuilder, EstimateTokenCounter


def _history(text: str) -> list[Message]:
    call = ToolCall.of("expand", call_id="c1", handle="mem_abc")
    return [Message.assistant(None, (call,)), Message.tool(call, text)]


TEXT = "".join(f"row {i}: sensor reading {i * 37} nominal\n" for i in range(300))


def test_an_expanded_text_is_whole_when_it_fits() -> None:
    built = ContextBuilder(budget=20000, counter=EstimateTokenCounter(),
                           large_result_tokens=100).build(
        instructions="Read.", task="Read the dump.", history=_history(TEXT))
    assert [m.content for m in built.messages if m.role == "tool"] == [TEXT]
    assert built.tokens <= 20000


def test_an_expanded_text_over_the_budget_is_masked_again_saying_so() -> None:
    builder = ContextBuilder(budget=1000, counter=EstimateTokenCounter(),
                             large_result_tokens=100)
    built = builder.build(instructions="Read.", task="Read the dump.",
                          history=_history(TEXT))
    shown = [m.content or "" for m in built.messages if m.role == "tool"]
    assert len(shown) == 1 and TEXT not in shown[0]
    assert "masked again" in shown[0] and "expand(handle=" in shown[0]
    assert built.tokens <= 1000
