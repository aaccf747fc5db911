"""A run's journal seen as a tree of spans: run, steps, model calls, tool calls, sub-runs.

The Runner gives span ids to the events that belong to a call: ``s<k>.m`` for step
``k``'s model call, ``s<k>.t<i>`` for its ``i``-th tool call; their parent is the step
``s<k>``, whose parent is the run's root span ``run``. Steps have no events of their
own: a step span covers its children. Events without a span id (a ``decision``, a
``budget`` check...) belong to their step's span, or to the run's when ``step`` is 0.

Times come from the events: a call's span ends at its closing event's ``ts`` and
starts ``duration_ms`` earlier (or at its first event when no duration is known).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import (
    STATUS_AFTER,
    BreakerPayload,
    Event,
    EventType,
    FallbackPayload,
    ModelErrorPayload,
    ModelRequestPayload,
    ModelResponsePayload,
    RetryPayload,
    RunCompletedPayload,
    RunResumedPayload,
    RunStartedPayload,
    RunStatus,
    SubrunStartedPayload,
    ToolErrorPayload,
    ToolIntentPayload,
    ToolResultPayload,
)
from ._cost import tool_cost
from ._load import RunTree

#: The event of a model call that ended in failure (``provider``, ``model``, ``error``,
#: ``error_class``, ``attempts``, ``output``): committed with its ``model.request``.
MODEL_ERROR = "model.error"
#: Events that close a model call.
MODEL_CLOSING = frozenset({EventType.MODEL_RESPONSE, MODEL_ERROR})

_STEP = re.compile(r"s(\d+)$")
_MODEL = re.compile(r"s(\d+)\.m(?:~\d+)?$")
_TOOL = re.compile(r"s(\d+)\.t(\d+)$")

#: Statuses after which a run is not executing (``tether tail`` stops there).
TERMINAL_STATUSES = frozenset({
    RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.NEEDS_ATTENTION, RunStatus.QUARANTINED,
    RunStatus.PAUSED,
})


@dataclass(slots=True, kw_only=True)
class Span:
    """One node of a run's trace.

    ``kind`` is ``run``, ``step``, ``model``, ``tool`` or ``other``; ``status`` is
    ``ok``, ``error``, ``running`` or ``in_doubt`` (a tool call with an intent and
    no outcome), and for a run its :class:`~tether.core.RunStatus`.
    """

    run_id: str
    span_id: str
    parent_id: str | None
    kind: str
    name: str
    step: int
    start: float
    end: float | None = None
    status: str = "running"
    events: list[Event] = field(default_factory=list)
    children: list[Span] = field(default_factory=list)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    #: Kind-specific details: model/provider, tool/call_id/arguments, agent, error...
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_ms(self) -> float | None:
        """Milliseconds from start to end (never negative, though wall-clock
        timestamps may step back); None while the span is still open."""
        return None if self.end is None else max(0.0, (self.end - self.start) * 1000)

    def walk(self) -> list[Span]:
        """This span and its descendants, depth first, in order."""
        found = [self]
        for child in self.children:
            found.extend(child.walk())
        return found

    def total_cost(self) -> float:
        """This span's cost including every descendant (sub-runs too)."""
        if self.kind in ("model", "tool"):
            own = self.cost_usd
        else:
            own = 0.0
        return own + sum(c.total_cost() for c in self.children)


def _model_level(event: Event) -> bool:
    """Whether a span-less event is about the step's model call (a retry, a fallback
    to another model, a model's circuit breaker)."""
    data = event.data
    if isinstance(data, RetryPayload):
        return data.target == "model"
    if isinstance(data, FallbackPayload):
        return data.from_model is not None
    if isinstance(data, BreakerPayload):
        return data.name.startswith("model:")
    return False


