"""The doctor: pathologies of a run, found in its journal.

:func:`diagnose` is a pure function of one run's events. Each detector looks for one
kind of waste or trouble and says what it saw, why it matters and where to look:

``repeated_call``
    The same tool called with the same arguments more than once. Arguments are
    compared as validated (the ``tool.intent``'s, else the model's JSON parsed), in
    canonical JSON with numbers normalised: ``10`` and ``10.0`` are the same.
``unused_result``
    A tool result the model never used. A result counts as used when one of its
    *salient tokens* (a word of 4+ characters or a number of 2+ digits, that had not
    appeared anywhere in the run before the result) appears in a later model output:
    an answer's text or a later call's arguments; numbers of four digits or more and
    ISO dates count also when reformatted (``1234567`` as "1.23 million" or
    "1,234,567", ``2026-11-30`` as "November 30"). Results with no salient token
    (``ok``, ``done``...) and results after which the model never spoke are not judged.
``wasted_steps``
    Two or more steps in a row whose tool calls all failed, before a step where the
    same tool succeeded: the waste, in steps and tokens, of getting the call right.
``call_loop``
    Five or more consecutive calls of one tool whose arguments differ only in one
    counter-like field (``page=1``, ``page=2``...) and whose results have the same
    shape (equal once digits are ignored, like "0 results"): paging through nothing.
``cycle``
    A sequence of two or more calls (tool and arguments) that repeats back to back at
    least twice: ``A B A B`` or ``A B C A B C``.
``no_progress``
    A step whose tool calls all returned exactly what the same tools had already
    returned earlier in the run: the step brought no new information.
``retry_storm``
    Many ``retry`` events close together (by default 5 or more within 60 s).
``outlier_step``
    A step whose latency (the time its model and tool calls took) or cost (USD, or
    tokens when the run's cost is zero or unknown) stands far outside the run's own distribution:
    more than ``k`` robust deviations above the median (``k`` times the median
    absolute deviation scaled by 1.4826, at least 10% of the median) and at least
    ``ratio`` times the median.
``refetched_evidence``
    (agents with memory) A call repeating an earlier successful one after the
    context built for its step had masked or dropped that result to fit the budget
    (``_doctor_memory.py``).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from ..core import (
    Event,
    EventType,
    FindingPayload,
    ModelResponsePayload,
    RetryPayload,
    RunStartedPayload,
    ToolErrorPayload,
    ToolIntentPayload,
    ToolResultPayload,
)
from ._doctor_memory import refetched_evidence
from ._doctor_waste import call_loops, wasted_steps
from ._finding import Finding, finding_identity, show_steps
from ._salience import date_key, dates_written, number_keys, numbers, numbers_written, tokens


@dataclass(frozen=True, kw_only=True)
class DoctorConfig:
    """Thresholds of the detectors."""

    #: A retry storm is at least this many retries ...
    storm_retries: int = 5
    #: ... within this many seconds.
    storm_window_s: float = 60.0
    #: Robust deviations above the median for an outlier step.
    outlier_k: float = 5.0
    #: And at least this many times the median.
    outlier_ratio: float = 3.0
    #: Fewer steps than this: no outlier detection.
    outlier_min_steps: int = 5
    #: Latency outliers must also exceed the median by this many milliseconds.
    outlier_min_latency_ms: float = 50.0
    #: Longest cycle (in calls) looked for.
    cycle_max_period: int = 8
    #: Salient tokens looked for per tool result.
    salient_tokens: int = 64
    #: Failed steps in a row before a success, for ``wasted_steps``.
    wasted_min_steps: int = 2
    #: Consecutive near-identical calls, for ``call_loop``.
    loop_min_calls: int = 5


def normalise(value: Any) -> Any:
    """Arguments as a model may write them, made comparable: integral floats as ints
    (``10.0`` is ``10``), recursively."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def _parsed(arguments: Any) -> Any:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments or "{}")
        except ValueError:
            return arguments
    return arguments


def _canonical(arguments: Any) -> str:
    value = _parsed(arguments)
    if isinstance(value, str):
        return value
    return json.dumps(normalise(value), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False)


