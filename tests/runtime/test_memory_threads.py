"""Threads and memory writes: a later run on a thread sees the earlier runs' facts
within its budget, other threads see nothing of them, and a SIGKILL inside a memory
write leaves neither a partial memory nor an orphan event."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from tether.core import EventType, Message, ToolCall
from tether.memory import EstimateTokenCounter, SQLiteMemoryStore, message_tokens
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Budget, MemoryConfig, Runner
from tether.store import SQLiteStore

from .memory_agent import lookup, memory_store

pytest.importorskip("sqlite_vec")

HELPER = Path(__file__).with_name("memory_agent.py")
ROOT = Path(__file__).resolve().parents[2]
FACT = "The vault code for the north gate is 7341"
BUDGET = 1500


def _agent(mstore: SQLiteMemoryStore, answer: object, steps: int = 200) -> Agent:
    return Agent(name="keeper", instructions="Keep the warehouse's secrets.",
                 model=FunctionModel(answer), tools=[lookup],  # type: ignore[arg-type]
                 budget=Budget(max_steps=steps),
                 memory=MemoryConfig(budget=BUDGET, store=mstore,
                                     counter=EstimateTokenCounter(), large_result_tokens=300))


def _first_run(request: ModelRequest) -> Message:
    """Remember the fact at step 1, then bury it under 120 lookups."""
    if request.step == 1:
        return Message.assistant(None, (ToolCall.of("remember", text=FACT, key="gate"),))
    if request.step <= 120:
        return Message.assistant(None, (ToolCall.of("lookup", item=request.step),))
    return Message.assistant("inventory done")


def _asker(seen: list[list[Message]]) -> object:
    def answer(request: ModelRequest) -> Message:
        seen.append(list(request.messages))
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("recall", query="vault code north gate"),))
        return Message.assistant("done")

    return answer


def _text(messages: list[Message]) -> str:
    return "\n".join(m.content or "" for m in messages)


def test_threads_see_their_own_facts_and_never_another_threads(tmp_path: Path) -> None:
    db = tmp_path / "tether.db"
    store, mstore = SQLiteStore(db), memory_store(db)
    runner = Runner(store)
    first = runner.run_sync(_agent(mstore, _first_run), "Inventory the warehouse.",
                            thread="t1")
    assert str(first.status) == "completed", first.error

    seen: list[list[Message]] = []
    second = runner.run_sync(_agent(mstore, _asker(seen)), "What is the vault code?",
                             thread="t1")
    assert str(second.status) == "completed", second.error
    counter = EstimateTokenCounter()
    for prompt in seen:
        assert sum(message_tokens(m, counter.count) for m in prompt) <= BUDGET
    # the fact is in the very first prompt (recalled for the step), within budget
    assert FACT in _text(seen[0])
    events = asyncio.run(store.read(second.run_id))
    started = events[0].payload
    assert started["thread"] == "t1" and [r for r, _ in started["thread_runs"]] == [first.run_id]
    recalled = [e for e in events if e.type == EventType.MEMORY_RECALL]
    assert any(FACT in h["text"] for e in recalled for h in e.payload["hits"])
    assert all(h["score"] > 0 for e in recalled for h in e.payload["hits"])
    # the thread's earlier turns are in the prompt (the first run's answer)
    assert "inventory done" in _text(seen[0])

    other: list[list[Message]] = []
    third = runner.run_sync(_agent(mstore, _asker(other)), "What is the vault code?",
                            thread="t2")
    assert str(third.status) == "completed", third.error
    assert all(FACT not in _text(p) and "7341" not in _text(p) for p in other)
    events = asyncio.run(store.read(third.run_id))
    assert events[0].payload["thread_runs"] == []
    recall = [e for e in events if e.type == EventType.TOOL_RESULT
              and e.payload["tool"] == "recall"]
    assert recall[0].payload["content"] == "nothing relevant"
    assert not any(h for e in events if e.type == EventType.MEMORY_RECALL
                   for h in e.payload["hits"])


def test_expand_and_forget_refuse_another_threads_handles(tmp_path: Path) -> None:
    db = tmp_path / "tether.db"
    store, mstore = SQLiteStore(db), memory_store(db)
    runner = Runner(store)
    first = runner.run_sync(_agent(mstore, _first_run, steps=5), "Remember the code.",
                            thread="t1")
    writes = [e for e in asyncio.run(store.read(first.run_id))
              if e.type == EventType.MEMORY_WRITE]
    handle = writes[0].payload["handle"]
    masked_ref = f"evt:{first.run_id}:3"

    def thief(request: ModelRequest) -> Message:
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("expand", handle=handle),
                                            ToolCall.of("expand", handle=masked_ref),
                                            ToolCall.of("forget", handle=handle),
                                            ToolCall.of("expand", handle=masked_ref.replace(
                                                ":3", ":m3"))))
        return Message.assistant("done")

    stolen = runner.run_sync(_agent(mstore, thief), "Steal it.", thread="t2")
    results = [e.payload["content"] for e in asyncio.run(store.read(stolen.run_id))
               if e.type == EventType.TOOL_RESULT]
    assert all(FACT not in r for r in results), results
    assert results[2] == f"{handle} is not a current memory"
    memory = mstore.get_sync(handle)
    assert memory is not None and memory.current  # not forgotten by another thread


def _consistent(db: Path) -> tuple[set[str], set[str]]:
    """Memory handles in the tables, and handles of memory.write events that added one."""
    con = apsw.Connection(str(db))
    rows = {r[0] for r in con.execute("SELECT handle FROM memory_items")}
    written: set[str] = set()
    for (payload,) in con.execute("SELECT payload FROM events WHERE type = 'memory.write'"):
        p = json.loads(payload)
        if p["action"] in ("added", "superseded"):
            assert p["handle"] not in written, "two events for one memory"
            written.add(p["handle"])
    con.close()
    return rows, written


@pytest.mark.parametrize("nth", [1, 3])
def test_sigkill_inside_a_memory_write_leaves_no_partial_memory(
    tmp_path: Path, nth: int
) -> None:
    db, prompts = tmp_path / "tether.db", tmp_path / "prompts.jsonl"
    run_id = "run_killedwrite"
    argv = [sys.executable, str(HELPER), str(db), run_id, str(prompts), "40"]
    killed = subprocess.run([*argv, "--kill-in-write", str(nth)], cwd=ROOT, text=True,
                            capture_output=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    rows, written = _consistent(db)
    assert rows == written and len(rows) == nth - 1  # the killed write left nothing
    resumed = subprocess.run([*argv, "--resume"], cwd=ROOT, text=True,
                             capture_output=True, timeout=300)
    assert resumed.returncode == 0 and "completed" in resumed.stdout, resumed.stderr
    rows, written = _consistent(db)
    assert rows == written
    # 3 facts (steps 10, 20, 30) and one large result (item 25), each stored once
    assert len(rows) == 4


def test_a_later_run_of_the_thread_supersedes_an_earlier_runs_fact(tmp_path: Path) -> None:
    db = tmp_path / "tether.db"
    store, mstore = SQLiteStore(db), memory_store(db)
    runner = Runner(store)

    def teller(text: str) -> object:
        def answer(request: ModelRequest) -> Message:
            if request.step == 1:
                return Message.assistant(None, (ToolCall.of("remember", text=text, key="gate"),))
            return Message.assistant("ok")
        return answer

    runner.run_sync(_agent(mstore, teller(FACT)), "Remember.", thread="t1")
    runner.run_sync(_agent(mstore, teller(FACT)), "Remember again.", thread="t1")
    newer = "The vault code for the north gate is 9902"
    runner.run_sync(_agent(mstore, teller(newer)), "It changed.", thread="t1")
    seen: list[list[Message]] = []
    runner.run_sync(_agent(mstore, _asker(seen)), "What is the vault code?", thread="t1")
    memories = [m for m in seen[0] if "[mem_" in (m.content or "")]
    assert memories and "9902" in _text(memories) and "7341" not in _text(memories)
    from tether.memory import Namespace

    history = mstore.history("gate", Namespace(agent="keeper", thread="t1"))
    assert sorted(m.text for m in history) == sorted([FACT, newer])  # restated: no copy


def test_a_context_length_error_lowers_the_budget_and_rebuilds(tmp_path: Path) -> None:
    from tether.core import ContextLengthError

    db = tmp_path / "tether.db"
    store, mstore = SQLiteStore(db), memory_store(db)
    window = 1100  # the provider's real window, smaller than the agent's budget
    counter = EstimateTokenCounter()

    def size(request: ModelRequest) -> int:  # the window holds the tools' definitions too
        return (sum(message_tokens(m, counter.count) for m in request.messages)
                + sum(counter.count(json.dumps(s.model_dump())) for s in request.tools))

    def answer(request: ModelRequest) -> Message:
        if size(request) > window:
            raise ContextLengthError("prompt too long", provider="scripted", model="x")
        if request.step <= 60:
            return Message.assistant(None, (ToolCall.of("lookup", item=request.step),))
        return Message.assistant("done")

    result = Runner(store).run_sync(_agent(mstore, answer), "Inventory the warehouse.")
    assert str(result.status) == "completed", result.error
    events = asyncio.run(store.read(result.run_id))
    lowered = [e.payload["budget"] for e in events if e.type == EventType.DECISION
               and e.payload["decision"] == "context_budget"]
    assert lowered and lowered == sorted(lowered, reverse=True)
    built = [e.payload for e in events if e.type == EventType.CONTEXT_BUILT]
    assert built[-1]["budget"] == lowered[-1] and built[-1]["tokens"] <= window
    # each built prompt is journaled before it is sent; a refused one is followed by
    # the decision to lower the budget and a rebuild, an accepted one by its request
    requests = [e for e in events if e.type == EventType.MODEL_REQUEST]
    assert len(requests) + len(lowered) == len(built)
    following = {e.seq: e for e in events}
    for e in events:
        if e.type == EventType.CONTEXT_BUILT:
            after = following[e.seq + 1]
            assert after.type == EventType.MODEL_REQUEST or (
                after.type == EventType.DECISION and after.payload["budget"] < e.payload["budget"])


def test_a_secret_told_to_remember_never_reaches_the_file_in_clear(tmp_path: Path) -> None:
    db = tmp_path / "tether.db"
    store, mstore = SQLiteStore(db), memory_store(db)
    secret = "sk-proj-" + "Zq8Xr2Lw9Pm4Tn7Vb3Kc" * 2
    told = f"The deploy key is {secret}"

    def answer(request: ModelRequest) -> Message:
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("remember", text=told),))
        if request.step == 2:
            return Message.assistant(None, (ToolCall.of("recall", query="deploy key"),))
        return Message.assistant("ok")

    result = Runner(store).run_sync(_agent(mstore, answer), "Keep the key.", thread="k")
    assert str(result.status) == "completed", result.error
    asyncio.run(store.close())
    mstore.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("tether"))
    assert secret.encode() not in raw
    assert b"[REDACTED:" in raw


def test_work_inside_an_append_commits_with_its_events_or_not_at_all(tmp_path: Path) -> None:
    from tether.core import Event, LeaseLostError

    db = tmp_path / "tether.db"
    store = SQLiteStore(db)

    def ev(seq: int, kind: EventType = EventType.MEMORY_WRITE) -> Event:
        return Event(run_id="run_w", seq=seq, type=kind, step=0, ts=0.0,
                     payload={"task": "t", "agent": "a", "action": "added", "handle": "h"})

    async def scenario() -> None:
        lease = await store.acquire([ev(1, EventType.RUN_STARTED)], owner="me", ttl_s=30)

        def setup(db: apsw.Connection) -> list[Event]:
            db.execute("CREATE TABLE IF NOT EXISTS side(x)")
            return []

        await store.append([], lease=lease, within=setup)

        def failing(db: apsw.Connection) -> list[Event]:
            db.execute("INSERT INTO side VALUES (1)")
            raise RuntimeError("the memory write failed")

        with pytest.raises(RuntimeError):
            await store.append([], lease=lease, within=failing)

        def writes(db: apsw.Connection) -> list[Event]:
            db.execute("INSERT INTO side VALUES (2)")
            return [ev(2)]

        stale = type(lease)(run_id=lease.run_id, owner="me", token=lease.token - 1,
                            ttl_s=30, expires_at=0)
        with pytest.raises(LeaseLostError):  # fenced: nothing of it is written
            await store.append([], lease=stale, within=writes)
        await store.append([], lease=lease, within=writes)

    asyncio.run(scenario())
    con = apsw.Connection(str(db))
    assert [r[0] for r in con.execute("SELECT x FROM side")] == [2]
    assert [e.seq for e in asyncio.run(store.read("run_w"))] == [1, 2]
