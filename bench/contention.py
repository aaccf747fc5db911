"""Many processes driving runs on one SQLite file: nothing lost, nothing crashed.

16 processes x 4 concurrent runs x 40 steps on one file, with the default busy timeout.
Each run's tool records its side effect in a separate file (``effects.db``) before the
runtime commits its result, so a result lost to a locked store shows as a side effect
without a committed ``tool.result``. Prints (and writes to
bench/results/contention.jsonl):

- ``lost_results``: side effects whose result was never committed (must be 0);
- ``crashed_runs``: runs that did not complete (must be 0);
- ``commits_per_s``: commits (events batches) of all processes per wall-clock second
  (bounded by ``commit_latency_ms``, the disk's one-row commit: commits are serial);
- ``busy_attempts``: attempts that found the file locked and waited (off the loop);
- ``longest_lock_wait_ms``: the longest one call waited (the bound is 30 000 ms);
- ``append_us_plain`` / ``append_us_fenced``: an uncontended append without and with a
  lease (what fencing adds to every commit).

``python bench/contention.py --worker DB EFFECTS RUNS STEPS PREFIX`` is one process of
it (``tests/store/test_contention.py`` runs a smaller one).
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import commit_latency_ms, emit, write_results  # noqa: E402

from tether.core import Event, ToolCall  # noqa: E402
from tether.models import ScriptedModel  # noqa: E402
from tether.runtime import Agent, Budget, Runner  # noqa: E402
from tether.store import SQLiteStore  # noqa: E402
from tether.tools import ToolContext, tool  # noqa: E402

PROCESSES, RUNS, STEPS = 16, 4, 40


def _effects(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=120, isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("CREATE TABLE IF NOT EXISTS effects(run_id TEXT, key TEXT, step INTEGER)")
    return db


async def worker(db: str, effects: str, runs: int, steps: int, prefix: str) -> dict[str, Any]:
    """Drive ``runs`` runs at once in this process; report what happened to each."""
    side = _effects(effects)
    lock = threading.Lock()

    @tool(name="record")
    def record(ctx: ToolContext, step: int) -> str:
        """Record one side effect, outside the journal (in a worker thread)."""
        with lock:
            side.execute("INSERT INTO effects VALUES (?, ?, ?)",
                         (ctx.run_id, ctx.idempotency_key, step))
        return f"recorded {step}"

    store = SQLiteStore(db)
    runner = Runner(store)

    async def one(i: int) -> str:
        script: list[Any] = [ToolCall.of("record", step=k) for k in range(1, steps + 1)]
        agent = Agent(name="contender", model=ScriptedModel([*script, "done"]),
                      tools=[record], budget=Budget(max_steps=steps + 2))
        try:
            result = await runner.run(agent, "record", run_id=f"{prefix}-{i}")
        except BaseException as e:  # an ExceptionGroup too: a crash is what we count
            return f"crashed: {type(e).__name__}: {e}"
        return str(result.status)

    outcomes = await asyncio.gather(*(one(i) for i in range(runs)))
    report = {"outcomes": outcomes, "busy_attempts": getattr(store, "busy_attempts", 0),
              "longest_wait_s": getattr(store, "longest_lock_wait_s", 0.0)}
    await store.close()
    side.close()
    return report


def count(db: Path, effects: Path) -> dict[str, int]:
    """Side effects without a committed result, runs not completed, commits made."""

    async def journal() -> tuple[set[tuple[str, str]], int, int]:
        store = SQLiteStore(db, readonly=True)
        results: set[tuple[str, str]] = set()
        crashed = commits = 0
        for run in await store.runs(limit=100_000):
            crashed += run.status != "completed"
            events = await store.read(run.run_id)
            keys = {e.payload["call_id"]: e.payload["idempotency_key"] for e in events
                    if e.type == "tool.intent"}
            results |= {(run.run_id, keys[e.payload["call_id"]]) for e in events
                        if e.type == "tool.result"}
            # run.started, then one commit per model response and per tool outcome.
            commits += sum(e.type in ("run.started", "model.response", "tool.result",
                                      "tool.error") for e in events)
        await store.close()
        return results, crashed, commits

    results, crashed, commits = asyncio.run(journal())
    side = sqlite3.connect(effects)
    done = {(r, k) for r, k in side.execute("SELECT run_id, key FROM effects")}
    side.close()
    return {"lost_results": len(done - results), "crashed_runs": crashed,
            "effects": len(done), "commits": commits}


def run(directory: Path, processes: int, runs: int, steps: int) -> dict[str, Any]:
    """The whole workload; returns the counts and the wall time."""
    db, effects = directory / "contention.db", directory / "effects.db"
    SQLiteStore(db).checkpoint()  # the schema exists before the processes race
    _effects(str(effects)).close()
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--worker", str(db), str(effects),
                               str(runs), str(steps), f"p{p:02d}"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for p in range(processes)]
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=900)
        reports.append(json.loads(out) if proc.returncode == 0 else {"error": err[-2000:]})
    elapsed = time.perf_counter() - started
    counts = count(db, effects)
    return {**counts, "seconds": elapsed, "reports": reports,
            "busy_attempts": sum(r.get("busy_attempts", 0) for r in reports),
            "longest_wait_s": max(r.get("longest_wait_s", 0.0) for r in reports),
            "failed_processes": sum("error" in r for r in reports)}


async def append_cost(directory: Path, n: int = 2000) -> dict[str, float]:
    """Median time of an uncontended append, plain and fenced by a lease (NORMAL: the
    disk's flush aside), interleaved so both see the same machine."""
    store = SQLiteStore(directory / "fence.db", synchronous="NORMAL")

    def event(run_id: str, seq: int) -> Event:
        kind = "run.started" if seq == 1 else "decision"
        return Event(run_id=run_id, seq=seq, type=kind, step=seq, ts=0.0,
                     payload={"agent": "a", "task": "t"} if seq == 1 else {"x": "y" * 100})

    lease = await store.acquire([event("fenced", 1)], owner="bench", ttl_s=60)
    await store.append([event("plain", 1)])
    fenced, plain = [], []
    for seq in range(2, n + 2):
        started = time.perf_counter()
        await store.append([event("fenced", seq)], lease=lease)
        fenced.append(time.perf_counter() - started)
        started = time.perf_counter()
        await store.append([event("plain", seq)])
        plain.append(time.perf_counter() - started)
    await store.close()
    return {"plain": statistics.median(plain) * 1e6, "fenced": statistics.median(fenced) * 1e6}


def main() -> None:
    config = {"processes": PROCESSES, "runs_per_process": RUNS, "steps": STEPS,
              "durability": "FULL", "busy_timeout_ms": 30000}
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        floor = commit_latency_ms(Path(tmp))
        got = run(Path(tmp), PROCESSES, RUNS, STEPS)
        cost = asyncio.run(append_cost(Path(tmp)))
    crashed = got["crashed_runs"] + got["failed_processes"] * RUNS
    lines = [
        emit("commit_latency_ms", floor, "ms", durability="FULL", processes=1),
        emit("lost_results", got["lost_results"], "results", **config),
        emit("crashed_runs", crashed, "runs", **config),
        emit("commits_per_s", got["commits"] / got["seconds"], "commits/s", **config),
        emit("busy_attempts", got["busy_attempts"], "attempts", **config),
        emit("longest_lock_wait_ms", got["longest_wait_s"] * 1000, "ms", **config),
        emit("wall_s", got["seconds"], "s", **config),
        emit("append_us_plain", cost["plain"], "us", durability="NORMAL", processes=1),
        emit("append_us_fenced", cost["fenced"], "us", durability="NORMAL", processes=1),
    ]
    write_results(__file__, lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        db, effects, runs, steps, prefix = sys.argv[2:7]
        print(json.dumps(asyncio.run(worker(db, effects, int(runs), int(steps), prefix))))
    else:
        main()
