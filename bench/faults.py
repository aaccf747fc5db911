"""Failing gracefully under load (issue: failure handling).

Scenario ``faults``: 200 runs of a 10-step task against the fault server, 30% of model
requests failing (429 with a Retry-After, 500, connection reset, a hang past the
attempt timeout, malformed tool-call arguments). Scenario ``gateway``: the same with
what gateways and proxies send (non-JSON and HTML 200s, an HTML 502, a cut JSON body,
a trickle, an oversized body, wrong-typed tool arguments). Scenario ``primary_down``:
the primary model answers 503 to everything; a fallback serving the *same model name*
on another port is configured, and the primary's breaker must open anyway.

Timeouts and injected delays are derived from the fault-free latency of a model call
measured first in the same run (``fault_free_latency_ms``), so the benchmark means the
same thing on a slower machine: a healthy request never misses the attempt timeout.

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
from dataclasses import dataclass
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
GATEWAY_MIX = ("not_json", "truncated_json", "html_200", "html_502", "trickle", "huge",
               "wrong_type_args")
BUDGET = Budget(max_steps=40, max_seconds=120)


@dataclass(frozen=True, kw_only=True)
class Scale:
    """Timeouts and delays as multiples of the fault-free latency of one model call."""

    latency_p50_s: float
    latency_p99_s: float
    #: Median duration of a whole fault-free run (the base of the extra latency).
    run_p50_s: float

    @property
    def timeout_s(self) -> float:
        # Well above a healthy call under the same load (its p99 at the same
        # concurrency; retries add about a third more requests), so only injected
        # faults miss it.
        return max(0.2, 3 * self.latency_p99_s, 5 * self.latency_p50_s)

    @property
    def hang_s(self) -> float:
        return 1.5 * self.timeout_s

    @property
    def retry_after_max_s(self) -> float:
        return max(0.05, 2 * self.latency_p50_s)

    def config(self) -> dict[str, float]:
        return {"fault_free_latency_ms": round(self.latency_p50_s * 1000, 2),
                "fault_free_latency_ms_p99": round(self.latency_p99_s * 1000, 2),
                "attempt_timeout_s": round(self.timeout_s, 3),
                "hang_s": round(self.hang_s, 3)}


@tool(idempotent=True, inline=True)
def lookup(i: int) -> str:
    """Look up record i."""
    return f"record {i}"


def _policy(timeout_s: float, base_delay_s: float = 0.01) -> Policy:
    return Policy(
        model_retry=RetryPolicy(max_attempts={"rate_limit": 8, "transient": 8,
                                              "misbehavior": 8},
                                base_delay_s=base_delay_s, max_delay_s=20 * base_delay_s),
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


async def measure(directory: Path) -> tuple[Scale, float]:
    """Fault-free latency of one model call (from the journal), and requests per run."""
    store = SQLiteStore(directory / "clean.db", synchronous="NORMAL")
    with FaultServer(responder=counting_responder(STEPS)) as clean:
        model = _model(clean.base_url, "clean")
        agent = Agent(name="w", model=model, tools=[lookup], budget=BUDGET,
                      policy=_policy(60.0))
        baseline = await _runs(Runner(store), agent, 40, CONCURRENCY)
        await model.aclose()
        requests_per_run = len(clean.received) / 40
    latencies: list[float] = []
    for result, _ in baseline:
        latencies += [(e.duration_ms or 0.0) / 1000 for e in await store.read(result.run_id)
                      if e.type == EventType.MODEL_RESPONSE]
    latencies.sort()
    await store.close()
    scale = Scale(latency_p50_s=statistics.median(latencies),
                  latency_p99_s=latencies[int(len(latencies) * 0.99)],
                  run_p50_s=statistics.median(s for _, s in baseline))
    return scale, requests_per_run


async def faults(directory: Path, scale: Scale, fault_free_requests: float, *,
                 scenario: str, mix: tuple[str, ...]) -> list[dict[str, Any]]:
    rng = random.Random(7)
    trickle_interval = scale.timeout_s / 20  # a ~400-byte body then takes 20 timeouts
    plan = [Fault(kind=rng.choice(mix),
                  retry_after_s=round(rng.uniform(0, scale.retry_after_max_s), 3),
                  interval_s=trickle_interval, size_bytes=6 * 1024 * 1024,
                  declare_length=rng.random() < 0.5)
            if rng.random() < FAILURE_RATE else Fault() for _ in range(20_000)]
    config = {"scenario": scenario, "runs": RUNS, "steps": STEPS,
              "failure_rate": FAILURE_RATE, "concurrency": CONCURRENCY, **scale.config()}
    store = SQLiteStore(directory / f"{scenario}.db", synchronous="NORMAL")
    policy = _policy(scale.timeout_s, base_delay_s=max(0.01, scale.latency_p50_s))
    with FaultServer(responder=counting_responder(STEPS), hang_s=scale.hang_s,
                     fault_for=lambda i: plan[i % len(plan)]) as server:
        model = _model(server.base_url, "faulty")
        agent = Agent(name="w", model=model, tools=[lookup], budget=BUDGET, policy=policy)
        results = await _runs(Runner(store, rng=random.Random(1)), agent, RUNS, CONCURRENCY)
        await model.aclose()
        requests = len(server.received)
        failed_share = sum(1 for f in server.faults() if f != "ok") / requests
    base_latency = scale.run_p50_s
    await store.close()
    completed = sum(1 for r, _ in results if r.status == RunStatus.COMPLETED)
    why = sorted(f"{type(r.error).__name__}: {r.error.message[:80] if r.error else ''}"
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
        self.port = ""

    def __call__(self, events: Sequence[Event]) -> None:
        for e in events:
            if e.type == EventType.BREAKER and self.port in e.payload["name"]:
                self.moves.append((time.monotonic(), e.payload["to_state"]))


async def primary_down(directory: Path, scale: Scale) -> list[dict[str, Any]]:
    config = {"scenario": "primary_down", "runs": RUNS, "steps": STEPS, "concurrency": 1,
              "same_model_name": True, **scale.config()}
    store = SQLiteStore(directory / "down.db", synchronous="NORMAL")
    watch = BreakerWatch()
    with FaultServer(fault_for=lambda i: Fault(kind="unavailable")) as dead, \
            FaultServer(responder=counting_responder(STEPS)) as backup:
        # Both serve "qwen": only the endpoint tells the primary's breaker apart.
        primary, fallback = _model(dead.base_url, "qwen"), _model(backup.base_url, "qwen")
        watch.port = f":{dead.port}/"
        agent = Agent(name="w", model=primary, fallbacks=[fallback], tools=[lookup],
                      budget=BUDGET, policy=_policy(scale.timeout_s))
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
    opened = sum(1 for _, s in watch.moves if s == "open")
    return [
        emit("completion_rate", completed / RUNS, "ratio", **config),
        emit("requests_to_open_primary", unexpected, "requests",
             primary_requests=len(arrivals), half_open_probes=probes, **config),
        emit("primary_breaker_openings", opened, "transitions", **config),
        emit("budget_violations", _budget_violations(results), "runs", **config),
    ]


async def main(directory: Path) -> None:
    scale, requests_per_run = await measure(directory)
    lines = [emit("fault_free_latency_ms", scale.latency_p50_s * 1000, "ms",
                  scenario="baseline", runs=40, concurrency=CONCURRENCY, **scale.config())]
    lines += await faults(directory, scale, requests_per_run, scenario="faults", mix=MIX)
    lines += await faults(directory, scale, requests_per_run, scenario="gateway",
                          mix=GATEWAY_MIX)
    lines += await primary_down(directory, scale)
    write_results(__file__, lines)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory(dir=Path(__file__).resolve().parent) as tmp:
        asyncio.run(main(Path(tmp)))