class SpanRouter:
    """Which span an event belongs to.

    A step normally makes one model call, ``s<k>.m``; when it makes another (the first
    answer was empty or cut off and the step is retried) the next one is ``s<k>.m~2``,
    and so on. Span-less retries, fallbacks and breaker changes of the model belong to
    the step's current model call.
    """

    def __init__(self) -> None:
        self._current: dict[str, str] = {}
        self._answered: set[str] = set()
        self._count: dict[str, int] = {}

    def route(self, event: Event) -> str | None:
        span = event.span_id
        if span is None or span == "run":
            if not (event.step > 0 and _model_level(event)):
                return span
            span = f"s{event.step}.m"
        if not _MODEL.match(span):
            return span
        current = self._current.get(span, span)
        if current in self._answered and event.type not in MODEL_CLOSING:
            number = self._count.get(span, 1) + 1
            self._count[span] = number
            current = self._current[span] = f"{span}~{number}"
        if event.type in MODEL_CLOSING:
            self._answered.add(current)
        return current


def kind_of(span_id: str) -> str:
    if span_id == "run":
        return "run"
    if _MODEL.match(span_id):
        return "model"
    if _TOOL.match(span_id):
        return "tool"
    if _STEP.match(span_id):
        return "step"
    return "other"


def close_call(span: Span, tool_prices: Mapping[str, float] | None) -> None:
    """Fill a model or tool span's times, status and measures from its events."""
    closing: Event | None = None
    for e in span.events:
        if _fill_call(span, e, tool_prices):
            closing = e
    first = span.events[0].ts if span.events else span.start
    if closing is not None:
        span.end = closing.ts
        duration = closing.duration_ms
        span.start = closing.ts - duration / 1000 if duration is not None else first
        span.start = min(span.start, first) if span.kind == "model" else span.start
    else:
        span.start = first
    if span.kind == "model":
        span.name = f"chat {span.attrs.get('request_model') or span.attrs.get('response_model')}"
    elif span.kind == "tool":
        span.name = f"execute_tool {span.attrs.get('tool')}"


def _fill_call(span: Span, e: Event, tool_prices: Mapping[str, float] | None) -> bool:
    """Fold one event of a model or tool call into its span; whether it ends the call
    (a response, an error, a tool's outcome)."""
    p = e.data
    if isinstance(p, ModelRequestPayload):
        span.attrs.setdefault("request_model", p.model)
        span.attrs.setdefault("provider", p.provider)
        span.attrs["request_seq"] = e.seq
        if p.tools is not None:
            span.attrs["offered"] = p.tools
        if p.constraint is not None:
            span.attrs["constraint"] = p.constraint
        return False
    if isinstance(p, ModelResponsePayload):
        _fill_response(span, e, p)
        return True
    if isinstance(p, ModelErrorPayload):
        span.status = "error"
        span.attrs["error"] = p.error or {}
        span.attrs["response_model"] = p.model
        span.attrs["response_provider"] = p.provider
        for key in ("error_class", "attempts", "output"):
            if getattr(p, key) is not None:
                span.attrs[key] = getattr(p, key)
        return True
    if isinstance(p, ToolIntentPayload):
        span.attrs["tool"] = p.tool
        span.attrs["call_id"] = p.call_id
        span.attrs["arguments"] = p.arguments
        span.attrs["idempotency_key"] = p.idempotency_key
        return False
    if isinstance(p, ToolResultPayload | ToolErrorPayload):
        _fill_outcome(span, e, p, tool_prices)
        return True
    return False


def _fill_response(span: Span, e: Event, p: ModelResponsePayload) -> None:
    span.input_tokens += int(p.usage.get("input_tokens", 0) or 0)
    span.output_tokens += int(p.usage.get("output_tokens", 0) or 0)
    span.cost_usd += float(p.cost_usd or 0)
    span.attrs["response_model"] = p.model
    span.attrs["response_provider"] = p.provider
    span.attrs["finish_reason"] = p.finish_reason
    span.attrs["response_id"] = p.response_id
    span.attrs["response_seq"] = e.seq
    span.attrs["calls"] = [c.get("name") for c in p.message.get("tool_calls") or []]
    span.status = "ok"


