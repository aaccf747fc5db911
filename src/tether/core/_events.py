"""Journal events: the run is the sequence of these.

Every event belongs to one run and has a dense per-run ``seq``. Payloads are stored
as plain JSON-compatible dicts whose shape is fixed per :class:`EventType` (see
``docs/journal.md``); :attr:`Event.data` reads one as its typed model
(``_payloads.py``). Names are stable because old journals must stay readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ._messages import Message
from ._payloads import (
    DecisionPayload,
    ModelResponsePayload,
    Payload,
    ToolErrorPayload,
    ToolResultPayload,
    parse_payload,
)
from ._status import RunStatus

#: The journal format this version writes (``run.started``'s ``format``; a run
#: without one was written in format 1). A reader refuses to resume a run of a newer
#: format; see ``docs/journal.md``.
JOURNAL_FORMAT = 1


class EventType(StrEnum):
    """The type of a journal event; its value is what the journal stores."""

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
    """One committed journal entry; :attr:`data` is its payload, typed.

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
    _data: Payload | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def data(self) -> Payload:
        """The payload as its type's model (:data:`~tether.core.PAYLOADS`), parsed on
        first use and kept: every reader reads payloads through it.

        Raises:
            StoreCorruptError: The payload does not have its type's shape.
        """
        data = self._data
        if data is None:
            data = parse_payload(self.type, self.payload)
            object.__setattr__(self, "_data", data)
        return data

    def to_dict(self) -> dict[str, Any]:
        """The event as a JSON-compatible dict (``tether export``'s JSONL line): every
        field, the payload as stored; ``type`` is the :class:`EventType`'s value."""
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
    data = event.data
    if isinstance(data, DecisionPayload):
        return data.note
    if isinstance(data, ModelResponsePayload):
        return data.assistant
    if isinstance(data, ToolResultPayload | ToolErrorPayload):
        return Message(role="tool", content=data.content, tool_call_id=data.call_id,
                       name=data.tool)
    return None
