"""The live stream: committed events and deltas to subscribers, isolated from commits."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest

from tether.core import Event, EventType, Redactor, RunStatus, ToolCall, UsageError
from tether.models import ModelRequest, ModelResponse, ScriptedModel, StreamDelta
from tether.runtime import Agent, Delta, EventStream, Lagged, Runner, StreamItem
from tether.store import SQLiteStore
from tether.tools import tool


@tool(idempotent=True)
async def fetch(page: int) -> str:
    """Fetch a page."""
    await asyncio.sleep(0)
    return f"page {page}"


def _agent(steps: int = 3) -> Agent:
    script: list[Any] = [ToolCall.of("fetch", page=i) for i in range(steps)]
    return Agent(name="reader", tools=[fetch], model=ScriptedModel([*script, "read"]))


async def test_deltas_and_events_arrive_in_order(store: SQLiteStore) -> None:
    runner = Runner(store)
    seen: list[StreamItem] = []
    async with runner.stream.subscribe() as sub:
        async def consume() -> None:
            async for item in sub:
                seen.append(item)

        reader = asyncio.create_task(consume())
        result = await runner.run(_agent(), "read")
        await asyncio.sleep(0)
    await reader
    assert result.status == RunStatus.COMPLETED
    journal = await store.read(result.run_id)
    events = [i for i in seen if isinstance(i, Event)]
    assert [e.seq for e in events] == [e.seq for e in journal]  # every commit, in order
    order = [(i.kind, i.data["call_id"]) if isinstance(i, Delta) else (i.type, i.payload.get(
        "call_id")) for i in seen if not isinstance(i, Lagged)]
    for e in journal:
        if e.type == EventType.TOOL_INTENT:
            call = e.payload["call_id"]
            positions = [order.index((k, call)) for k in (
                EventType.TOOL_INTENT, "tool.started", "tool.ended", EventType.TOOL_RESULT)]
            assert positions == sorted(positions), (call, order)
    deltas = [i for i in seen if isinstance(i, Delta)]
    assert len(deltas) == 6 and {d.data["outcome"] for d in deltas if
                                 d.kind == "tool.ended"} == {"ok"}
    assert not any(isinstance(i, Lagged) for i in seen) and sub.dropped == 0


async def test_a_subscriber_that_never_reads_loses_only_its_own_items(
    store: SQLiteStore,
) -> None:
    runner = Runner(store)
    stalled = runner.stream.subscribe(maxsize=3)
    only_events = runner.stream.subscribe(deltas=False)
    result = await runner.run(_agent(5), "read")
    assert result.status == RunStatus.COMPLETED
    journal = await store.read(result.run_id)
    assert stalled.dropped > 0
    kept = [stalled.get_nowait() for _ in range(3)]
    assert all(isinstance(k, Event | Delta) for k in kept)
    assert stalled.get_nowait() is None
    # The next item it gets says how many it missed.
    runner.stream.delta(result.run_id, "tool.started", 9, {"call_id": "x"})
    lagged = stalled.get_nowait()
    assert isinstance(lagged, Lagged) and lagged.dropped == stalled.dropped
    received = []
    while (item := only_events.get_nowait()) is not None:
        received.append(item)
    assert [e.seq for e in received if isinstance(e, Event)] == [e.seq for e in journal]
    assert not any(isinstance(i, Delta) for i in received)
    stalled.close()
    only_events.close()


async def test_observers_that_raise_or_stall_affect_nothing_but_themselves(
    store: SQLiteStore, caplog: pytest.LogCaptureFixture,
) -> None:
    release = threading.Event()
    calls = {"raising": 0, "stalled": 0, "good": 0}
    good: list[Event] = []

    def raising(events: Sequence[Event]) -> None:
        calls["raising"] += 1
        raise RuntimeError("observer bug")

    def stalled(events: Sequence[Event]) -> None:
        calls["stalled"] += 1
        release.wait(30)

    def fine(events: Sequence[Event]) -> None:
        calls["good"] += 1
        good.extend(events)

    runner = Runner(store, observers=[raising, stalled, fine],
                    stream=EventStream(flush_s=0.3))
    with caplog.at_level(logging.WARNING, logger="tether"):
        result = await runner.run(_agent(), "read")
    try:
        assert result.status == RunStatus.COMPLETED
        journal = await store.read(result.run_id)
        assert [e.seq for e in good] == [e.seq for e in journal]  # flushed before return
        assert calls["raising"] >= 1 and calls["stalled"] == 1
        failures = [r for r in caplog.records if "observer bug" in r.getMessage()]
        assert len(failures) == 1  # reported once
        assert any("still behind" in r.getMessage() for r in caplog.records)
        # The same Runner drives another run while the stalled observer still waits.
        second = await runner.run(_agent(1), "again")
        assert second.status == RunStatus.COMPLETED
    finally:
        release.set()


async def test_a_subscription_is_safe_from_another_thread_and_loop(store: SQLiteStore) -> None:
    runner = Runner(store)
    sub = runner.stream.subscribe(deltas=False)
    got: list[int] = []

    def other_thread() -> None:
        async def read() -> None:
            async for item in sub:
                if isinstance(item, Event):
                    got.append(item.seq)

        asyncio.run(read())

    thread = threading.Thread(target=other_thread)
    thread.start()
    result = await runner.run(_agent(2), "read")
    sub.close()
    await asyncio.to_thread(thread.join, 10)
    assert not thread.is_alive()
    assert got == [e.seq for e in await store.read(result.run_id)]


def test_a_subscription_holds_at_least_one_item() -> None:
    with pytest.raises(UsageError, match="at least 1"):
        EventStream().subscribe(maxsize=0)


class Streaming:
    """A model that streams its answers a word at a time (a fake provider)."""

    provider = "fake"
    model_name = "words"

    def __init__(self, answers: list[Any]) -> None:
        self.inner = ScriptedModel(answers)
        self.streamed = 0

    async def complete(self, request: ModelRequest) -> ModelResponse:
        return await self.inner.complete(request)

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta]:
        self.streamed += 1
        response = await self.inner.complete(request)
        for word in (response.message.content or "").split(" "):
            yield StreamDelta(text=word + " ")
        yield StreamDelta(response=response)


async def test_model_tokens_stream_only_to_those_who_ask_and_in_order(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TETHER_SECRET_ENV", "DEMO_TOKEN")
    monkeypatch.setenv("DEMO_TOKEN", "s3cr3t-value-123456")
    answer = "the answer is s3cr3t-value-123456 and more words"
    model = Streaming([ToolCall.of("fetch", page=1), answer])
    agent = Agent(name="s", tools=[fetch], model=model)
    runner = Runner(store, redactor=Redactor.from_env())
    plain = await runner.run(agent, "x")
    assert model.streamed == 0 and plain.output == answer  # nobody asked: complete()
    with runner.stream.subscribe(tokens=True) as sub:
        result = await runner.run(agent, "x")
        items = []
        while (item := sub.get_nowait()) is not None:
            items.append(item)
    assert result.output == answer and model.streamed == 2
    tokens = [i.data["text"] for i in items if isinstance(i, Delta) and i.kind == "model.token"]
    assert "".join(tokens).split() == [
        "the", "answer", "is", "[REDACTED:env:DEMO_TOKEN]", "and", "more", "words"]
    completed = next(i for i in items if isinstance(i, Event) and i.type == "run.completed")
    assert items.index(completed) > max(i for i, x in enumerate(items)
                                        if isinstance(x, Delta) and x.kind == "model.token")
