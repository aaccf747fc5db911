"""Compare two runs: where they first diverge, then step by step.

Runs are compared on what they did, not on when or under which ids: timestamps,
durations, call ids, response ids and idempotency keys are ignored. Before the steps
come the run's setup (agent, task, instructions, model, tools); within a step, in
order, the prompt's new messages (``prompt``), the model's answer and calls
(``response``), and the tool results (``results``).
Tokens, cost and latency are reported per step but do not count as a divergence.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import (
    STATUS_AFTER,
    Event,
    ModelRequestPayload,
    ModelResponsePayload,
    RunCompletedPayload,
    RunStartedPayload,
    ToolErrorPayload,
    ToolResultPayload,
)
from ._prompts import new_messages


def _canon(value: Any) -> Any:
    """``value`` without the keys that differ between identical runs (ids)."""
    if isinstance(value, dict):
        return {k: _canon(v) for k, v in sorted(value.items())
                if k not in ("id", "tool_call_id", "call_id")}
    if isinstance(value, list):
        return [_canon(v) for v in value]
    return value


def _arguments(text: Any) -> Any:
    if isinstance(text, str):
        try:
            return json.loads(text or "{}")
        except ValueError:
            return text
    return text


@dataclass(slots=True, kw_only=True)
class StepView:
    """What one run did in one step, in comparable form."""

    step: int
    prompt: list[Any] = field(default_factory=list)
    answer: str | None = None
    calls: list[tuple[str, Any]] = field(default_factory=list)
    results: list[tuple[str, str, bool]] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    latency_ms: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The step as JSON (``tether diff --json``): answer, calls, results and
        measures; the prompt is left out (it is compared, not shown)."""
        return {
            "step": self.step, "answer": self.answer,
            "calls": [{"tool": t, "arguments": a} for t, a in self.calls],
            "results": [{"tool": t, "content": c, "error": e} for t, c, e in self.results],
            "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
            "cost_usd": self.cost_usd, "latency_ms": self.latency_ms,
        }


@dataclass(slots=True, kw_only=True)
class RunView:
    """A run reduced to its setup, its steps and its outcome."""

    run_id: str
    setup: dict[str, Any] = field(default_factory=dict)
    steps: dict[int, StepView] = field(default_factory=dict)
    status: str = "running"
    output: str | None = None

    def totals(self) -> dict[str, Any]:
        """The run's status, step count and summed tokens, cost (US dollars) and model
        latency (milliseconds): the header of a diff."""
        views = self.steps.values()
        return {
            "run_id": self.run_id, "status": self.status, "steps": len(self.steps),
            "input_tokens": sum(v.input_tokens for v in views),
            "output_tokens": sum(v.output_tokens for v in views),
            "cost_usd": sum(v.cost_usd for v in views),
            "latency_ms": sum(v.latency_ms for v in views),
        }


def view_run(events: Sequence[Event]) -> RunView:
    """Reduce one run's events to a :class:`RunView`."""
    view = RunView(run_id=events[0].run_id if events else "")

    def step(k: int) -> StepView:
        found = view.steps.get(k)
        if found is None:
            found = view.steps[k] = StepView(step=k)
        return found

    results: dict[int, dict[int, tuple[str, str, bool]]] = {}
    news = new_messages(events)
    for e in events:
        p = e.data
        if isinstance(p, RunStartedPayload):
            view.setup = {
                "agent": p.agent, "task": p.task, "instructions": p.instructions,
                "model": f"{p.provider}:{p.model}",
                "tools": sorted(str(t.get("name")) for t in p.tools or []),
            }
        elif isinstance(p, ModelRequestPayload):
            step(e.step).prompt = [p.prefix, _canon(news[e.seq])]
        elif isinstance(p, ModelResponsePayload):
            s = step(e.step)
            s.answer = p.message.get("content")
            s.calls = [(str(c.get("name")), _arguments(c.get("arguments")))
                       for c in p.message.get("tool_calls") or []]
            s.input_tokens += int(p.usage.get("input_tokens") or 0)
            s.output_tokens += int(p.usage.get("output_tokens") or 0)
            s.cost_usd += float(p.cost_usd or 0.0)
            s.latency_ms += e.duration_ms or 0.0
        elif isinstance(p, ToolResultPayload | ToolErrorPayload):
            s = step(e.step)
            index = _call_index(e)
            results.setdefault(e.step, {})[index] = (
                p.tool, p.content, isinstance(p, ToolErrorPayload))
            s.cost_usd += float(p.cost_usd or 0.0)
            s.latency_ms += e.duration_ms or 0.0
        if e.type in STATUS_AFTER:
            view.status = str(STATUS_AFTER[e.type])
            if isinstance(p, RunCompletedPayload):
                view.output = p.output
    for k, by_index in results.items():
        step(k).results = [by_index[i] for i in sorted(by_index)]
    return view


