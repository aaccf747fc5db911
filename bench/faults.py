"""Failing gracefully under load (issue: failure handling).

Scenario ``faults``: 200 runs of a 10-step task against the fault server, 30% of model
requests failing (429 with Retry-After of 0-50 ms, 500, connection reset, a 200 ms
timeout, malformed tool-call arguments). Scenario ``primary_down``: the primary model
answers 503 to everything for the whole benchmark; a fallback is configured.

Prints one JSON object per figure and writes them to bench/results/faults.jsonl.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, write_results  # noqa: E402

from tether.core import Event, EventType, RunStatus  # noqa: E402
from tether.models import OpenAIModel  # noqa: E402
from tether.runtime import (  # noqa: E402
    Agent,
    BreakerSettings,
    Budget,
    Policy,
    RetryPolicy,
    Runner,
)
from tether.store import SQLiteStore  # noqa: E402
from tether.testing import Fault, FaultServer, counting_responder  # noqa: E402
from tether.tools import tool  # noqa: E402

RUNS = 200
STEPS = 10  # tool steps; the 11th request answers
CONCURRENCY = 25
FAILURE_RATE = 0.3
MIX = ("rate_limit", "server_error", "reset", "hang", "malformed_args")
BUDGET = Budget(max_steps=40, max_seconds=60)


@tool(idempotent=True, inline=True)
def lookup(i: int) -> str:
    """Look up record i."""
    return f"record {i}"


def _policy(timeout_s: float) -> Policy:
    return Policy(
        model_retry=RetryPolicy(max_attempts={"rate_limit": 8, "transient": 8,
                                              "misbehavior": 8},
                                base_delay_s=0.01, max_delay_s=0.2),
        model_timeout_s=timeout_s,
        max_consecutive_repairs=5, max_repairs=20,
        breaker=BreakerSettings(failure_threshold=5, reset_timeout_s=0.5),
    )


def _model(url: str, name: str) -> OpenAIModel:
    return OpenAIModel(name, api_key="sk-bench", base_url=url, provider="openai-compatible")


async def _runs(runner: Runner, agent: Agent, n: int, concurrency: int) -> list[tuple[Any, float]]:
    gate = asyncio.Semaphore(concurrency)

    async def one(i: int) -> tuple[Any, float]:
        async with gate:
            started = time.perf_counter()
            result = await runner.run(agent, f"look up {STEPS} records (run {i})")
            return result, time.perf_counter() - started

    return list(await asyncio.gather(*(one(i) for i in range(n))))


def _budget_violations(results: list[Any]) -> int:
    return sum(1 for r, seconds in results
               if r.steps > (BUDGET.max_steps or 0) or seconds > (BUDGET.max_seconds or 0))


async def faults(directory: Path) -> list[dict[str, Any]]:
    rng = random.Random(7)
    plan = [Fault(kind=rng.choice(MIX), retry_after_s=round(rng.uniform(0, 0.05), 3))
            if rng.random() < FAILURE_RATE else Fault() for _ in range(20_000)]
    config = {"scenario": "faults", "runs": RUNS, "steps": STEPS, "failure_rate": FAILURE_RATE,
              "concurrency": CONCURRENCY}
    store = SQLiteStore(directory / "faults.db", synchronous="NORMAL")
    with FaultServer(responder=counting_responder(STEPS), hang_s=0.3) as clean:
        model = _model(clean.base_url, "clean")
        agent = Agent(name="w", model=model, tools=[lookup], budget=BUDGET, policy=_policy(0.2))
        baseline = await _runs(Runner(store), agent, 40, CONCURRENCY)
        await model.aclose()
        fault_free_requests = len(clean.received) / 40
        base_latency = statistics.median(s for _, s in baseline)
    with FaultServer(responder=counting_responder(STEPS), hang_s=0.3,
                     fault_for=lambda i: plan[i % len(plan)]) as server:
        model = _model(server.base_url, "faulty")
        agent = Agent(name="w", model=model, tools=[lookup], budget=BUDGET, policy=_policy(0.2))
        results = await _runs(Runner(store, rng=random.Random(1)), agent, RUNS, CONCURRENCY)
        await model.aclose()
        requests = len(server.received)
        failed_share = sum(1 for f in server.faults() if f != "ok") / requests
    await store.close()
    completed = sum(1 for r, _ in results if r.status == RunStatus.COMPLETED)
    why = sorted(f"{(r.error or {}).get('type')}: {(r.error or {}).get('message', '')[:80]}"
                 for r, _ in results if r.status != RunStatus.COMPLETED)
    extra = sorted(max(0.0, s - base_latency) * 1000 for _, s in results)
    return [
        emit("completion_rate", completed / RUNS, "ratio", not_completed=why, **config),
        emit("request_ratio", requests / (fault_free_requests * RUNS), "ratio",
             observed_failure_share=round(failed_share, 3), **config),
        emit("extra_latency_ms_p50", extra[len(extra) // 2], "ms", **config),
        emit("extra_latency_ms_p95", extra[int(len(extra) * 0.95)], "ms", **config),
        emit("budget_violations", _budget_violations(results), "runs", **config),
    ]


class BreakerWatch:
    """Notes when the primary's breaker opens and half-opens, as the events commit."""

    def __init__(self) -> None:
        self.moves: list[tuple[float, str]] = []

    def __call__(self, events: Sequence[Event]) -> None:
        for e in events:
            if e.type == EventType.BREAKER and "primary" in e.payload["name"]:
                self.moves.append((time.monotonic(), e.payload["to_state"]))


async def primary_down(directory: Path) -> list[dict[str, Any]]:
    config = {"scenario": "primary_down", "runs": RUNS, "steps": STEPS, "concurrency": 1}
    store = SQLiteStore(directory / "down.db", synchronous="NORMAL")
    watch = BreakerWatch()
    with FaultServer(fault_for=lambda i: Fault(kind="unavailable")) as dead, \
            FaultServer(responder=counting_responder(STEPS)) as backup:
        primary, fallback = _model(dead.base_url, "primary"), _model(backup.base_url, "backup")
        agent = Agent(name="w", model=primary, fallbacks=[fallback], tools=[lookup],
                      budget=BUDGET, policy=_policy(2.0))
        # One run at a time: every request to the primary after the breaker opens must
        # then be a half-open probe, with no request of another run in flight.
        results = await _runs(Runner(store, observers=[watch]), agent, RUNS, 1)
        for model in (primary, fallback):
            await model.aclose()
        arrivals = [r.at for r in dead.received]
    await store.close()
    # Requests that reached the primary while its breaker was open (probes are sent
    # after the half_open transition, so they do not count).
    unexpected = 0
    for arrival in arrivals:
        state = "closed"
        for at, to_state in watch.moves:
            if at <= arrival:
                state = to_state
        unexpected += state == "open"
    completed = sum(1 for r, _ in results if r.status == RunStatus.COMPLETED)
    probes = sum(1 for _, s in watch.moves if s == "half_open")
    return [
        emit("completion_rate", completed / RUNS, "ratio", **config),
        emit("requests_to_open_primary", unexpected, "requests",
             primary_requests=len(arrivals), half_open_probes=probes, **config),
        emit("budget_violations", _budget_violations(results), "runs", **config),
    ]


async def main(directory: Path) -> None:
    lines = await faults(directory)
    lines += await primary_down(directory)
    write_results(__file__, lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        asyncio.run(main(Path(tmp)))
