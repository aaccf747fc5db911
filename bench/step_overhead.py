"""Per-step overhead of the durable step loop on workload W1 (issue: durable core).

Runs each configuration (durability FULL / NORMAL / none, N = 50, 200, 800) in a
fresh process, so peak RSS is per configuration; then times resuming (load and
fold) the N=800 run in a fresh process. Prints one JSON object per figure and
writes them to bench/results/step_overhead.jsonl.
"""

from __future__ import annotations

import asyncio
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import commit_latency_ms, emit, w1_agent, write_results  # noqa: E402

from tether.core import Event  # noqa: E402
from tether.models import FunctionModel, ModelRequest, ModelResponse  # noqa: E402
from tether.runtime import Runner, fold  # noqa: E402
from tether.store import Lease, SQLiteStore  # noqa: E402

SIZES = (50, 200, 800)
#: A run id of the length real ones have (they are repeated in stored rows).
RUN_ID = "run_01kmb0z6f8cxc3rj1ad2y5g0fz"


class NoStore:
    """Keeps nothing: the loop's own cost, without persistence."""

    async def append(self, events: Sequence[Event], *, lease: Lease | None = None) -> None:
        return None

    async def acquire(self, events: Sequence[Event], *, owner: str, ttl_s: float,
                      takeover: str | None = None) -> Lease:
        return Lease(run_id=events[0].run_id, owner=owner, token=1, ttl_s=ttl_s, expires_at=0)

    async def release(self, lease: Lease) -> None:
        return None

    async def renew(self, lease: Lease) -> None:
        return None

    async def lease(self, run_id: str) -> Lease | None:
        return None

    async def close(self) -> None:
        return None


class Timed(FunctionModel):
    """Records when each model call starts: the step boundaries."""

    def __init__(self, inner: FunctionModel) -> None:
        super().__init__(inner._function)
        self.marks: list[float] = []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        self.marks.append(time.perf_counter())
        return await super().complete(request)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


async def measure(
    durability: str, n: int, db: Path, *, threaded: bool = False
) -> list[dict[str, Any]]:
    agent = w1_agent(n, threaded=threaded)
    model = Timed(agent.model)  # type: ignore[arg-type]
    from dataclasses import replace

    agent = replace(agent, model=model)
    store: Any = NoStore() if durability == "none" else SQLiteStore(db, synchronous=durability)  # type: ignore[arg-type]
    runner = Runner(store)
    started = time.perf_counter()
    result = await runner.run(agent, "look up the records", run_id=RUN_ID)
    total = time.perf_counter() - started
    assert result.output == f"looked up {n} records", result
    steps = [(b - a) * 1000 for a, b in zip(model.marks, model.marks[1:], strict=False)]
    decile = max(1, len(steps) // 10)
    config = {"durability": durability, "N": n, "tool": "thread" if threaded else "inline"}
    lines = [
        emit("step_ms_median", statistics.median(steps), "ms", **config),
        emit("step_ms_first_decile", statistics.median(steps[:decile]), "ms", **config),
        emit("step_ms_last_decile", statistics.median(steps[-decile:]), "ms", **config),
        emit("total_s", total, "s", **config),
    ]
    if durability != "none":
        store.checkpoint()
        size = _dir_bytes(db)
        lines.append(emit("persisted_bytes", size, "bytes", **config))
        lines.append(emit("bytes_per_step", size / n, "bytes", **config))
        await store.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(emit("peak_rss_mb", rss, "MB", **config))
    return lines


async def resume_time(db: Path) -> float:
    """Open the store, load and fold the finished N=800 run (median of 5)."""
    times = []
    for _ in range(5):
        started = time.perf_counter()
        store = SQLiteStore(db)
        state = fold(RUN_ID, await store.read(RUN_ID))
        times.append((time.perf_counter() - started) * 1000)
        assert state.step == 801
        await store.close()
    return statistics.median(times)


def _child(args: list[str]) -> list[dict[str, Any]]:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                         check=True)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    print("\n".join(lines), flush=True)
    return [json.loads(line) for line in lines]


def main() -> None:
    lines: list[dict[str, Any]] = []
    # Benchmarks write next to the project (the disk users run on), not to tmpfs.
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        directory = Path(tmp)
        lines.append(emit("commit_latency_ms", commit_latency_ms(directory), "ms",
                          durability="FULL"))
        for durability in ("FULL", "NORMAL", "none"):
            for n in SIZES:
                db = directory / f"{durability}-{n}.db"
                lines += _child(["--measure", durability, str(n), str(db)])
        # The same tool as a plain sync tool (worker thread): the thread hop's cost.
        for durability in ("FULL", "NORMAL"):
            lines += _child(["--measure", durability, "200", str(directory / "t.db"),
                             "--threaded"])
            (directory / "t.db").unlink()
        lines += _child(["--resume", str(directory / "FULL-800.db")])
        # A step commits twice: what it costs beyond two commits of this disk.
        floor = lines[0]["value"]
        for line in [x for x in lines if x["metric"] == "step_ms_median"
                     and x["durability"] == "FULL" and x["tool"] == "inline"]:
            lines.append(emit("step_ms_beyond_commit_floor", line["value"] - 2 * floor, "ms",
                              durability="FULL", N=line["N"], commits_per_step=2,
                              commit_latency_ms=floor))
        # Ratios hold across machines of this kind (their CPUs differ about 3x): the FULL
        # step against this disk's single commit (two commits a step: 2x is the floor;
        # limit 3x), the NORMAL step against the store-less one (limit 2.5x; the
        # store-less step is the CPU reference figure).
        median = {(x["durability"], x["N"]): x["value"] for x in lines
                  if x["metric"] == "step_ms_median" and x.get("tool") == "inline"}
        lines.append(emit("full_step_vs_commit_ratio", median["FULL", 800] / floor, "ratio",
                          N=800, limit=3.0, commit_latency_ms=floor))
        lines.append(emit("normal_step_vs_storeless_ratio",
                          median["NORMAL", 800] / median["none", 800], "ratio", N=800,
                          limit=2.5, storeless_step_ms=median["none", 800]))
        # Growth: bytes added per step between N=200 and N=800, fixed overhead aside.
        size = {(x["durability"], x["N"]): x["value"] for x in lines
                if x["metric"] == "persisted_bytes"}
        for durability in ("FULL", "NORMAL"):
            slope = (size[durability, 800] - size[durability, 200]) / 600
            lines.append(emit("bytes_per_step_marginal", slope, "bytes",
                              durability=durability, N="200-800"))
    write_results(__file__, lines)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        asyncio.run(measure(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]),
                            threaded="--threaded" in sys.argv))
    elif sys.argv[1:2] == ["--resume"]:
        emit("resume_ms", asyncio.run(resume_time(Path(sys.argv[2]))), "ms", N=800,
             durability="FULL")
    else:
        main()
