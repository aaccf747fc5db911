"""Working memory: scoped to the step, visible to its tools by a defined rule, journaled
with each call's outcome, rebuilt from the journal after a SIGKILL, promoted once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import apsw
import pytest

from tether.core import Event, EventType, Message, ToolCall, UsageError
from tether.memory import EstimateTokenCounter
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Budget, MemoryConfig, Runner
from tether.store import SQLiteStore
from tether.tools import ToolContext, WorkingMemory, tool

from .memory_agent import memory_store
from .working_agent import CUSTOMER, HOSTILE_KEYS, SECRET

pytest.importorskip("sqlite_vec")

HELPER = Path(__file__).with_name("working_agent.py")
ROOT = Path(__file__).resolve().parents[2]


def _child(db: Path, log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(HELPER), str(db), "run_w", str(log), *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)


def _events(db: Path) -> list[Event]:
    async def read() -> list[Event]:
        store = SQLiteStore(db)
        try:
            return await store.read("run_w")
        finally:
            await store.close()

    return asyncio.run(read())


def _logged(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


def _promoted_rows(db: Path) -> list[tuple[Any, ...]]:
    return list(apsw.Connection(str(db)).execute(
        "SELECT handle, text, superseded_by FROM memory_items WHERE key = 'customer'"))


def _check_finished_run(db: Path) -> list[Event]:
    events = _events(db)
    assert events[-1].type == EventType.RUN_COMPLETED
    promoted = [e for e in events if e.type == EventType.MEMORY_WRITE
                and e.payload.get("promoted")]
    assert len(promoted) == 1, "a promoted entry is written exactly once"
    assert promoted[0].payload["promoted"] == {"step": 1, "key": "customer"}
    ends = [e for e in events if e.type == EventType.MEMORY_WORKING
            and e.payload.get("step_end")]
    assert len(ends) == 1 and ends[0].payload["promoted"][0]["key"] == "customer"
    assert set(ends[0].payload["dropped"]) == {"order", *HOSTILE_KEYS}
    rows = _promoted_rows(db)
    assert len(rows) == 1 and rows[0][2] is None
    assert SECRET not in rows[0][1] and "[REDACTED:" in rows[0][1]
    recalled = [e for e in events if e.type == EventType.TOOL_RESULT
                and e.payload["tool"] == "recall"]
    assert "Ada Lovelace" in recalled[0].payload["content"]
    return events


def test_a_step_s_tools_share_its_working_memory_and_the_next_step_starts_empty(
        tmp_path: Path) -> None:
    db, log = tmp_path / "tether.db", tmp_path / "seen.jsonl"
    done = _child(db, log)
    assert done.stdout.strip() == "completed", done.stderr
    first, second = _logged(log)
    seen = first["seen"]
    assert seen["step"] == 1 and seen["message"] == "Collecting order 7."
    assert [c["tool"] for c in seen["calls"]] == ["collect", "inspect"]
    assert seen["calls"][0]["arguments"] == {"order": 7}
    assert seen["outputs"] == {seen["calls"][0]["call_id"]: "order 7 collected"}
    assert seen["items"]["order"] == {"id": 7, "total": "12.50", "lines": [1, 2, 3]}
    assert seen["items"]["customer"] == CUSTOMER  # the live process sees the original
    for i, key in enumerate(HOSTILE_KEYS):
        assert seen["items"][key] == {"i": i, "text": key}
    assert second["seen"]["step"] == 2 and second["seen"]["items"] == {}
    assert second["seen"]["outputs"] == {}
    events = _check_finished_run(db)
    # the puts are one event, right before the outcome they commit with
    puts = [e for e in events if e.type == EventType.MEMORY_WORKING and "ops" in e.payload]
    assert len(puts) == 1
    after = next(e for e in events if e.seq == puts[0].seq + 1)
    assert after.type == EventType.TOOL_RESULT
    assert after.payload["call_id"] == puts[0].payload["call_id"]


def test_secrets_put_in_working_memory_never_reach_the_file_in_clear(tmp_path: Path) -> None:
    db, log = tmp_path / "tether.db", tmp_path / "seen.jsonl"
    assert _child(db, log).stdout.strip() == "completed"
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("tether"))
    assert SECRET.encode() not in raw
    assert b"Ada Lovelace" in raw


def test_sigkill_mid_step_the_resumed_call_sees_exactly_what_it_saw(tmp_path: Path) -> None:
    db, log = tmp_path / "tether.db", tmp_path / "seen.jsonl"
    killed = _child(db, log, "--kill-in-inspect")
    assert killed.returncode == -9, killed.stderr
    # collect's outcome and entries are committed; inspect's outcome is not
    events = _events(db)
    assert [e.type for e in events].count(EventType.TOOL_RESULT) == 1
    resumed = _child(db, log, "--resume")
    assert resumed.stdout.strip() == "completed", resumed.stderr
    before, again = _logged(log)[:2]
    assert before["call_id"] == again["call_id"]
    assert before["seen"] == again["seen"]  # rebuilt from the journal, secret unsealed
    _check_finished_run(db)


@pytest.mark.parametrize("how", [["--kill-at", "2"], ["--kill-in-write", "1"]],
                         ids=["after-the-promotion", "inside-the-promotion"])
def test_a_promotion_interrupted_by_sigkill_happens_once(tmp_path: Path, how: list[str]
                                                         ) -> None:
    db, log = tmp_path / "tether.db", tmp_path / "seen.jsonl"
    killed = _child(db, log, *how)
    assert killed.returncode == -9, killed.stderr
    written = [e for e in _events(db) if e.type == EventType.MEMORY_WRITE]
    # killed inside its transaction: neither the memory nor its event; after: both
    assert len(written) == (1 if how[0] == "--kill-at" else 0)
    assert len(_promoted_rows(db)) == len(written)
    resumed = _child(db, log, "--resume")
    assert resumed.stdout.strip() == "completed", resumed.stderr
    _check_finished_run(db)


# -- in one process ------------------------------------------------------------------


def _agent(tmp_path: Path, tools: list[Any], answer: Any) -> tuple[Runner, Agent]:
    db = tmp_path / "tether.db"
    agent = Agent(name="w", model=FunctionModel(answer), tools=tools,
                  budget=Budget(max_steps=6),
                  memory=MemoryConfig(store=memory_store(db), counter=EstimateTokenCounter()))
    return Runner(SQLiteStore(db)), agent


def test_concurrent_calls_see_each_other_s_entries_only_once_committed(tmp_path: Path) -> None:
    """The rule: another call's entries are invisible while it runs (it may yet be
    retried or die), visible as soon as its outcome commits; a call reads its own."""
    a_put = asyncio.Event()
    b_checked = asyncio.Event()
    seen: dict[str, Any] = {}

    @tool(idempotent=True)
    async def writer(ctx: ToolContext) -> str:
        """Put x, then wait for the reader to look."""
        assert ctx.working is not None
        ctx.working.put("x", 1)
        seen["own"] = ctx.working.get("x")
        a_put.set()
        await b_checked.wait()
        return "written"

    @tool(idempotent=True)
    async def reader(ctx: ToolContext) -> str:
        """Look at x before and after the writer's outcome commits."""
        working = ctx.working
        assert isinstance(working, WorkingMemory)
        await a_put.wait()
        seen["running"] = (working.get("x"), working.outputs())
        b_checked.set()
        for _ in range(2000):
            if working.outputs():
                break
            await asyncio.sleep(0.005)
        seen["committed"] = (working.get("x"), working.outputs())
        working.put("x", 2)  # a later commit wins
        return "read"

    def answer(request: ModelRequest) -> Message:
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("writer"), ToolCall.of("reader")))
        return Message.assistant("done")

    runner, agent = _agent(tmp_path, [writer, reader], answer)
    result = runner.run_sync(agent, "go")
    assert str(result.status) == "completed", result.error
    assert seen["own"] == 1
    assert seen["running"] == (None, {})
    events = asyncio.run(runner.store.read(result.run_id))
    ids = {e.payload["tool"]: e.payload["call_id"] for e in events
           if e.type == EventType.TOOL_INTENT}
    assert seen["committed"] == (1, {ids["writer"]: "written"})
    end = [e.payload for e in events if e.type == EventType.MEMORY_WORKING
           and e.payload.get("step_end")]
    assert end == [{"step_end": True, "promoted": [], "dropped": ["x"]}]
    # the fold of the journal agrees with what the live process saw: x is the reader's
    from tether.runtime._state import fold
    state = fold(result.run_id, [e for e in events if e.step <= 1])
    assert state.working.entries["x"] == (2, ids["reader"])


