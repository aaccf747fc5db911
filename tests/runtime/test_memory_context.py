"""Agents with memory: every prompt is built under the budget, journaled, and rebuilt
byte for byte by a resumed run (real SQLite files, real child processes, SIGKILL)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tether.core import EventType, Message, ToolCall
from tether.memory import EstimateTokenCounter, message_tokens
from tether.models import FunctionModel, ModelRequest
from tether.observe import prompts as journal_prompts
from tether.runtime import Agent, MemoryConfig, Runner
from tether.store import SQLiteStore

from .memory_agent import agent, big_output, memory_store

pytest.importorskip("sqlite_vec")

HELPER = Path(__file__).with_name("memory_agent.py")
ROOT = Path(__file__).resolve().parents[2]


def _prompts(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _messages(prompt: dict[str, Any]) -> list[Message]:
    return [Message.model_validate(m) for m in prompt["messages"]]


def _check_pairs(messages: list[Message]) -> None:
    """Every tool result follows the assistant message that called it, and every call
    of an assistant message is answered before the next assistant message."""
    open_calls: set[str] = set()
    for m in messages:
        if m.role == "assistant":
            assert not open_calls, f"calls {open_calls} left without their results"
            open_calls = {c.id for c in m.tool_calls}
        elif m.role == "tool":
            assert m.tool_call_id in open_calls, f"orphan tool result {m.tool_call_id}"
            open_calls.discard(m.tool_call_id)
    assert not open_calls


def _run(tmp_path: Path, steps: int, budget: int = 2000) -> tuple[SQLiteStore, str, Path]:
    db, prompts = tmp_path / "tether.db", tmp_path / "prompts.jsonl"
    store = SQLiteStore(db)
    mstore = memory_store(db)
    result = Runner(store).run_sync(agent(steps, prompts, store=mstore, budget=budget),
                                    "Inventory the warehouse.")
    assert str(result.status) == "completed", result.error
    return store, result.run_id, prompts


def test_budget_holds_over_a_long_run_and_pairs_stay_together(tmp_path: Path) -> None:
    steps, budget = 300, 2000
    store, run_id, prompts = _run(tmp_path, steps, budget)
    counter = EstimateTokenCounter()
    sent = _prompts(prompts)
    assert [p["step"] for p in sent] == list(range(1, steps + 1))
    naive = 0
    for prompt in sent:
        messages = _messages(prompt)
        # counted again here, from what the model received
        assert sum(message_tokens(m, counter.count) for m in messages) <= budget
        _check_pairs(messages)
        assert messages[0].role == "system" and messages[1].content == "Inventory the warehouse."
        naive = max(naive, len(messages))
    events = asyncio.run(store.read(run_id))
    built = [e for e in events if e.type == EventType.CONTEXT_BUILT]
    assert len(built) == steps and all(e.payload["tokens"] <= budget for e in built)
    # the run outgrew the budget: later prompts left turns out or masked them
    assert any(p["name"] == "dropped_note" for p in built[-1].payload["parts"])
    # the journal reproduces every prompt exactly (tether.observe.prompts)
    requests = [e for e in events if e.type == EventType.MODEL_REQUEST]
    rebuilt = journal_prompts(events)
    assert [rebuilt[e.seq] for e in requests] == [p["messages"] for p in sent]
    # and stays linear: a request holds at most the budget's worth of inline text
    assert max(len(json.dumps(e.payload)) for e in requests) < budget * 8
    # each build commits in the transaction of its model.request, right before it
    for e in built:
        following = [f for f in events if f.seq == e.seq + 1][0]
        assert following.type == EventType.MODEL_REQUEST and following.step == e.step
        assert [f for f in events if f.seq == e.seq - 1][0].type == EventType.MEMORY_RECALL


def test_large_result_is_a_handle_and_expand_returns_it_whole(tmp_path: Path) -> None:
    db = tmp_path / "tether.db"
    mstore = memory_store(db)
    whole = "item 25 full dump:\n" + big_output(150)
    seen: list[list[Message]] = []

    def answer(request: ModelRequest) -> Message:
        seen.append(list(request.messages))
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("lookup", item=25),))
        if request.step == 2:
            text = "\n".join(m.content or "" for m in request.messages)
            handles = re.findall(r"expand\(handle='(mem_[0-9a-z]+)'\)", text)
            assert handles, text
            return Message.assistant(None, (ToolCall.of("expand", handle=handles[0]),))
        return Message.assistant("done")

    from .memory_agent import lookup

    a = Agent(name="memo", model=FunctionModel(answer), tools=[lookup],
              memory=MemoryConfig(store=mstore, counter=EstimateTokenCounter(),
                                  large_result_tokens=500, budget=8000))
    store = SQLiteStore(db)
    result = Runner(store).run_sync(a, "Dump item 25.")
    assert str(result.status) == "completed", result.error
    # the lookup's result is a preview and handle; the expand of that handle is an
    # explicit request to read it: the next prompt shows it whole (it fits the budget)
    assert all(whole not in (m.content or "") for prompt in seen[:2] for m in prompt)
    assert [m.content for m in seen[2] if m.role == "tool" and m.name == "expand"] == [whole]
    assert [m for m in seen[2] if m.role == "tool" and m.name == "lookup"
            and whole not in (m.content or "") and "expand(handle=" in (m.content or "")]
    events = asyncio.run(store.read(result.run_id))
    writes = [e for e in events if e.type == EventType.MEMORY_WRITE]
    assert writes and writes[0].payload["kind"] == "artifact"
    handle = writes[0].payload["handle"]
    got = mstore.get_sync(handle)
    assert got is not None and got.text == whole
    assert got.provenance.run_id == result.run_id and got.provenance.seq == writes[0].seq
    expanded = [e for e in events if e.type == EventType.TOOL_RESULT
                and e.payload["tool"] == "expand"]
    assert expanded and expanded[0].payload["content"] == whole


def test_an_agent_without_memory_journals_no_context(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "tether.db")
    a = Agent(name="plain", model=FunctionModel(lambda r: Message.assistant("hi")))
    result = Runner(store).run_sync(a, "Say hi.")
    events = asyncio.run(store.read(result.run_id))
    kinds = {e.type for e in events}
    assert not kinds & {EventType.CONTEXT_BUILT, EventType.MEMORY_RECALL,
                        EventType.MEMORY_WRITE}
    request = [e for e in events if e.type == EventType.MODEL_REQUEST][0]
    assert request.payload["prefix"] == 0 and len(request.payload["new"]) == 1


def _child(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HELPER), *args], cwd=ROOT, text=True,
                          capture_output=True, timeout=300)


_HANDLE = re.compile(r"evt:[0-9a-z_]+:[0-9]+")


def _normalised(prompts: list[dict[str, Any]]) -> list[str]:
    """Prompts with event references renamed by order of appearance (a resumed run's
    journal has one more event, ``run.resumed``). Memory handles are left as they
    are: the journal determines them."""
    names: dict[str, str] = {}

    def name(m: re.Match[str]) -> str:
        return names.setdefault(m.group(0), f"mem#{len(names)}")

    return [_HANDLE.sub(name, json.dumps(p, sort_keys=True)) for p in prompts]


@pytest.mark.parametrize("kill_at", [26, 41])
def test_a_resumed_run_sends_byte_identical_prompts(tmp_path: Path, kill_at: int) -> None:
    steps = 60
    db, prompts = tmp_path / "killed.db", tmp_path / "killed.jsonl"
    run_id = "run_memorykill"
    killed = _child(str(db), run_id, str(prompts), str(steps), "--kill-at", str(kill_at))
    assert killed.returncode == -9, killed.stderr
    before = _prompts(prompts)
    assert before[-1]["step"] == kill_at
    resumed = _child(str(db), run_id, str(prompts), str(steps), "--resume")
    assert resumed.returncode == 0 and "completed" in resumed.stdout, resumed.stderr
    after = _prompts(prompts)[len(before):]
    # the prompt the killed process sent is sent again, byte for byte
    assert after[0] == before[-1]
    # and the whole run received what an uninterrupted run receives
    ref_db, ref_prompts = tmp_path / "ref.db", tmp_path / "ref.jsonl"
    clean = _child(str(ref_db), run_id, str(ref_prompts), str(steps))
    assert clean.returncode == 0, clean.stderr
    assert _normalised([*before[:-1], *after]) == _normalised(_prompts(ref_prompts))
