"""One-line, human-readable descriptions of journal events (``tether show``, ``tail``)."""

from __future__ import annotations

import json
from typing import Any

from ..core import Event, EventType
from ._memory_view import MEMORY_EVENTS, describe_memory
from ._spans import MODEL_ERROR


def as_text(value: Any) -> str:
    """A journal value as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=str)


def _clip(text: Any, width: int = 80) -> str:
    line = " ".join(as_text(text).split())
    return line if len(line) <= width else line[: width - 1] + "…"


def offered(payload: dict[str, Any]) -> str:
    """What a ``model.request`` says about the tools offered and the constraint on the
    answer ("" when it says nothing)."""
    parts = []
    tools = payload.get("tools")
    if tools is not None:
        names = [t.get("name") if isinstance(t, dict) else t for t in tools]
        parts.append("tools: " + (", ".join(as_text(n) for n in names) or "none"))
    if payload.get("constraint") is not None:
        parts.append("constraint: " + _clip(payload["constraint"], 60))
    return "; ".join(parts)


def _model_error(p: dict[str, Any], width: int) -> str:
    error = p.get("error") or {}
    how = ", ".join(x for x in (
        as_text(p["error_class"]) if p.get("error_class") else "",
        f"{p['attempts']} attempt(s)" if p.get("attempts") is not None else "") if x)
    text = (f"{as_text(p.get('provider'))}:{as_text(p.get('model'))} failed: "
            f"{as_text(error.get('type'))}: {_clip(error.get('message', ''), width)}")
    if how:
        text += f" ({how})"
    if p.get("output"):
        text += f"; rejected: {_clip(p['output'], 40)}"
    return text


def describe(event: Event, *, width: int = 80) -> str:
    """What happened in ``event``, in one line of at most about ``width`` characters."""
    p = event.payload
    kind = event.type
    if kind == EventType.RUN_STARTED:
        return (f"{as_text(p.get('agent'))} on {p.get('provider')}:{p.get('model')}: "
                f"{_clip(p.get('task'), width)}")
    if kind == EventType.MODEL_REQUEST:
        new = len(p.get("new") or [])
        text = (f"{p.get('provider')}:{p.get('model')}, {p.get('prefix', 0)} earlier + {new} "
                "new messages")
        extra = offered(p)
        return f"{text}; {extra}" if extra else text
    if kind == MODEL_ERROR:
        return _model_error(p, width)
    if kind == EventType.MODEL_RESPONSE:
        message = p["message"]
        calls = message.get("tool_calls") or []
        usage = p.get("usage") or {}
        tokens = f"{usage.get('input_tokens', 0)}→{usage.get('output_tokens', 0)} tok"
        if isinstance(p.get("cost_usd"), int | float):
            tokens += f", ${p['cost_usd']:.6f}"
        if calls:
            names = ", ".join(f"{as_text(c.get('name'))}({_clip(c.get('arguments', ''), 40)})"
                              for c in calls)
            return f"calls {names}  [{tokens}]"
        return f"answers: {_clip(message.get('content') or '', width)}  [{tokens}]"
    if kind == EventType.TOOL_INTENT:
        return (f"{as_text(p.get('tool'))}({_clip(p.get('arguments'), 60)}) "
                f"key={as_text(p.get('idempotency_key'))}")
    if kind == EventType.TOOL_RESULT:
        how = " (reconciled)" if p.get("reconciled") else ""
        how = " (resolved by user)" if p.get("resolved_by") else how
        return f"{as_text(p.get('tool'))} → {_clip(p.get('content'), width)}{how}"
    if kind == EventType.TOOL_ERROR:
        error = p.get("error") or {}
        return (f"{as_text(p.get('tool'))} ✗ {as_text(error.get('type'))}: "
                f"{_clip(error.get('message', ''), width)}")
    if kind == EventType.RUN_COMPLETED:
        return _clip(p.get("output", ""), width)
    if kind in (EventType.RUN_FAILED, EventType.RUN_NEEDS_ATTENTION, EventType.RUN_QUARANTINED):
        error = p.get("error") or {}
        return f"{error.get('type')}: {_clip(error.get('message', ''), width)}"
    if kind == EventType.RUN_RESUMED:
        return f"attempt {p.get('attempt')} (was {p.get('from_status')})"
    if kind == EventType.DECISION:
        return f"{p.get('decision')}: {p.get('chosen')} ({_clip(p.get('reason', ''), width)})"
    return _describe_more(kind, p, width)


def _describe_more(kind: str, p: dict[str, Any], width: int) -> str:
    """Descriptions of the policy, memory, sub-run and doctor events."""
    if kind == EventType.RETRY:
        error = p.get("error") or {}
        where = p.get("tool") or p.get("model") or p.get("call_id") or ""
        return (f"{p.get('target')} {where} attempt {p.get('attempt')} failed "
                f"({error.get('type')}: {_clip(error.get('message', ''), 40)}); "
                f"retrying in {p.get('delay_s')} s")
    if kind == EventType.FALLBACK:
        source = p.get("from_model") or p.get("from_tool")
        target = p.get("to_model") or p.get("to_tool")
        return f"{source} → {target} ({_clip(p.get('reason', ''), width)})"
    if kind == EventType.BREAKER:
        return (f"{p.get('name')}: {p.get('from_state')} → {p.get('to_state')} "
                f"({_clip(p.get('reason', ''), width)})")
    if kind == EventType.BUDGET:
        raised = ", ".join(f"{k}={v}" for k, v in (p.get("raised") or {}).items())
        return f"raised {raised or 'nothing'} ({_clip(p.get('reason', ''), width)})"
    if kind == EventType.RUN_PAUSED:
        return _clip(p.get("reason") or p.get("error") or "paused", width)
    if kind in (EventType.SUBRUN_STARTED, EventType.SUBRUN_COMPLETED):
        child = p.get("child_run_id") or p.get("run_id")
        rest = p.get("agent") or p.get("status") or ""
        return f"{child} {rest}".strip()
    if kind in MEMORY_EVENTS:
        return describe_memory(kind, p, width)
    if kind == EventType.FINDING:
        return f"{p.get('kind')} (steps {p.get('steps')}): {_clip(p.get('message', ''), width)}"
    return _clip(p, width)