def test_an_attempt_that_is_retried_leaves_no_entries(tmp_path: Path) -> None:
    attempts: list[int] = []

    @tool(idempotent=True)
    def flaky(ctx: ToolContext) -> str:
        """Fails on its first attempt after putting an entry."""
        assert ctx.working is not None
        attempts.append(ctx.attempt)
        ctx.working.put(f"attempt{ctx.attempt}", ctx.attempt)
        if ctx.attempt == 1:
            raise ConnectionError("flaky")
        return "ok"

    def answer(request: ModelRequest) -> Message:
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("flaky"),))
        return Message.assistant("done")

    runner, agent = _agent(tmp_path, [flaky], answer)
    result = runner.run_sync(agent, "go")
    assert str(result.status) == "completed", result.error
    assert attempts == [1, 2]
    events = asyncio.run(runner.store.read(result.run_id))
    ops = [op for e in events if e.type == EventType.MEMORY_WORKING
           for op in e.payload.get("ops", [])]
    assert ops == [{"op": "put", "key": "attempt2", "value": 2}]


def test_bad_keys_and_values_are_refused_with_a_hint(tmp_path: Path) -> None:
    errors: list[str] = []

    @tool(idempotent=True)
    def careless(ctx: ToolContext) -> str:
        """Try every way to misuse working memory."""
        working = ctx.working
        assert working is not None
        for key, value in [("", 1), ("k" * 257, 1), (3, 1), ("nan", float("nan")),
                           ("obj", object()), ("big", "x" * 1_000_001)]:
            try:
                working.put(key, value)  # type: ignore[arg-type]
            except UsageError as e:
                assert e.hint
                errors.append(str(key)[:5])
        try:
            working.promote("never-put")
        except UsageError:
            errors.append("promote")
        value = {"nested": [1, 2]}
        working.put("copied", value)
        value["nested"].append(3)  # a later change by the tool does not leak in
        got = working.get("copied")
        got["nested"].append(4)
        return json.dumps(working.get("copied"))

    def answer(request: ModelRequest) -> Message:
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("careless"),))
        return Message.assistant("done")

    runner, agent = _agent(tmp_path, [careless], answer)
    result = runner.run_sync(agent, "go")
    assert str(result.status) == "completed", result.error
    assert len(errors) == 7
    events = asyncio.run(runner.store.read(result.run_id))
    out = [e for e in events if e.type == EventType.TOOL_RESULT][0].payload["content"]
    assert json.loads(out) == {"nested": [1, 2]}


def test_an_agent_without_memory_has_no_working_memory(tmp_path: Path) -> None:
    got: list[Any] = []

    @tool
    def probe(ctx: ToolContext) -> str:
        """Report whether working memory is there."""
        got.append(ctx.working)
        return "ok"

    def answer(request: ModelRequest) -> Message:
        if request.step == 1:
            return Message.assistant(None, (ToolCall.of("probe"),))
        return Message.assistant("done")

    agent = Agent(name="plain", model=FunctionModel(answer), tools=[probe])
    result = Runner(SQLiteStore(tmp_path / "t.db")).run_sync(agent, "go")
    assert str(result.status) == "completed" and got == [None]