def _fill_outcome(span: Span, e: Event, p: ToolResultPayload | ToolErrorPayload,
                  tool_prices: Mapping[str, float] | None) -> None:
    span.attrs["tool"] = p.tool
    span.attrs["call_id"] = p.call_id
    span.attrs["result"] = p.content
    if p.ran:
        span.attrs["ran"] = p.ran
    span.cost_usd += tool_cost(e, tool_prices) or 0.0
    if isinstance(p, ToolErrorPayload):
        span.status = "error"
        span.attrs["error"] = p.error or {}
    else:
        span.status = "ok"


def build_spans(
    events: Sequence[Event], *, tool_prices: Mapping[str, float] | None = None
) -> Span:
    """The span tree of one run's events (sub-runs are attached by :func:`build_trace`)."""
    run_id = events[0].run_id if events else ""
    start = events[0].ts if events else 0.0
    root = Span(run_id=run_id, span_id="run", parent_id=None, kind="run", name="invoke_agent",
                step=0, start=start)
    spans: dict[str, Span] = {"run": root}
    status: RunStatus | None = None
    last_step = 0
    router = SpanRouter()

    def get(span_id: str, step: int, ts: float) -> Span:
        found = spans.get(span_id)
        if found is None:
            kind = kind_of(span_id)
            if kind in ("model", "tool", "other"):
                parent = get(f"s{step}", step, ts) if step > 0 else root
                parent_id = parent.span_id
            else:
                parent = root
                parent_id = "run"
            name = f"step {step}" if kind == "step" else span_id
            found = Span(run_id=run_id, span_id=span_id, parent_id=parent_id, kind=kind,
                         name=name, step=step, start=ts)
            spans[span_id] = found
            parent.children.append(found)
        return found

    for e in events:
        last_step = max(last_step, e.step)
        if e.type in STATUS_AFTER:
            status = _status_event(root, e)
            continue
        if e.type == EventType.FINDING:  # the doctor's: about the run
            root.events.append(e)
            continue
        span_id = router.route(e)
        if span_id and span_id != "run":
            get(span_id, e.step, e.ts).events.append(e)
        elif e.step > 0:
            get(f"s{e.step}", e.step, e.ts).events.append(e)
        else:
            root.events.append(e)

    final = status in TERMINAL_STATUSES
    _close_spans(spans, root, final, tool_prices)
    root.status = str(status) if status is not None else "running"
    root.input_tokens = sum(s.input_tokens for s in spans.values() if s.kind == "model")
    root.output_tokens = sum(s.output_tokens for s in spans.values() if s.kind == "model")
    root.cost_usd = sum(s.cost_usd for s in spans.values() if s.kind in ("model", "tool"))
    root.attrs["steps"] = last_step
    root.children.sort(key=lambda s: (s.start, s.span_id))
    if root.end is None and not final and events:
        root.attrs["last_ts"] = events[-1].ts
    return root


def _status_event(root: Span, e: Event) -> RunStatus:
    """Fold an event that sets the run's status into the root span; the status."""
    status = STATUS_AFTER[e.type]
    root.end = e.ts if status in TERMINAL_STATUSES else None
    data = e.data
    if isinstance(data, RunStartedPayload):
        root.attrs.update(agent=data.agent, task=data.task,
                          instructions=data.instructions,
                          provider=data.provider, model=data.model,
                          tools=data.tools or [],
                          parent_run_id=data.parent_run_id,
                          price_table=data.price_table)
        root.name = f"invoke_agent {data.agent}"
    elif isinstance(data, RunCompletedPayload):
        root.attrs["output"] = data.output
        root.attrs.pop("error", None)
    elif not isinstance(data, RunResumedPayload):
        error = getattr(data, "error", None) or data.extra("error")
        if error:
            root.attrs["error"] = error
    root.events.append(e)
    return status


