"""What working memory costs: a scripted memory agent whose steps run two concurrent
tools, with and without working-memory entries, on a real SQLite file.

Figures (``mode`` = ``puts``: each call puts 3 entries of about 200 characters and
reads one; ``working``: the same, and one entry promoted to long-term memory every
10th step, which later steps' recalls then search; ``plain``: the same calls and
results, no entries):

- ``working_commits_per_step``: journal transactions per step (entries ride with
  their call's outcome: the same count as ``plain``, plus one per promoting step);
- ``working_step_ms_mean`` and ``working_step_cpu_ms_mean`` (process CPU time);
- ``working_bytes_per_put``: file growth per entry, ``puts`` beyond ``plain``;
- ``working_put_us_p50``: one ``put`` in process (the JSON copy), no journal.

The embedder is a hashed bag of words (instant), so the figures are the journal's and
working memory's, not the embedding model's.
"""

from __future__ import annotations

import hashlib
import os
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import emit, write_results  # noqa: E402

from tether.core import Event, Message, ToolCall  # noqa: E402
from tether.memory import EstimateTokenCounter, SQLiteMemoryStore  # noqa: E402
from tether.models import FunctionModel, ModelRequest  # noqa: E402
from tether.runtime import Agent, Budget, MemoryConfig, Runner  # noqa: E402
from tether.runtime._state import WorkingState  # noqa: E402
from tether.runtime._working import StepView  # noqa: E402
from tether.store import Lease, SQLiteStore  # noqa: E402
from tether.tools import Tool, ToolContext, tool  # noqa: E402

STEPS = 200
VALUE = "sensor reading nominal, checksum verified, batch ok; " * 4  # ~210 chars


class HashEmbedder:
    name = "bench-hash-384"
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


class CountingStore(SQLiteStore):
    """Counts the journal's transactions (appends)."""

    appends = 0

    async def append(self, events: Sequence[Event], *, lease: Lease | None = None,
                     within: Any = None) -> None:
        self.appends += 1
        await super().append(events, lease=lease, within=within)


def tools(mode: str) -> list[Tool]:
    def body(ctx: ToolContext, name: str) -> str:
        w = ctx.working
        if mode != "plain" and w is not None:
            for i in range(3):
                w.put(f"{name}{i}", f"{VALUE} {ctx.step}")
            w.get("a0")
            if mode == "working" and name == "a" and ctx.step % 10 == 0:
                w.promote("a0", as_key=f"fact{ctx.step}")
        return f"{name} done at step {ctx.step}"

    @tool(idempotent=True, inline=True)
    def a(ctx: ToolContext) -> str:
        """Tool a."""
        return body(ctx, "a")

    @tool(idempotent=True, inline=True)
    def b(ctx: ToolContext) -> str:
        """Tool b."""
        return body(ctx, "b")

    return [a, b]


def answer(request: ModelRequest) -> Message:
    if request.step <= STEPS:
        return Message.assistant(None, (ToolCall.of("a"), ToolCall.of("b")))
    return Message.assistant("done")


def run(mode: str, directory: Path) -> dict[str, float]:
    db = directory / f"{mode}.db"
    store = CountingStore(db, synchronous="NORMAL")
    mstore = SQLiteMemoryStore(db, embedder=HashEmbedder())
    agent = Agent(name="bench", model=FunctionModel(answer), tools=tools(mode),
                  budget=Budget(max_steps=STEPS + 2),
                  memory=MemoryConfig(budget=4000, store=mstore,
                                      counter=EstimateTokenCounter()))
    cpu, wall = time.process_time(), time.perf_counter()
    result = Runner(store).run_sync(agent, "Run the batch.")
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert str(result.status) == "completed", result.error
    store.checkpoint()
    mstore.close()
    return {"appends": store.appends, "wall_ms": wall * 1000, "cpu_ms": cpu * 1000,
            "bytes": sum(p.stat().st_size for p in directory.glob(f"{mode}.db*"))}


def put_cost() -> float:
    state = WorkingState(step=1)
    view = StepView(state, call_id="c", tool="t")
    times = []
    for i in range(5000):
        started = time.perf_counter()
        view.put(f"k{i % 50}", {"text": VALUE, "i": i})
        times.append((time.perf_counter() - started) * 1e6)
    return statistics.median(times)


def main() -> None:
    lines: list[dict[str, Any]] = []
    load = round(os.getloadavg()[0], 1)
    with tempfile.TemporaryDirectory() as tmp:
        figures = {mode: run(mode, Path(tmp)) for mode in ("plain", "puts", "working")}
    steps = STEPS + 1
    for mode, f in figures.items():
        lines.append(emit("working_commits_per_step", f["appends"] / steps, "commits",
                          mode=mode, steps=steps, load_avg_1m=load))
        lines.append(emit("working_step_ms_mean", f["wall_ms"] / steps, "ms", mode=mode,
                          steps=steps, synchronous="NORMAL", load_avg_1m=load))
        lines.append(emit("working_step_cpu_ms_mean", f["cpu_ms"] / steps, "ms", mode=mode,
                          steps=steps, load_avg_1m=load))
    puts = STEPS * 6
    extra = figures["puts"]["bytes"] - figures["plain"]["bytes"]
    lines.append(emit("working_bytes_per_put", extra / puts, "bytes", puts=puts,
                      value_chars=len(VALUE) + 4, load_avg_1m=load))
    lines.append(emit("working_put_us_p50", put_cost(), "us", value_chars=len(VALUE),
                      load_avg_1m=load))
    write_results(__file__, lines)


if __name__ == "__main__":
    main()
