"""Whole agent runs on the embedded local model: does it finish arithmetic tasks?

Thirty fixed tasks go through ``Runner`` on the default ``LocalModel()`` (SmolLM2-135M,
greedy, in process) with the calculator tools of ``examples/calculator.py``:

- ``one_call``: ten tasks that need one tool call ("What is 12.5 times 8?");
- ``two_calls``: ten tasks that need two chained calls ("What is 3 times 4 plus 2?");
- ``no_tool``: ten questions that need no tool ("What is the capital of France?").

**Success** of a task:

- the run completes (status ``completed``) within ``Budget(max_steps=6)``;
- for ``one_call`` and ``two_calls``: the final answer contains the expected number
  (any number written in it equal to the expected value within 1e-6, so "100",
  "100.0" and "100.00" all count);
- for ``no_tool``: no tool was called, and the final answer contains one of the
  task's expected words (case-insensitive), e.g. "Paris" for the capital of France,
  or for a greeting one of "hello", "hi", "assist", "help".

The answer is judged, not the route: a ``two_calls`` task answered right after one call
would count (none is, with this model). Reported per group: ``local_task_success``
(fraction of the ten) and ``local_task_s_p50`` (median wall-clock seconds per run,
model load excluded), plus, per group, the mean number of tool calls per run.
Prints one JSON object per figure and writes bench/results/local_agent.jsonl.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent / "examples"))
from _common import emit, write_results  # noqa: E402
from calculator import agent as calculator  # noqa: E402

from tether import Budget, Runner, RunStatus, SQLiteStore  # noqa: E402
from tether.core import EventType  # noqa: E402
from tether.models import LocalModel  # noqa: E402

Expected = float | tuple[str, ...]

TASKS: list[tuple[str, str, Expected]] = [
    ("one_call", "What is 12.5 times 8?", 100),
    ("one_call", "What is 7 plus 5?", 12),
    ("one_call", "What is 100 divided by 4?", 25),
    ("one_call", "What is 9 minus 3?", 6),
    ("one_call", "Multiply 6 by 7.", 42),
    ("one_call", "Subtract 4 from 10.", 6),
    ("one_call", "What is 15 plus 27?", 42),
    ("one_call", "What is 3.5 times 4?", 14),
    ("one_call", "What is 81 divided by 9?", 9),
    ("one_call", "What is 250 minus 75?", 175),
    ("two_calls", "What is 3 times 4 plus 2?", 14),
    ("two_calls", "What is 12.5 times 8 minus 20?", 80),
    ("two_calls", "Add 10 and 5, then multiply the result by 3.", 45),
    ("two_calls", "What is 100 divided by 4 plus 5?", 30),
    ("two_calls", "What is 7 times 6 minus 2?", 40),
    ("two_calls", "Add 2 and 3, then multiply the result by 4.", 20),
    ("two_calls", "What is 50 minus 8 plus 10?", 52),
    ("two_calls", "What is 9 times 9 plus 19?", 100),
    ("two_calls", "Multiply 6 by 7, then subtract 12 from the result.", 30),
    ("two_calls", "Add 8 and 12, then divide the result by 5.", 4),
    ("no_tool", "What is the capital of France?", ("paris",)),
    ("no_tool", "Hello! Who are you?", ("hello", "hi", "assist", "help")),
    ("no_tool", "What color is the sky on a clear day?", ("blue",)),
    ("no_tool", "Say hello.", ("hello", "hi")),
    ("no_tool", "What is the opposite of hot?", ("cold",)),
    ("no_tool", "Thank you for your help!", ("welcome", "pleasure", "glad", "happy")),
    ("no_tool", "Which animal says meow?", ("cat",)),
    ("no_tool", "What language is spoken in Spain?", ("spanish",)),
    ("no_tool", "Good morning!", ("morning", "hello", "hi")),
    ("no_tool", "What do bees make?", ("honey",)),
]

_NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?")


def succeeded(group: str, expected: Expected, output: str | None, calls: int) -> bool:
    """Whether a completed run's answer is right (see the module docstring)."""
    text = output or ""
    if isinstance(expected, tuple):
        words = set(re.findall(r"[a-z]+", text.lower()))
        return group == "no_tool" and calls == 0 and any(w in words for w in expected)
    numbers = [float(n.replace(",", "")) for n in _NUMBER.findall(text)]
    return any(abs(n - expected) < 1e-6 for n in numbers)


async def _run_all() -> list[dict[str, Any]]:
    model = LocalModel()
    model.load()
    agent = dataclasses.replace(calculator, model=model, budget=Budget(max_steps=6))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "tether.db")
        runner = Runner(store)
        for group, task, expected in TASKS:
            started = time.perf_counter()
            result = await runner.run(agent, task)
            seconds = time.perf_counter() - started
            events = await store.read(result.run_id)
            calls = sum(e.type == EventType.TOOL_INTENT for e in events)
            ok = result.status == RunStatus.COMPLETED and succeeded(
                group, expected, result.output, calls
            )
            rows.append({"group": group, "ok": ok, "seconds": seconds, "calls": calls})
            print(f"{'ok  ' if ok else 'FAIL'} {group:9} {task!r} -> {result.status.value} "
                  f"{calls} call(s): {result.output!r}", file=sys.stderr)  # fmt: skip
        await store.close()
    return rows


def measure() -> list[dict[str, Any]]:
    """Success rate and median seconds per group."""
    rows = asyncio.run(_run_all())
    lines = []
    model = "SmolLM2-135M-Instruct.Q4_1"
    for group in ("one_call", "two_calls", "no_tool"):
        mine = [r for r in rows if r["group"] == group]
        ok = sum(r["ok"] for r in mine)
        lines.append(emit("local_task_success", ok / len(mine), "fraction", group=group,
                          tasks=len(mine), succeeded=ok, model=model))  # fmt: skip
        lines.append(emit("local_task_s_p50", statistics.median(r["seconds"] for r in mine),
                          "s", group=group, tasks=len(mine), model=model))  # fmt: skip
        lines.append(emit("local_tool_calls_mean", statistics.mean(r["calls"] for r in mine),
                          "calls", group=group, tasks=len(mine), model=model))  # fmt: skip
    return lines


if __name__ == "__main__":
    write_results(__file__, measure())