def _call_index(event: Event) -> int:
    span = event.span_id or ""
    _, _, tail = span.rpartition(".t")
    return int(tail) if tail.isdigit() else 10_000 + event.seq


@dataclass(frozen=True, slots=True, kw_only=True)
class Divergence:
    """The first point where two runs did something different."""

    step: int
    what: str
    a: Any
    b: Any

    def to_dict(self) -> dict[str, Any]:
        """The divergence as JSON: ``what`` differed (a setup key, ``steps``,
        ``prompt``, ``response``, ``results`` or ``outcome``) and each run's side."""
        return {"step": self.step, "what": self.what, "a": self.a, "b": self.b}


@dataclass(frozen=True, slots=True, kw_only=True)
class StepDiff:
    """One step of both runs and which aspects differ."""

    step: int
    a: StepView | None
    b: StepView | None
    differs: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """The step's diff as JSON: which aspects differ and each run's step (None
        where that run has no such step)."""
        return {"step": self.step, "differs": list(self.differs),
                "a": None if self.a is None else self.a.to_dict(),
                "b": None if self.b is None else self.b.to_dict()}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunDiff:
    """The comparison of run ``a`` with run ``b``."""

    a: RunView
    b: RunView
    first_divergence: Divergence | None
    steps: tuple[StepDiff, ...]

    @property
    def identical(self) -> bool:
        """No divergence in setup, behaviour or outcome. Tokens, cost and latency may
        still differ: they are reported per step but do not count as divergence."""
        return self.first_divergence is None

    def to_dict(self) -> dict[str, Any]:
        """The whole comparison as JSON (``tether diff --json``): both runs' totals,
        whether they are identical, the first divergence and every step's diff."""
        return {
            "a": self.a.totals(), "b": self.b.totals(), "identical": self.identical,
            "first_divergence": None if self.first_divergence is None
            else self.first_divergence.to_dict(),
            "steps": [s.to_dict() for s in self.steps],
        }


_ASPECTS = ("prompt", "answer", "calls", "results")
_MEASURES = ("input_tokens", "output_tokens", "cost_usd")


def _step_differs(a: StepView | None, b: StepView | None) -> tuple[str, ...]:
    if a is None or b is None:
        return ("missing",)
    found = [name for name in _ASPECTS if getattr(a, name) != getattr(b, name)]
    found += [name for name in _MEASURES if getattr(a, name) != getattr(b, name)]
    return tuple(found)


def diff_runs(events_a: Sequence[Event], events_b: Sequence[Event]) -> RunDiff:
    """Compare two runs' events (see the module docstring for what counts)."""
    a, b = view_run(events_a), view_run(events_b)
    first: Divergence | None = None
    for key in ("agent", "task", "instructions", "model", "tools"):
        if a.setup.get(key) != b.setup.get(key):
            first = Divergence(step=0, what=key, a=a.setup.get(key), b=b.setup.get(key))
            break
    diffs = []
    for k in sorted(set(a.steps) | set(b.steps)):
        sa, sb = a.steps.get(k), b.steps.get(k)
        differs = _step_differs(sa, sb)
        diffs.append(StepDiff(step=k, a=sa, b=sb, differs=differs))
        if first is not None:
            continue
        if sa is None or sb is None:
            first = Divergence(step=k, what="steps",
                               a=None if sa is None else f"step {k}",
                               b=None if sb is None else f"step {k}")
            continue
        for name, parts in (("prompt", ("prompt",)), ("response", ("answer", "calls")),
                            ("results", ("results",))):
            if any(part in differs for part in parts):
                first = Divergence(step=k, what=name, a=_shown(sa, name),
                                   b=_shown(sb, name))
                break
    if first is None and (a.status, a.output) != (b.status, b.output):
        last = max([0, *a.steps, *b.steps])
        first = Divergence(step=last, what="outcome", a=[a.status, a.output],
                           b=[b.status, b.output])
    return RunDiff(a=a, b=b, first_divergence=first, steps=tuple(diffs))


def _shown(view: StepView, aspect: str) -> Any:
    if aspect == "response":
        return {"answer": view.answer,
                "calls": [{"tool": t, "arguments": args} for t, args in view.calls]}
    if aspect == "results":
        return [{"tool": t, "content": c, "error": e} for t, c, e in view.results]
    value: Any = getattr(view, aspect)
    return value