def _close_spans(spans: dict[str, Span], root: Span, final: bool,
                 tool_prices: Mapping[str, float] | None) -> None:
    """Close every call, other and step span once all events are in; in a run that
    ended, a call still open is in doubt (a tool) or failed (a model)."""
    for span in spans.values():
        if span.kind in ("model", "tool"):
            close_call(span, tool_prices)
            if span.kind == "tool" and "arguments" not in span.attrs:
                span.attrs["arguments"] = _requested_arguments(spans, span)
            if final and span.status in ("running", "in_doubt"):
                span.status = "in_doubt" if span.kind == "tool" else "error"
                span.end = span.end or root.end
        elif span.kind == "other":
            span.start = span.events[0].ts if span.events else span.start
            span.end = span.events[-1].ts if span.events else span.start
            span.status = "ok"
    for span in spans.values():
        if span.kind == "step":
            close_step(span, final=final)


def requested_arguments(response: Event) -> dict[str, Any]:
    """The arguments of each call a ``model.response`` asks for, by call id, parsed
    when they are JSON (for calls rejected before an intent: unknown tool, bad JSON)."""
    found: dict[str, Any] = {}
    data = response.data
    message = data.message if isinstance(data, ModelResponsePayload) else {}
    for call in message.get("tool_calls") or []:
        raw = call.get("arguments") or "{}"
        try:
            found[str(call.get("id"))] = json.loads(raw)
        except ValueError:
            found[str(call.get("id"))] = raw
    return found


def _requested_arguments(spans: Mapping[str, Span], tool: Span) -> Any:
    model = spans.get(f"s{tool.step}.m")
    for e in model.events if model is not None else ():
        if e.type == EventType.MODEL_RESPONSE:
            return requested_arguments(e).get(str(tool.attrs.get("call_id")))
    return None


def _order(span: Span) -> tuple[int, float, str]:
    """Children of a step: its model call(s) in time order, then its tool calls by index."""
    match = _TOOL.match(span.span_id)
    if match:
        return (1, float(match.group(2)), span.span_id)
    return (0 if span.kind == "model" else 2, span.start, span.span_id)


def close_step(step: Span, *, final: bool) -> None:
    """Fill a step span's times, status and measures from its calls and events."""
    starts = [c.start for c in step.children] + [e.ts for e in step.events]
    ends = [c.end for c in step.children if c.end is not None] + [e.ts for e in step.events]
    step.start = min(starts) if starts else step.start
    step.end = max(ends) if ends else None
    open_children = any(c.status in ("running",) for c in step.children)
    if any(c.status in ("error", "in_doubt") for c in step.children):
        step.status = "error"
    elif open_children and not final:
        step.status = "running"
        step.end = None
    else:
        step.status = "ok"
    step.children.sort(key=_order)
    step.input_tokens = sum(c.input_tokens for c in step.children)
    step.output_tokens = sum(c.output_tokens for c in step.children)
    step.cost_usd = sum(c.cost_usd for c in step.children)


def _subrun_parent(root: Span, child_id: str) -> Span:
    """The span that started sub-run ``child_id``: its ``subrun.started`` event's span."""
    for span in root.walk():
        if span.run_id != root.run_id:
            continue
        for e in span.events:
            data = e.data
            if isinstance(data, SubrunStartedPayload) and data.child_run_id == child_id:
                return span
    return root


def build_trace(tree: RunTree, *, tool_prices: Mapping[str, float] | None = None) -> Span:
    """The span tree of a run and its sub-runs: each sub-run's root span hangs under the
    span whose ``subrun.started`` event names it (else under the parent's root)."""
    root = build_spans(tree.events, tool_prices=tool_prices)
    for child in tree.children:
        sub = build_trace(child, tool_prices=tool_prices)
        parent = _subrun_parent(root, child.run_id)
        sub.parent_id = parent.span_id
        sub.attrs["parent_span_run_id"] = parent.run_id
        parent.children.append(sub)
        parent.children.sort(key=lambda s: (s.start, s.span_id))
    return root
