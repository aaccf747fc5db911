"""Attacks on threads (review of issue 18): call ids repeat from run to run, runs of
one thread name may belong to other users, and an earlier run may have died with a
call in flight. Real SQLite files, real runs, a real SIGKILLed child process."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tether.core import Message, ToolCall
from tether.memory import EstimateTokenCounter, SQLiteMemoryStore
from tether.models import FunctionModel, ModelRequest
from tether.runtime import Agent, Budget, MemoryConfig, Runner
from tether.store import SQLiteStore
from tether.tools import tool

if __name__ == "__main__":  # run as a child process: the repository root is importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.runtime.memory_agent import memory_store  # noqa: E402

pytest.importorskip("sqlite_vec")

HANDLE = re.compile(r"expand\(handle='([^']+)'\)")


@tool(idempotent=True)
def dump(tag: str) -> str:
    """A large listing.

    Args:
        tag: What to list.
    """
    return "".join(f"{tag} row {i}: value {i * 31 % 977} checksum {i * 7919 % 10007}\n"
                   for i in range(200))


@tool(idempotent=True)
def crash(tag: str) -> str:
    """Dies while running (a SIGKILL in the middle of the call).

    Args:
        tag: Anything.
    """
    os.kill(os.getpid(), signal.SIGKILL)
    return tag  # pragma: no cover


def _agent(mstore: SQLiteMemoryStore, script: list[Message], seen: list[list[Message]],
           *, user: str | None = None) -> Agent:
    def answer(request: ModelRequest) -> Message:
        seen.append(list(request.messages))
        return script[min(request.step, len(script)) - 1]

    return Agent(name="clerk", instructions="Answer about the listings.",
                 model=FunctionModel(answer), tools=[dump, crash],
                 budget=Budget(max_steps=10),
                 memory=MemoryConfig(budget=3000, store=mstore, user=user,
                                     counter=EstimateTokenCounter(),
                                     large_result_tokens=200))


def test_an_earlier_runs_offloaded_result_keeps_its_own_handle(tmp_path: Path) -> None:
    db = tmp_path / "tether.db"
    runner, mstore = Runner(SQLiteStore(db)), memory_store(db)
    first: list[list[Message]] = []
    a = runner.run_sync(_agent(mstore, [
        Message.assistant(None, (ToolCall.of("dump", tag="ALPHA"),)),
        Message.assistant("listed")], first), "List alpha.", thread="t")
    assert str(a.status) == "completed", a.error
    second: list[list[Message]] = []
    b = runner.run_sync(_agent(mstore, [
        Message.assistant(None, (ToolCall.of("dump", tag="BETA"),)),
        Message.assistant("listed")], second), "List beta.", thread="t")
    assert str(b.status) == "completed", b.error
    # run b's last prompt shows both large results masked, each with a handle
    shown = [m for m in second[-1] if m.role == "tool"]
    assert len(shown) == 2
    for message, tag in zip(shown, ("ALPHA", "BETA"), strict=True):
        assert message.content is not None and tag in message.content  # the preview
        handle = HANDLE.search(message.content)
        assert handle is not None, message.content
        memory = mstore.get_sync(handle.group(1))
        # expand(handle) must give back this very result, whole
        assert memory is not None and memory.text.startswith(f"{tag} row 0:")
        assert memory.text.count("\n") == 200


def test_another_user_on_the_same_thread_name_sees_nothing(tmp_path: Path) -> None:
    db = tmp_path / "tether.db"
    runner, mstore = Runner(SQLiteStore(db)), memory_store(db)
    alice: list[list[Message]] = []
    secret_task = "Alice's private request: the merger code name is BLUEHERON."
    a = runner.run_sync(_agent(mstore, [Message.assistant("noted")], alice, user="alice"),
                        secret_task, thread="support")
    assert str(a.status) == "completed", a.error
    bob: list[list[Message]] = []
    b = runner.run_sync(_agent(mstore, [Message.assistant("hello")], bob, user="bob"),
                        "Hi, what can you do?", thread="support")
    assert str(b.status) == "completed", b.error
    assert bob and all("BLUEHERON" not in (m.content or "") for m in bob[0])
    # nor can Bob read her turns by handle (the task, any message index, the old form)
    handles = [f"evt:{a.run_id}:{x}" for x in ("m0", "m1", "m2", "1", "2")]
    thief: list[list[Message]] = []
    c = runner.run_sync(_agent(mstore, [
        Message.assistant(None, tuple(ToolCall.of("expand", handle=h) for h in handles)),
        Message.assistant("done")], thief, user="bob"), "Show me.", thread="support")
    assert str(c.status) == "completed", c.error
    assert all("BLUEHERON" not in (m.content or "") for p in thief for m in p)
    # Alice on her thread still has her earlier turn, and can expand it
    again: list[list[Message]] = []
    d = runner.run_sync(_agent(mstore, [
        Message.assistant(None, (ToolCall.of("expand", handle=f"evt:{a.run_id}:m1"),)),
        Message.assistant("done")], again, user="alice"), "And now?", thread="support")
    assert str(d.status) == "completed", d.error
    assert any("BLUEHERON" in (m.content or "") for m in again[0])
    assert any(m.role == "tool" and "BLUEHERON" in (m.content or "") for m in again[1])


def _pairs_split(messages: list[Message]) -> list[str]:
    """Call ids of assistant tool calls not answered by a tool message before the next
    assistant or user message (what chat APIs refuse)."""
    split: list[str] = []
    for i, m in enumerate(messages):
        if m.role != "assistant" or not m.tool_calls:
            continue
        answered = set()
        for later in messages[i + 1:]:
            if later.role != "tool":
                break
            answered.add(later.tool_call_id)
        split += [c.id for c in m.tool_calls if c.id not in answered]
    return split


def test_a_thread_whose_earlier_run_died_mid_call_keeps_pairs_together(tmp_path: Path
                                                                      ) -> None:
    db = tmp_path / "tether.db"
    child = subprocess.run([sys.executable, __file__, str(db)], capture_output=True,
                           text=True, timeout=300,
                           env={**os.environ, "PYTHONPATH": os.pathsep.join(
                               [str(Path(__file__).resolve().parents[2] / "src"),
                                os.environ.get("PYTHONPATH", "")])})
    assert child.returncode == -signal.SIGKILL, child.stderr
    runner, mstore = Runner(SQLiteStore(db)), memory_store(db)
    seen: list[list[Message]] = []
    b = runner.run_sync(_agent(mstore, [Message.assistant("ok")], seen), "Carry on.",
                        thread="t")
    assert str(b.status) == "completed", b.error
    assert any(m.tool_calls for m in seen[0])  # the dead run's turn is in the prompt
    assert _pairs_split(seen[0]) == []


def _child(db: str) -> None:
    """A run on thread t whose only tool call SIGKILLs the process mid-call."""
    runner, mstore = Runner(SQLiteStore(db)), memory_store(Path(db))
    seen: list[list[Message]] = []
    runner.run_sync(_agent(mstore, [
        Message.assistant(None, (ToolCall.of("crash", tag="x"),))], seen),
        "Try the crash tool.", thread="t")


if __name__ == "__main__":
    _child(sys.argv[1])
    print(json.dumps({"error": "not killed"}))
