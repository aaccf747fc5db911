"""Helpers for the memory wiring tests: a fast deterministic embedder, a long scripted
agent whose tools return facts and large outputs, and a child process that drives it.

Run as a script (``python tests/runtime/memory_agent.py DB RUN_ID PROMPTS STEPS``), it
starts (or, with ``--resume``, resumes) the run and appends every prompt the model
receives, as one JSON line, to PROMPTS; ``--kill-at N`` SIGKILLs the process when the
model is asked for step N (after the prompt is recorded, before anything of the step
commits); ``--kill-in-write N`` SIGKILLs it inside the transaction of the N-th memory
write, after the memory's rows are written and before the commit.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import re
import signal
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

if __name__ == "__main__":  # run as a script: the repository root is importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tether.core import Message, ToolCall  # noqa: E402
from tether.memory import EstimateTokenCounter, SQLiteMemoryStore  # noqa: E402
from tether.models import FunctionModel, ModelRequest  # noqa: E402
from tether.runtime import Agent, Budget, MemoryConfig, Runner  # noqa: E402
from tether.store import SQLiteStore  # noqa: E402
from tether.tools import tool  # noqa: E402


class HashEmbedder:
    """Bag of hashed words, 384 dimensions, unit rows: deterministic and instant."""

    name = "test-hash-384"
    dim = 384

    def embed(self, texts: list[str]) -> NDArray[np.float32]:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                h = int.from_bytes(hashlib.sha256(word.encode()).digest()[:4], "little")
                out[row, h % self.dim] += 1.0 if h & 1 << 20 else -1.0
            norm = float(np.linalg.norm(out[row]))
            out[row] = out[row] / norm if norm else 1 / np.sqrt(self.dim)
        return out


def memory_store(path: Path) -> SQLiteMemoryStore:
    return SQLiteMemoryStore(path, embedder=HashEmbedder())


BIG_LINE = "row {i}: sensor reading {v} with status nominal and checksum {c}\n"


def big_output(n: int) -> str:
    """A large tool result (about 30 tokens a line)."""
    return "".join(BIG_LINE.format(i=i, v=i * 37 % 1000, c=hashlib.md5(str(i).encode())
                                   .hexdigest()[:8]) for i in range(n))


@tool(idempotent=True)
def lookup(item: int) -> str:
    """Look an item up.

    Args:
        item: The item's number.
    """
    if item % 25 == 0:
        return f"item {item} full dump:\n" + big_output(150)
    return f"item {item} is stored on shelf {item * 7 % 97} in aisle {item % 13}"


def script_step(step: int, steps: int) -> Message:
    """What the model answers at ``step`` (1-based) of a ``steps``-step run."""
    if step >= steps:
        return Message.assistant("done")
    if step % 10 == 0:
        return Message.assistant(None, (ToolCall.of(
            "remember", text=f"fact {step}: the code for batch {step} is {step * 13}",
            key=f"batch{step}"),))
    return Message.assistant(None, (ToolCall.of("lookup", item=step),))


def agent(steps: int, prompts: Path | None = None, kill_at: int | None = None,
          store: SQLiteMemoryStore | None = None, budget: int = 2000) -> Agent:
    def answer(request: ModelRequest) -> Message:
        if prompts is not None:
            with prompts.open("a") as f:
                f.write(json.dumps({"step": request.step, "messages": [
                    m.model_dump(exclude_defaults=True) for m in request.messages]}) + "\n")
                f.flush()
                os.fsync(f.fileno())
        if kill_at is not None and request.step == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return script_step(request.step, steps)

    return Agent(name="memo", instructions="Keep track of the warehouse.",
                 model=FunctionModel(answer), tools=[lookup],
                 budget=Budget(max_steps=steps + 5),
                 memory=MemoryConfig(budget=budget, store=store,
                                     counter=EstimateTokenCounter(),
                                     large_result_tokens=500))


def kill_in_write(mstore: SQLiteMemoryStore, nth: int) -> None:
    """SIGKILL this process inside the ``nth`` memory write's transaction, after the
    memory's rows are written (before its event and the commit)."""
    original = mstore.write_in
    seen = [0]

    def write_in(db: Any, item: Any, **kw: Any) -> Any:
        outcome = original(db, item, **kw)
        seen[0] += 1
        if seen[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return outcome

    mstore.write_in = write_in  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("db")
    parser.add_argument("run_id")
    parser.add_argument("prompts")
    parser.add_argument("steps", type=int)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-at", type=int)
    parser.add_argument("--kill-in-write", type=int)
    args = parser.parse_args()
    db = Path(args.db)
    mstore = memory_store(db)
    if args.kill_in_write:
        kill_in_write(mstore, args.kill_in_write)
    a = agent(args.steps, Path(args.prompts), args.kill_at, store=mstore)
    runner = Runner(SQLiteStore(db))
    if args.resume:
        result = asyncio.run(runner.resume(args.run_id, a))
    else:
        result = asyncio.run(runner.run(a, "Inventory the warehouse.", run_id=args.run_id))
    print(result.status, flush=True)


if __name__ == "__main__":
    main()
