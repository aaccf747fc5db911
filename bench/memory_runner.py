"""Memory through the real Runner (issue 18, phase 2): prompt size, journal growth and
step cost of an agent with memory against the same agent sending its whole history.

A 300-step scripted run on a real SQLite file: every step looks an item up (a 60-word
result), every 25th result is a 3,000-word dump, every 10th step remembers a fact.
The memory agent uses the default embedder (MiniLM) and token counter. Prints one JSON
object per figure and writes them to bench/results/memory_runner.jsonl.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, write_results  # noqa: E402

from tether.core import Message, ToolCall  # noqa: E402
from tether.memory import default_counter, message_tokens  # noqa: E402
from tether.models import FunctionModel, ModelRequest  # noqa: E402
from tether.runtime import Agent, Budget, MemoryConfig, Runner  # noqa: E402
from tether.store import SQLiteStore  # noqa: E402
from tether.tools import tool  # noqa: E402

STEPS = 300
BUDGET = 8000
WORDS = ("crate pallet sensor shelf aisle north south reading nominal batch order "
         "invoice carrier depot").split()


@tool(idempotent=True)
def lookup(item: int) -> str:
    """Look an item up.

    Args:
        item: The item's number.
    """
    n = 3000 if item % 25 == 0 else 60
    body = " ".join(f"{WORDS[(item * 7 + i) % len(WORDS)]}{(item + i) % 97}" for i in range(n))
    return f"item {item}: {body}"


def _agent(memory: bool, prompts: list[tuple[Message, ...]]) -> Agent:
    counter = default_counter()

    def answer(request: ModelRequest) -> Message:
        prompts.append(tuple(request.messages))  # measured after the run
        step = request.step
        if step >= STEPS:
            return Message.assistant("done")
        if step % 10 == 0:
            return Message.assistant(None, (ToolCall.of(
                "remember", text=f"batch {step} ships from depot {step % 7} on day {step}",
                key=f"batch{step}"),))
        return Message.assistant(None, (ToolCall.of("lookup", item=step),))

    tools: list[Any] = [lookup]
    if not memory:
        @tool(name="remember", idempotent=True)
        def remember(text: str, key: str | None = None) -> str:
            """Store a fact.

            Args:
                text: The fact.
                key: What it is about.
            """
            return "noted"

        tools.append(remember)
    return Agent(name="bench", instructions="Keep the warehouse inventory.",
                 model=FunctionModel(answer), tools=tools,
                 budget=Budget(max_steps=STEPS + 5, max_input_tokens=None),
                 memory=MemoryConfig(budget=BUDGET, counter=counter) if memory else None)


def _tokens(prompts: list[tuple[Message, ...]]) -> list[int]:
    """Each prompt's tokens by the default counter (each distinct message counted once)."""
    count = default_counter().count
    cache: dict[str, int] = {}
    sizes = []
    for prompt in prompts:
        total = 0
        for m in prompt:
            key = m.model_dump_json()
            if key not in cache:
                cache[key] = message_tokens(m, count)
            total += cache[key]
        sizes.append(total)
    return sizes


def _reuse(prompts: list[tuple[Message, ...]]) -> float:
    """Median share of a prompt's messages that repeat the previous prompt's start."""
    shares = []
    for a, b in zip(prompts, prompts[1:], strict=False):
        same = 0
        for x, y in zip(a, b, strict=False):
            if x != y:
                break
            same += 1
        shares.append(same / len(b))
    return statistics.median(shares)


def run(memory: bool) -> list[dict[str, Any]]:
    mode = "tether" if memory else "naive"
    prompts: list[tuple[Message, ...]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "tether.db"
        store = SQLiteStore(db, synchronous="NORMAL")
        runner = Runner(store)
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        result = asyncio.run(runner.run(_agent(memory, prompts), "Inventory."))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        assert str(result.status) == "completed", result.error
        store.checkpoint()
        size = sum(p.stat().st_size for p in Path(tmp).iterdir() if p.name.startswith("tether"))
    sizes = _tokens(prompts)
    config = {"mode": mode, "steps": STEPS, "budget": BUDGET, "load_avg_1m": round(load, 1)}
    return [
        emit("runner_prompt_tokens_max", max(sizes), "tokens", **config),
        emit("runner_prompt_tokens_median", statistics.median(sizes), "tokens", **config),
        emit("runner_prefix_reuse_median", _reuse(prompts), "fraction", **config),
        emit("runner_step_ms_mean", wall * 1000 / STEPS, "ms", **config),
        emit("runner_step_cpu_ms_mean", cpu * 1000 / STEPS, "ms", **config),
        emit("runner_file_bytes_per_step", size / STEPS, "bytes", **config),
    ]


def main() -> None:
    lines = [*run(memory=True), *run(memory=False)]
    write_results(__file__, lines)


if __name__ == "__main__":
    main()
