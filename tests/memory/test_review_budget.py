"""Attacks on the token budget (review of issue 18): text the estimate under-counts,
and what the prompt carries besides its messages (the tools' definitions)."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from tether.core import Message, ToolCall
from tether.memory import ContextBuilder, EstimateTokenCounter, message_tokens
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Budget, MemoryConfig, Runner
from tether.store import SQLiteStore
from tether.tools import Tool, tool

from ..runtime.memory_agent import memory_store

BUDGET = 2000


def _hostile(kind: str, i: int) -> str:
    """About 300 estimated tokens of text of ``kind``, distinct per ``i``."""
    if kind == "base64":
        blob = b"".join(hashlib.sha256(f"{i}:{j}".encode()).digest() for j in range(20))
        return f"attachment {i}: " + base64.b64encode(blob).decode()
    if kind == "zalgo":
        return f"{i} " + "h̸̛̰e̵̳͝l̶̰̈l̷̺̾ơ̶̱ " * 15
    if kind == "korean":
        return f"{i} " + "안녕하세요 오늘 날씨가 정말 좋네요 " * 12
    if kind == "emoji":
        return f"{i} " + "🔑🎉👍🏽🇫🇷" * 50
    return f"{i}:" + "\t" * 3000  # whitespace: an indented dump with nothing else


@pytest.mark.parametrize("kind", ["base64", "zalgo", "tabs", "korean", "emoji"])
def test_a_prompt_built_with_the_estimate_fits_the_real_tokenizer(kind: str) -> None:
    tokens = pytest.importorskip("tether.memory._tokens")
    try:
        real = tokens.LlamaTokenCounter()
    except Exception as e:  # noqa: BLE001 - no local model: nothing to compare with
        pytest.skip(f"the local model's tokenizer is not installed ({e})")
    history: list[Message] = []
    for i in range(12):
        call = ToolCall.of("fetch", call_id=f"c{i}", item=i)
        history += [Message.assistant(None, (call,)), Message.tool(call, _hostile(kind, i))]
    built = ContextBuilder(budget=BUDGET, counter=EstimateTokenCounter()).build(
        instructions="Summarise the fetched items.", task="Fetch twelve items.",
        history=history)
    assert built.tokens <= BUDGET  # what the builder believes
    assert sum(message_tokens(m, real.count) for m in built.messages) <= BUDGET


def _tools(n: int) -> list[Tool]:
    made = []
    for i in range(n):
        def run(order_id: str, region: str, include_history: bool = False) -> str:
            return f"order {order_id} ({region}): " + "line shipped on time; " * 300
        run.__doc__ = (f"Look up an order in warehouse system number {i}, with its lines, "
                       "carrier, customs status and every change since it was placed.\n\n"
                       "Args:\n    order_id: The order's id as printed on the invoice.\n"
                       "    region: The sales region (EU, US, APAC).\n"
                       "    include_history: Also list every change of the order.\n")
        made.append(tool(name=f"orders_{i}", idempotent=True)(run))
    return made


def _orders_run(tmp_path: Path, budget: int, steps: int) -> tuple[Any, list[ModelRequest]]:
    pytest.importorskip("sqlite_vec")
    sent: list[ModelRequest] = []

    def answer(request: ModelRequest) -> Message:
        sent.append(request)
        if request.step < steps:  # each step a call whose result is a page of text
            return Message.assistant(None, (ToolCall.of(
                f"orders_{request.step % 30}", order_id=str(request.step), region="EU"),))
        return Message.assistant("done")

    db = tmp_path / "tether.db"
    agent = Agent(name="orders", instructions="Answer about orders.",
                  model=FunctionModel(answer), tools=_tools(30),
                  budget=Budget(max_steps=steps + 1),
                  memory=MemoryConfig(budget=budget, store=memory_store(db),
                                      counter=EstimateTokenCounter(),
                                      large_result_tokens=5000))
    return Runner(SQLiteStore(db)).run_sync(agent, "Where is order 42?"), sent


def test_the_budget_covers_the_tools_the_prompt_declares(tmp_path: Path) -> None:
    """Every prompt, messages and declared tools (memory's four included) together,
    fits the budget while the history grows well past it."""
    budget = 9000  # the 34 tools' definitions take about 6000 of it
    counter = EstimateTokenCounter()
    result, sent = _orders_run(tmp_path, budget, steps=8)
    assert str(result.status) == "completed", result.error
    assert len(sent) == 8
    for request in sent:
        messages = sum(message_tokens(m, counter.count) for m in request.messages)
        declared = sum(counter.count(json.dumps(spec.model_dump())) for spec in request.tools)
        assert declared > 5000
        assert messages + declared <= budget


def test_tools_alone_over_the_budget_fail_the_run_saying_so(tmp_path: Path) -> None:
    """30 tools' definitions take more than a 1200-token budget: the run fails cleanly
    (context_length_exceeded, naming the tools) before any prompt is sent."""
    result, sent = _orders_run(tmp_path, 1200, steps=2)
    assert str(result.status) == "failed" and sent == []
    assert result.error is not None and "tool" in str(result.error)
