"""Journal events: the run is the sequence of these.

Every event belongs to one run and has a dense per-run ``seq``. Payloads are plain
JSON-compatible dicts whose shape is fixed per :class:`EventType` (see
``docs/journal.md``); names are stable because old journals must stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._messages import Message
from ._status import RunStatus


class EventType(StrEnum):
    RUN_STARTED = "run.started"
    RUN_RESUMED = "run.resumed"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_PAUSED = "run.paused"
    RUN_NEEDS_ATTENTION = "run.needs_attention"
    RUN_QUARANTINED = "run.quarantined"
    MODEL_REQUEST = "model.request"
    MODEL_RESPONSE = "model.response"
    MODEL_ERROR = "model.error"
    TOOL_INTENT = "tool.intent"
    TOOL_RESULT = "tool.result"
    TOOL_ERROR = "tool.error"
    DECISION = "decision"
    RETRY = "retry"
    FALLBACK = "fallback"
    BREAKER = "breaker"
    BUDGET = "budget"
    CONTEXT_BUILT = "context.built"
    MEMORY_WRITE = "memory.write"
    MEMORY_RECALL = "memory.recall"
    MEMORY_WORKING = "memory.working"
    SUBRUN_STARTED = "subrun.started"
    SUBRUN_COMPLETED = "subrun.completed"
    FINDING = "finding"


#: The status a run has after an event of this type is committed.
STATUS_AFTER: dict[str, RunStatus] = {
    EventType.RUN_STARTED: RunStatus.RUNNING,
    EventType.RUN_RESUMED: RunStatus.RUNNING,
    EventType.RUN_COMPLETED: RunStatus.COMPLETED,
    EventType.RUN_FAILED: RunStatus.FAILED,
    EventType.RUN_PAUSED: RunStatus.PAUSED,
    EventType.RUN_NEEDS_ATTENTION: RunStatus.NEEDS_ATTENTION,
    EventType.RUN_QUARANTINED: RunStatus.QUARANTINED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """One committed journal entry.

    ``ts`` is wall-clock UTC seconds since the epoch; ``duration_ms`` comes from a
    monotonic clock and is set on events that close a span (a model call, a tool call).
    """

    run_id: str
    seq: int
    type: str
    step: int
    ts: float
    payload: dict[str, Any] = field(default_factory=dict)
    span_id: str | None = None
    parent_span_id: str | None = None
    duration_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "seq": self.seq,
            "type": self.type,
            "step": self.step,
            "ts": self.ts,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "duration_ms": self.duration_ms,
            "payload": self.payload,
        }


def message_of(event: Event) -> Message | None:
    """The conversation message an event adds, if any.

    A ``model.response`` adds the assistant's message; a ``tool.result`` or
    ``tool.error`` adds the tool message the model will see; a ``decision`` that
    compacts the context adds the note standing for what it dropped.
    ``model.request`` payloads refer to these events (``{"event": seq}``) instead
    of copying them.
    """
    p = event.payload
    if event.type == EventType.DECISION and "message" in p:
        return Message.model_validate(p["message"])
    if event.type == EventType.MODEL_RESPONSE:
        return Message.model_validate(p["message"])
    if event.type in (EventType.TOOL_RESULT, EventType.TOOL_ERROR):
        return Message(role="tool", content=p["content"], tool_call_id=p["call_id"],
                       name=p["tool"])
    return None