def _steps(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(sorted(set(values)))


_show = show_steps


@dataclass(slots=True, kw_only=True)
class _Call:
    step: int
    call_id: str
    tool: str
    signature: str
    arguments: Any = None


@dataclass(slots=True, kw_only=True)
class _Run:
    """What the detectors need, extracted from the events in one pass."""

    run_id: str
    calls: list[_Call]
    outcomes: list[Event]
    responses: list[Event]
    retries: list[Event]
    task_text: str


def _extract(events: Sequence[Event]) -> _Run:
    calls: list[_Call] = []
    outcomes: list[Event] = []
    responses: list[Event] = []
    retries: list[Event] = []
    task = ""
    # The validated arguments of each call, by call id (what the tool received).
    validated = {p.call_id: p.arguments for p in (e.data for e in events)
                 if isinstance(p, ToolIntentPayload)}
    for e in events:
        p = e.data
        if isinstance(p, ModelResponsePayload):
            responses.append(e)
            for call in p.message.get("tool_calls") or []:
                name = str(call.get("name"))
                call_id = str(call.get("id"))
                arguments = validated.get(call_id, _parsed(call.get("arguments")))
                calls.append(_Call(step=e.step, call_id=call_id, tool=name,
                                   signature=f"{name}({_canonical(arguments)})",
                                   arguments=normalise(arguments)))
        elif isinstance(p, ToolResultPayload | ToolErrorPayload):
            outcomes.append(e)
        elif isinstance(p, RetryPayload):
            retries.append(e)
        elif isinstance(p, RunStartedPayload):
            task = f"{p.instructions or ''}\n{p.task}"
    run_id = events[0].run_id if events else ""
    return _Run(run_id=run_id, calls=calls, outcomes=outcomes, responses=responses,
                retries=retries, task_text=task)


# -- detectors ------------------------------------------------------------------------


def _repeated_calls(run: _Run) -> list[Finding]:
    groups: dict[str, list[_Call]] = {}
    for call in run.calls:
        groups.setdefault(call.signature, []).append(call)
    found = []
    for signature, calls in groups.items():
        if len(calls) < 2:
            continue
        steps = _steps(c.step for c in calls)
        found.append(Finding(
            kind="repeated_call", steps=steps,
            message=f"{_clip(signature)} was called {len(calls)} times with the same "
                    f"arguments (steps {_show(steps)}). Each repeat costs a model turn and "
                    "a tool call and usually returns what the model already has: it may "
                    "not be reading the result, or the result does not answer its question.",
            how_to_look=f"tether trace {run.run_id} --full", subject=signature,
        ))
    return found


def _output_text(response: Event) -> str:
    message = cast(ModelResponsePayload, response.data).message
    parts = [message.get("content") or ""]
    parts.extend(str(c.get("arguments") or "") for c in message.get("tool_calls") or [])
    return "\n".join(parts)


def _salient(words: Sequence[str], known: set[str], limit: int) -> list[str]:
    """The first ``limit`` distinct tokens of ``words`` the run had not seen before: what
    a tool result brought that is new."""
    salient: list[str] = []
    for token in words:
        if token not in known and token not in salient:
            salient.append(token)
            if len(salient) >= limit:
                break
    return salient


def _unused_results(run: _Run, config: DoctorConfig) -> list[Finding]:
    if not run.outcomes:
        return []
    last_used: dict[str, int] = {}  # token -> last step whose model output has it
    last_number: dict[str, int] = {}  # number key -> last step that wrote it
    last_date: dict[tuple[int, int], int] = {}  # (month, day) -> last step that wrote it
    for response in run.responses:
        text = _output_text(response)
        for token in tokens(text):
            last_used[token] = response.step
        for key in numbers_written(text):
            last_number[key] = response.step
        for date in dates_written(text):
            last_date[date] = response.step

    def used_later(token: str, step: int) -> bool:
        if last_used.get(token, -1) > step:
            return True
        date = date_key(token)
        return date is not None and last_date.get(date, -1) > step
    last_step = max((r.step for r in run.responses), default=0)
    # Everything the run had seen so far, in journal order.
    timeline = sorted([*run.responses, *run.outcomes], key=lambda e: e.seq)
    known = set(tokens(run.task_text))
    unused: dict[str, list[int]] = {}
    for e in timeline:
        if e.type == EventType.MODEL_RESPONSE:
            known.update(tokens(_output_text(e)))
            continue
        outcome = cast(ToolResultPayload | ToolErrorPayload, e.data)
        content = outcome.content
        words = tokens(content)
        if e.type == EventType.TOOL_RESULT and e.step < last_step:
            salient = _salient(words, known, config.salient_tokens)
            if salient and not any(used_later(t, e.step) for t in salient) and not any(
                    last_number.get(key, -1) > e.step
                    for value in numbers(content) for key in number_keys(value)):
                unused.setdefault(outcome.tool, []).append(e.step)
        known.update(words)
    found = []
    for tool, steps in unused.items():
        found.append(Finding(
            kind="unused_result", steps=_steps(steps),
            message=f"{len(steps)} result(s) of {tool} (steps {_show(steps)}) were never "
                    "used: nothing new in them appears in any later model answer or call. "
                    "The call was wasted, or the model ignored information it asked for.",
            how_to_look=f"tether trace {run.run_id} --full", subject=tool,
        ))
    return found


def _minimal_period(block: Sequence[int]) -> int:
    n = len(block)
    for p in range(1, n):
        if n % p == 0 and all(block[i] == block[i % p] for i in range(n)):
            return p
    return n


def _cycles(run: _Run, config: DoctorConfig) -> list[Finding]:
    ids: dict[str, int] = {}
    sequence = [ids.setdefault(c.signature, len(ids)) for c in run.calls]
    n = len(sequence)
    periods = range(2, min(config.cycle_max_period, n // 2) + 1)
    # matches[p][j]: how many consecutive positions from j equal the one p further on.
    matches: dict[int, list[int]] = {}
    for period in periods:
        run_length = [0] * (n + 1)
        for j in range(n - period - 1, -1, -1):
            if sequence[j] == sequence[j + period]:
                run_length[j] = run_length[j + 1] + 1
        matches[period] = run_length
    found: list[Finding] = []
    i = 0
    while i < n:
        best: tuple[int, int] | None = None  # (period, calls covered)
        for period in periods:
            repeats = (matches[period][i] + period) // period
            if repeats >= 2 and _minimal_period(sequence[i : i + period]) == period:
                if best is None or repeats * period > best[1]:
                    best = (period, repeats * period)
        if best is None:
            i += 1
            continue
        period, length = best
        steps = _steps(c.step for c in run.calls[i : i + length])
        pattern = " → ".join(_clip(c.signature, 40) for c in run.calls[i : i + period])
        found.append(Finding(
            kind="cycle", steps=steps,
            message=f"the calls {pattern} repeat {length // period} times in a row "
                    f"(steps {_show(steps)}). The agent is going round in a loop; "
                    "it will not end on its own before a budget stops it.",
            how_to_look=f"tether trace {run.run_id}", subject=pattern,
        ))
        i += length
    return found


def _no_progress(run: _Run) -> list[Finding]:
    seen: set[tuple[str, str]] = set()
    by_step: dict[int, list[bool]] = {}
    for e in run.outcomes:
        outcome = cast(ToolResultPayload | ToolErrorPayload, e.data)
        key = (outcome.tool, outcome.content)
        by_step.setdefault(e.step, []).append(key in seen)
        seen.add(key)
    steps = [s for s, repeats in sorted(by_step.items()) if repeats and all(repeats)]
    if not steps:
        return []
    return [Finding(
        kind="no_progress", steps=tuple(steps),
        message=f"{len(steps)} step(s) (steps {_show(steps)}) brought nothing new: every "
                "tool call in them returned exactly what an earlier call of the same tool "
                "had returned. They cost time and tokens and moved the run nowhere.",
        how_to_look=f"tether trace {run.run_id} --full",
    )]


def _retry_storms(run: _Run, config: DoctorConfig) -> list[Finding]:
    retries = sorted(run.retries, key=lambda e: e.ts)
    clusters: list[tuple[int, int]] = []
    start = 0
    for end in range(len(retries)):
        while retries[end].ts - retries[start].ts > config.storm_window_s:
            start += 1
        if end - start + 1 >= config.storm_retries:
            if clusters and start <= clusters[-1][1]:
                clusters[-1] = (clusters[-1][0], end)
            else:
                clusters.append((start, end))
    found = []
    for first, last in clusters:
        storm = retries[first : last + 1]
        steps = _steps(e.step for e in storm)
        data = [cast(RetryPayload, e.data) for e in storm]
        kinds = sorted({str((d.error or {}).get("type")) for d in data})
        targets = sorted({d.target for d in data})
        seconds = storm[-1].ts - storm[0].ts
        found.append(Finding(
            kind="retry_storm", steps=steps,
            message=f"{len(storm)} retries of {'/'.join(targets)} calls in {seconds:.1f} s "
                    f"(steps {_show(steps)}; errors: {', '.join(kinds)}). A provider or tool "
                    "is failing persistently: retrying costs time and may hit rate limits; "
                    "a circuit breaker or a fallback would stop sooner.",
            how_to_look=f"tether show {run.run_id}",
        ))
    return found


def _step_measures(events: Sequence[Event]) -> tuple[dict[int, float], dict[int, float], bool]:
    latency: dict[int, float] = {}
    cost: dict[int, float] = {}
    tokens_used: dict[int, float] = {}
    unknown = False
    last: tuple[int, int] | None = None  # the last model call's step and prompt tokens
    for e in events:
        if e.step <= 0:
            continue
        p = e.data
        if isinstance(p, ModelResponsePayload | ToolResultPayload | ToolErrorPayload):
            latency[e.step] = latency.get(e.step, 0.0) + (e.duration_ms or 0.0)
            priced = "cost_usd" in p.model_fields_set and p.cost_usd is not None
            if isinstance(p, ModelResponsePayload) and (p.cost_known is False or not priced):
                unknown = True  # an unpriced model: its cost says nothing
            if priced:
                cost[e.step] = cost.get(e.step, 0.0) + float(p.cost_usd or 0)
            if isinstance(p, ModelResponsePayload):
                usage = p.usage
                prompt = int(usage.get("input_tokens") or 0)
                # What a step adds: its output, and what its answer and results add to
                # the next prompt (a prompt growing with the run is no outlier; a step
                # whose result is huge is).
                if last is not None and last[0] in tokens_used:
                    tokens_used[last[0]] += float(max(0, prompt - last[1]))
                last = (e.step, prompt)
                if p.message.get("tool_calls"):
                    # Only steps that call tools: a final answer is longer by nature.
                    tokens_used[e.step] = tokens_used.get(e.step, 0.0) + float(
                        int(usage.get("output_tokens") or 0))
    # A free or unpriced run (every cost 0, or a model without a price): tokens instead.
    priced = not unknown and sum(cost.values()) > 0
    if priced:
        for step in latency:
            cost.setdefault(step, 0.0)
    return latency, (cost if priced else tokens_used), priced


def _outliers(
    run_id: str, values: dict[int, float], config: DoctorConfig, *, what: str, unit: str,
    floor: float = 0.0,
) -> list[Finding]:
    if len(values) < config.outlier_min_steps:
        return []
    data = list(values.values())
    median = statistics.median(data)
    mad = statistics.median(abs(x - median) for x in data)
    scale = max(1.4826 * mad, 0.1 * abs(median), 1e-12)
    flagged = [
        (step, x) for step, x in sorted(values.items())
        if (x - median) / scale > config.outlier_k and x >= config.outlier_ratio * median
        and x - median >= floor
    ]
    if not flagged:
        return []
    steps = tuple(step for step, _ in flagged)
    worst = max(x for _, x in flagged)
    return [Finding(
        kind="outlier_step", steps=steps,
        message=f"{len(steps)} step(s) (steps {_show(steps)}) stand far outside this run's "
                f"{what}: up to {worst:.4g} {unit} against a median of {median:.4g} {unit}. "
                "Look for a slow or expensive call, a huge prompt or result, or a hang.",
        how_to_look=f"tether trace {run_id}", subject=what,
    )]


def _clip(text: str, width: int = 80) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def diagnose(events: Sequence[Event], *, config: DoctorConfig | None = None) -> list[Finding]:
    """Every finding the detectors make on one run's events (``finding`` events and
    other runs' events are ignored), in detector order."""
    cfg = config or DoctorConfig()
    journal = [e for e in events if e.type != EventType.FINDING]
    if not journal:
        return []
    run = _extract(journal)
    found = [
        *_repeated_calls(run),
        *_unused_results(run, cfg),
        *_cycles(run, cfg),
        *_no_progress(run),
        *_retry_storms(run, cfg),
        *wasted_steps(run.run_id, journal, cfg.wasted_min_steps),
        *call_loops(run.run_id, [(c.step, c.call_id, c.tool, c.arguments) for c in run.calls],
                    run.outcomes, cfg.loop_min_calls),
        *refetched_evidence(run.run_id, journal),
    ]
    latency, cost, priced = _step_measures(journal)
    found += _outliers(run.run_id, latency, cfg, what="latency", unit="ms",
                       floor=cfg.outlier_min_latency_ms)
    found += _outliers(run.run_id, cost, cfg, what="cost" if priced else "token use",
                       unit="USD" if priced else "tokens")
    return found


def finding_payloads(events: Sequence[Event]) -> list[dict[str, Any]]:
    """The Runner's end-of-run hook: :func:`diagnose`, as ``finding`` event payloads,
    leaving out the findings ``events`` already holds (same kind, steps and subject),
    so a run resumed and stopped again does not journal them twice."""
    known = {finding_identity(p.dump()) for p in (e.data for e in events)
             if isinstance(p, FindingPayload)}
    fresh = []
    for finding in diagnose(events):
        payload = finding.to_payload()
        identity = finding_identity(payload)
        if identity not in known:
            known.add(identity)
            fresh.append(payload)
    return fresh
