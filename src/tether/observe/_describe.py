"""One-line, human-readable descriptions of journal events (``tether show``, ``tail``)."""

from __future__ import annotations

import json
import re
from typing import Any

from ..core import (
    BreakerPayload,
    BudgetPayload,
    DecisionPayload,
    Event,
    FallbackPayload,
    FindingPayload,
    ModelErrorPayload,
    ModelRequestPayload,
    ModelResponsePayload,
    Payload,
    RetryPayload,
    RunCompletedPayload,
    RunFailedPayload,
    RunNeedsAttentionPayload,
    RunPausedPayload,
    RunQuarantinedPayload,
    RunResumedPayload,
    RunStartedPayload,
    SubrunCompletedPayload,
    SubrunStartedPayload,
    ToolErrorPayload,
    ToolIntentPayload,
    ToolResultPayload,
)
from ._memory_view import MEMORY_EVENTS, describe_memory


def as_text(value: Any) -> str:
    """A journal value as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _clip(text: Any, width: int = 80) -> str:
    # Control characters (ESC, BEL, C1) from a journal are shown, never sent to the
    # terminal: hostile content could clear the screen or set the title otherwise.
    line = _CONTROL.sub(lambda m: f"\\x{ord(m[0]):02x}", " ".join(as_text(text).split()))
    return line if len(line) <= width else line[: width - 1] + "…"


def offered(payload: ModelRequestPayload) -> str:
    """What a ``model.request`` says about the tools offered and the constraint on the
    answer ("" when it says nothing)."""
    parts = []
    if payload.tools is not None:
        names = [t.get("name") if isinstance(t, dict) else t for t in payload.tools]
        parts.append("tools: " + (", ".join(as_text(n) for n in names) or "none"))
    if payload.constraint is not None:
        parts.append("constraint: " + _clip(payload.constraint, 60))
    return "; ".join(parts)


def _model_error(p: ModelErrorPayload, width: int) -> str:
    error = p.error or {}
    how = ", ".join(x for x in (
        as_text(p.error_class) if p.error_class else "",
        f"{p.attempts} attempt(s)" if p.attempts is not None else "") if x)
    text = (f"{as_text(p.provider)}:{as_text(p.model)} failed: "
            f"{as_text(error.get('type'))}: {_clip(error.get('message', ''), width)}")
    if how:
        text += f" ({how})"
    if p.output:
        text += f"; rejected: {_clip(p.output, 40)}"
    return text


def _response(p: ModelResponsePayload, width: int) -> str:
    calls = p.message.get("tool_calls") or []
    tokens = f"{p.usage.get('input_tokens', 0)}→{p.usage.get('output_tokens', 0)} tok"
    if "cost_usd" in p.model_fields_set:
        tokens += f", ${p.cost_usd:.6f}"
    if calls:
        names = ", ".join(f"{as_text(c.get('name'))}({_clip(c.get('arguments', ''), 40)})"
                          for c in calls)
        return f"calls {names}  [{tokens}]"
    return f"answers: {_clip(p.message.get('content') or '', width)}  [{tokens}]"


def _error_line(error: dict[str, Any] | None, width: int) -> str:
    error = error or {}
    return f"{error.get('type')}: {_clip(error.get('message', ''), width)}"


def describe(event: Event, *, width: int = 80) -> str:
    """What happened in ``event``, in one line of at most about ``width`` characters."""
    match event.data:
        case RunStartedPayload() as p:
            return f"{as_text(p.agent)} on {p.provider}:{p.model}: {_clip(p.task, width)}"
        case ModelRequestPayload() as p:
            text = f"{p.provider}:{p.model}, {p.prefix} earlier + {len(p.new)} new messages"
            extra = offered(p)
            return f"{text}; {extra}" if extra else text
        case ModelErrorPayload() as p:
            return _model_error(p, width)
        case ModelResponsePayload() as p:
            return _response(p, width)
        case ToolIntentPayload() as p:
            return f"{as_text(p.tool)}({_clip(p.arguments, 60)}) key={p.idempotency_key}"
        case ToolResultPayload() as p:
            how = " (resolved by user)" if p.resolved_by else \
                " (reconciled)" if p.reconciled else ""
            return f"{as_text(p.tool)} → {_clip(p.content, width)}{how}"
        case ToolErrorPayload() as p:
            return f"{as_text(p.tool)} ✗ {_error_line(p.error, width)}"
        case RunCompletedPayload() as p:
            return _clip(p.output or "", width)
        case RunFailedPayload() | RunNeedsAttentionPayload() | RunQuarantinedPayload() as p:
            return _error_line(p.error, width)
        case RunResumedPayload() as p:
            return f"attempt {p.attempt} (was {p.from_status})"
        case DecisionPayload() as p:
            return f"{p.decision}: {p.chosen} ({_clip(p.reason or '', width)})"
    if event.type in MEMORY_EVENTS:
        return describe_memory(event.type, event.payload, width)
    return _describe_more(event.data, width)


def _describe_more(data: Payload, width: int) -> str:
    """Descriptions of the policy, memory, sub-run and doctor events."""
    match data:
        case RetryPayload() as p:
            error = p.error or {}
            where = p.tool or p.model or p.call_id or ""
            return (f"{p.target} {where} attempt {p.attempt} failed "
                    f"({error.get('type')}: {_clip(error.get('message', ''), 40)}); "
                    f"retrying in {p.delay_s} s")
        case FallbackPayload() as p:
            source = p.from_model or p.from_tool
            target = p.to_model or p.to_tool
            return f"{source} → {target} ({_clip(p.reason or '', width)})"
        case BreakerPayload() as p:
            return (f"{p.name}: {p.from_state} → {p.to_state} "
                    f"({_clip(p.reason or '', width)})")
        case BudgetPayload() as p:
            raised = ", ".join(f"{k}={v}" for k, v in p.raised.items())
            return f"raised {raised or 'nothing'} ({_clip(p.reason or '', width)})"
        case RunPausedPayload() as p:
            return _clip(p.reason or p.extra("error") or "paused", width)
        case SubrunStartedPayload() as p:
            return f"{p.child_run_id} {p.agent or ''}".strip()
        case SubrunCompletedPayload() as p:
            return f"{p.child_run_id} {p.agent or p.status or ''}".strip()
        case FindingPayload() as p:
            return f"{p.kind} (steps {p.steps}): {_clip(p.message, width)}"
    return _clip(data.dump(), width)
