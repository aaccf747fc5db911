"""A package registers fold handlers for its events; they run on run, load and resume."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tether.core import Event, EventType, ToolCall, UsageError
from tether.models import ScriptedModel
from tether.runtime import Agent, Runner, RunState, fold, register_fold
from tether.store import SQLiteStore
from tether.tools import tool


@tool
def echo(text: str) -> str:
    """Echo the text.

    Args:
        text: What to echo.
    """
    return text


def _agent(*items: str | ToolCall) -> Agent:
    return Agent(name="echoer", model=ScriptedModel(list(items)), tools=[echo])


async def test_a_registered_handler_sees_its_events_on_run_and_load(
    tmp_path: Path,
) -> None:
    live: list[tuple[str, int]] = []

    def count(state: RunState, event: Event) -> None:
        live.append((state.run_id, event.seq))
        state.slot("audit")[event.payload["content"]] += 1

    unregister = register_fold(EventType.TOOL_RESULT, count, slot="audit", factory=Counter)
    try:
        store = SQLiteStore(tmp_path / "t.db")
        result = await Runner(store).run(
            _agent(ToolCall.of("echo", call_id="a", text="hi"),
                   ToolCall.of("echo", call_id="b", text="hi"), "done"), "go")
        journal = await store.read(result.run_id)
        seqs = [e.seq for e in journal if e.type == EventType.TOOL_RESULT]
        assert live == [(result.run_id, s) for s in seqs]  # as each result committed
        loaded = fold(result.run_id, journal)
        assert loaded.slot("audit") == Counter({"hi": 2})
        assert RunState(run_id="x").extensions == {}  # made on first use only
        await store.close()
    finally:
        unregister()
    assert fold(result.run_id, journal).extensions == {}  # unregistered: not run


async def test_a_resumed_run_folds_the_registered_state_before_continuing(
    tmp_path: Path,
) -> None:
    seen: list[int] = []

    def note(state: RunState, event: Event) -> None:
        seen.append(event.seq)
        state.slot("notes").append(event.payload.get("from_status"))

    unregister = register_fold(EventType.RUN_RESUMED, note, slot="notes", factory=list)
    try:
        store = SQLiteStore(tmp_path / "t.db")
        runner = Runner(store)
        failing = Agent(name="f", model=ScriptedModel([]), tools=[echo])
        first = await runner.run(failing, "go", run_id="run_r")
        assert first.status == "failed"  # the script is empty: a model error
        again = await runner.resume("run_r", _agent("done"))
        assert again.status == "completed"
        state = fold("run_r", await store.read("run_r"))
        assert state.slot("notes") == ["failed"]
        assert len(seen) == 2  # once live, once in the fold above
        await store.close()
    finally:
        unregister()


def test_slots_are_named_once() -> None:
    with pytest.raises(UsageError, match="factory"):
        register_fold("plugin.event", lambda s, e: None, slot="nofactory")
    unregister = register_fold("plugin.event", lambda s, e: None, slot="mine", factory=dict)
    try:
        with pytest.raises(UsageError, match="another factory"):
            register_fold("plugin.other", lambda s, e: None, slot="mine", factory=list)
        with pytest.raises(KeyError, match="no fold slot"):
            RunState(run_id="x").slot("unknown")
    finally:
        unregister()


def test_a_package_event_type_folds_without_a_builtin() -> None:
    def handler(state: RunState, event: Event) -> None:
        state.slot("plugin").append(event.payload["n"])

    unregister = register_fold("plugin.tick", handler, slot="plugin", factory=list)
    unregister_again = register_fold("plugin.tick", handler)  # once only
    try:
        events = [Event(run_id="r", seq=1, type=EventType.RUN_STARTED, step=0, ts=1.0,
                        payload={"agent": "a", "task": "t"}),
                  *(Event(run_id="r", seq=i, type="plugin.tick", step=0, ts=1.0,
                          payload={"n": i}) for i in (2, 3))]
        state = fold("r", events)
        assert state.slot("plugin") == [2, 3]
        assert state.seq == 3
    finally:
        unregister()
        unregister_again()
