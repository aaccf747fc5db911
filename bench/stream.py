"""What the live stream and toolsets cost the step loop (issue 16, items 2 and 6).

W1 (one inline tool call a step) without a store, N = 800, in this process, each
configuration run 3 times (median of the per-step medians):

- ``none``: no subscriber (the loop checks one tuple and publishes nothing);
- ``subscriber``: one async subscriber reading everything (events and deltas);
- ``observer``: one plain observer (a thread fed by the stream);
- ``stalled``: one subscriber that never reads (buffer 64): what it drops is counted;
- ``wrapped``: no subscriber, the tool behind Prefixed(Filtered(...)) toolsets asked
  at every step.

Also the store-less step of the same run as the CPU reference, and the items a stalled
subscriber dropped. Prints one JSON object per figure and writes
bench/results/stream.jsonl.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, w1_agent, write_results  # noqa: E402
from step_overhead import RUN_ID, NoStore, Timed  # noqa: E402

from tether.core import Event, ToolCall  # noqa: E402
from tether.models import FunctionModel, ModelRequest, step_of  # noqa: E402
from tether.runtime import Runner  # noqa: E402
from tether.tools import FilteredToolset, FunctionToolset, PrefixedToolset  # noqa: E402

N = 800
REPEATS = 3


def _agent(config: str) -> Any:
    agent = w1_agent(N)
    if config == "wrapped":
        def script(request: ModelRequest) -> str | ToolCall:
            k = step_of(request)
            return ToolCall.of("w_lookup", i=k) if k < N else f"looked up {N} records"

        tools = [PrefixedToolset(FilteredToolset(FunctionToolset(list(agent.tools)),
                                                 lambda step, d: True), "w")]
        agent = replace(agent, tools=tools, model=FunctionModel(script))
    return replace(agent, model=Timed(agent.model))


async def _once(config: str) -> tuple[float, int]:
    agent = _agent(config)
    seen: list[Event] = []

    def observer(events: Sequence[Event]) -> None:
        seen.extend(events)

    runner = Runner(NoStore(), observers=[observer] if config == "observer" else [])
    reader: asyncio.Task[None] | None = None
    sub = None
    if config in ("subscriber", "stalled"):
        sub = runner.stream.subscribe(maxsize=64 if config == "stalled" else None)
    if config == "subscriber" and sub is not None:
        async def read() -> None:
            async for _ in sub:
                pass

        reader = asyncio.create_task(read())
    result = await runner.run(agent, "look up the records", run_id=RUN_ID)
    assert result.output == f"looked up {N} records", result
    dropped = 0
    if sub is not None:
        dropped = sub.dropped
        sub.close()
    if reader is not None:
        await reader
    marks = agent.model.marks
    steps = [(b - a) * 1000 for a, b in zip(marks, marks[1:], strict=False)]
    return statistics.median(steps), dropped


def main() -> None:
    lines: list[dict[str, Any]] = []
    configs = ("none", "subscriber", "observer", "stalled", "wrapped")
    medians: dict[str, list[float]] = {c: [] for c in configs}
    dropped = 0
    started = time.perf_counter()
    for _ in range(REPEATS):  # interleaved, so load on the machine hits all alike
        for config in configs:
            median, lost = asyncio.run(_once(config))
            medians[config].append(median)
            dropped = max(dropped, lost)
    for config in configs:
        lines.append(emit("step_ms_median", statistics.median(medians[config]), "ms",
                          N=N, stream=config, store="none"))
    base = statistics.median(medians["none"])
    for config in configs[1:]:
        lines.append(emit("step_vs_no_subscriber_ratio",
                          statistics.median(medians[config]) / base, "x", N=N,
                          stream=config))
    lines.append(emit("stalled_subscriber_dropped", dropped, "items", N=N, buffer=64))
    lines.append(emit("bench_s", time.perf_counter() - started, "s"))
    write_results(__file__, lines)


if __name__ == "__main__":
    main()
