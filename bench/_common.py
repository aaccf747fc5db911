"""Helpers shared by the benchmark scripts: emitting figures, the W1 workload."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tether.core import ToolCall
from tether.models import FunctionModel, ModelRequest, step_of
from tether.runtime import Agent, Budget
from tether.tools import tool

RESULTS = Path(__file__).resolve().parent / "results"


def emit(metric: str, value: float, unit: str, **config: Any) -> dict[str, Any]:
    """Print one figure as a JSON line and return it."""
    line = {"metric": metric, "value": round(value, 4), "unit": unit, **config}
    print(json.dumps(line), flush=True)
    return line


def write_results(script: str, lines: list[dict[str, Any]]) -> None:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{Path(script).stem}.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    print(f"wrote {path}", file=sys.stderr)


def _record(i: int) -> str:
    """Return the deterministic 1,000-character record number ``i``."""
    return (f"record {i:06d} " * 100)[:1000]


#: W1's tool, run on the event loop's thread (it is a fast, non-blocking function)...
lookup = tool(inline=True, name="lookup")(_record)
#: ...and the same tool as a plain sync tool, run in a worker thread (the default).
lookup_threaded = tool(name="lookup")(_record)


def w1_agent(n: int, *, threaded: bool = False) -> Agent:
    """Workload W1: call ``lookup(i=k)`` at step k for k < n, answer at step n."""

    def script(request: ModelRequest) -> str | ToolCall:
        k = step_of(request)
        return ToolCall.of("lookup", i=k) if k < n else f"looked up {n} records"

    return Agent(name="w1", model=FunctionModel(script),
                 tools=[lookup_threaded if threaded else lookup],
                 budget=Budget(max_steps=n + 1))


def commit_latency_ms(directory: Path) -> float:
    """The disk's floor: median latency of a one-row WAL commit at synchronous=FULL."""
    import apsw

    path = directory / "probe.db"
    db = apsw.Connection(str(path))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t(x)")
    times = []
    for _ in range(300):
        started = time.perf_counter()
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO t VALUES (?)", (b"x" * 200,))
        db.execute("COMMIT")
        times.append((time.perf_counter() - started) * 1000)
    db.close()
    return statistics.median(times)
