"""Attack on "a resumed run sends byte-identical prompts" (review of issue 18): the
run is SIGKILLed after its step-2 prompt is journaled and sent; before it resumes,
another run of the same thread writes a memory. Real SQLite file, real child
processes, SIGKILL."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

if __name__ == "__main__":  # run as a child process: the repository root is importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.runtime.memory_agent import memory_store  # noqa: E402
from tether.core import Message, ToolCall  # noqa: E402
from tether.memory import EstimateTokenCounter, SQLiteMemoryStore  # noqa: E402
from tether.models import FunctionModel, ModelRequest  # noqa: E402
from tether.runtime import Agent, Budget, MemoryConfig, Runner  # noqa: E402
from tether.store import SQLiteStore  # noqa: E402
from tether.tools import tool  # noqa: E402

pytest.importorskip("sqlite_vec")

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = "run_review_resume"


@tool(idempotent=True)
def schedule(crane: int) -> str:
    """The booking of a crane.

    Args:
        crane: The crane's number.
    """
    return f"crane {crane} is booked on friday for the harbour"


def _agent(mstore: SQLiteMemoryStore, script: list[Message], prompts: Path | None,
           kill_at: int | None = None) -> Agent:
    def answer(request: ModelRequest) -> Message:
        if prompts is not None:
            with prompts.open("a") as f:
                f.write(json.dumps({"step": request.step, "messages": [
                    m.model_dump(exclude_defaults=True) for m in request.messages]}) + "\n")
                f.flush()
                os.fsync(f.fileno())
        if request.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return script[min(request.step, len(script)) - 1]

    return Agent(name="harbour", instructions="Plan the harbour's cranes.",
                 model=FunctionModel(answer), tools=[schedule], budget=Budget(max_steps=10),
                 memory=MemoryConfig(budget=3000, store=mstore, user="ops",
                                     counter=EstimateTokenCounter()))


SCRIPT = [Message.assistant(None, (ToolCall.of("schedule", crane=7),)),
          Message.assistant("crane 7 is taken on friday")]


def _child(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_a_resumed_thread_run_resends_the_journaled_prompt(tmp_path: Path) -> None:
    db, prompts = tmp_path / "tether.db", tmp_path / "prompts.jsonl"
    killed = _child(str(db), str(prompts), "--kill-at", "2")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    sent = [json.loads(line) for line in prompts.read_text().splitlines()]
    assert sent[-1]["step"] == 2

    # another run of the same thread (same agent and user) remembers a related fact
    runner, mstore = Runner(SQLiteStore(db)), memory_store(db)
    other = runner.run_sync(_agent(mstore, [
        Message.assistant(None, (ToolCall.of(
            "remember", text="crane 7 is booked on friday by the harbour master"),)),
        Message.assistant("noted")], None), "Note the booking.", thread="docks")
    assert str(other.status) == "completed", other.error
    mstore.close()

    resumed = _child(str(db), str(prompts), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    again = [json.loads(line) for line in prompts.read_text().splitlines()][len(sent):]
    assert again[0]["step"] == 2
    assert again[0]["messages"] == sent[-1]["messages"]


def main() -> None:
    db, prompts = Path(sys.argv[1]), Path(sys.argv[2])
    kill_at = int(sys.argv[4]) if sys.argv[3:4] == ["--kill-at"] else None
    runner, mstore = Runner(SQLiteStore(db)), memory_store(db)
    agent = _agent(mstore, SCRIPT, prompts, kill_at)
    if "--resume" in sys.argv:
        result = asyncio.run(runner.resume(RUN_ID, agent))
    else:
        result = asyncio.run(runner.run(agent, "When is crane 7 free?", run_id=RUN_ID,
                                        thread="docks"))
    print(result.status, flush=True)


if __name__ == "__main__":
    main()
