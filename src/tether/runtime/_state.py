"""A run's state is a fold over its events. Loading a run and running it use the same fold."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from ..core import (
    STATUS_AFTER,
    Event,
    EventType,
    Message,
    RunStatus,
    ToolCall,
    Usage,
    message_of,
)
from ._working import WorkingState


@dataclass(slots=True, kw_only=True)
class OpenCall:
    """A tool call with a committed intent and no committed outcome yet."""

    call_id: str
    tool: str
    arguments: dict[str, Any]
    idempotency_key: str
    index: int
    step: int
    #: The tool that runs the call: ``tool``, or its fallback once one was committed.
    runs: str = ""

    def __post_init__(self) -> None:
        self.runs = self.runs or self.tool


@dataclass(slots=True, kw_only=True)
class RunState:
    run_id: str
    agent: str = ""
    agent_spec: str | None = None
    #: The model selection strings the run started with (``{"model", "fallbacks"}``);
    #: a resume uses them unless asked otherwise.
    selection: dict[str, Any] | None = None
    task: str = ""
    status: RunStatus = RunStatus.RUNNING
    started_at: float = 0.0
    seq: int = 0
    step: int = 0
    messages: list[Message] = field(default_factory=list)
    #: For each message, the seq of the event it came from (0: written inline).
    origins: list[int] = field(default_factory=list)
    #: How many of ``messages`` the last model request sent.
    sent: int = 0
    step_calls: tuple[ToolCall, ...] = ()
    #: Names of the tools the model was last offered (``run.started``, then any
    #: ``model.request`` that records a change).
    offered: list[str] = field(default_factory=list)
    #: Every tool call id the run has used (ids must be unique in a run).
    call_ids: set[str] = field(default_factory=set)
    open_calls: dict[str, OpenCall] = field(default_factory=dict)
    outcomes: dict[str, tuple[Message, int]] = field(default_factory=dict)
    output: str | None = None
    error: dict[str, Any] | None = None
    usage: Usage = field(default_factory=Usage)
    cost_usd: float = 0.0
    #: Resumes since the run last made progress (a model response or a tool outcome).
    recoveries: int = 0
    #: The limits the run started with, as raised since (``budget`` events).
    budget_overrides: dict[str, Any] = field(default_factory=dict)
    #: Failed attempts of the current model call, per model, from ``retry`` events:
    #: a crash in the middle of a retry sequence does not reset them.
    model_attempts: dict[str, int] = field(default_factory=dict)
    #: Per model: the wall-clock time its last ``retry`` asked to wait until
    #: (``ts + delay_s``), waited out by a resumed run before its next attempt.
    model_not_before: dict[str, float] = field(default_factory=dict)
    #: Failed attempts per tool call and tool (``"call_id/tool"``).
    tool_attempts: dict[str, int] = field(default_factory=dict)
    #: Malformed model responses: in a row, and in the whole run (never reset).
    repairs_consecutive: int = 0
    repairs_total: int = 0
    last_malformed: dict[str, Any] | None = None
    #: Whether the context was compacted since the last model response.
    compacted: bool = False
    #: What finished sub-runs used (``subrun.completed``): it counts against the budget.
    subrun_usage: Usage = field(default_factory=Usage)
    subrun_cost_usd: float = 0.0
    subrun_steps: int = 0
    #: The thread the run continues (``run.started``), and the earlier runs of that
    #: thread it sees, as ``[run_id, last_seq]`` fixed when it started.
    thread: str | None = None
    thread_runs: list[list[Any]] = field(default_factory=list)
    #: The context builder's budget, once a context-length error lowered it.
    context_budget: int | None = None
    #: Tool results moved to long-term memory: their memory handle by tool call id.
    offloaded: dict[str, str] = field(default_factory=dict)
    #: The current step's working memory (``_working.py``).
    working: WorkingState = field(default_factory=WorkingState)

    def apply(self, event: Event) -> None:
        """Fold one committed event into the state."""
        p = event.payload
        kind = event.type
        self.working.apply(event)
        self.seq = event.seq
        if kind in STATUS_AFTER:
            self.status = STATUS_AFTER[kind]
        if kind == EventType.RUN_STARTED:
            self.agent = p["agent"]
            self.agent_spec = p.get("agent_spec")
            self.selection = p.get("selection")
            self.budget_overrides = dict(p.get("budget") or {})
            self.offered = [t["name"] for t in p.get("tools") or ()]
            self.task = p["task"]
            self.thread = p.get("thread")
            self.thread_runs = list(p.get("thread_runs") or [])
            self.started_at = event.ts
            if p.get("instructions"):
                self.messages.append(Message.system(p["instructions"]))
            self.messages.append(Message.user(p["task"]))
            self.origins = [0] * len(self.messages)
        elif kind == EventType.RUN_RESUMED:
            # Only a resume of a run that was still running follows a crash; resuming a
            # run that stopped cleanly (failed, needs attention) is not a recovery.
            self.recoveries = self.recoveries + 1 if p["from_status"] == "running" else 0
            self.error = None
            if p["from_status"] != "running":  # resumed on purpose: attempts start afresh
                self.model_attempts, self.model_not_before, self.tool_attempts = {}, {}, {}
        elif kind == EventType.MODEL_REQUEST:
            self.sent = p["prefix"] + len(p["new"])
            if "tools" in p:
                self.offered = list(p["tools"])
        elif kind == EventType.MODEL_RESPONSE:
            self._response(event)
        elif kind == EventType.TOOL_INTENT:
            self.open_calls[p["call_id"]] = OpenCall(
                call_id=p["call_id"], tool=p["tool"], arguments=p["arguments"],
                idempotency_key=p["idempotency_key"], index=p["index"], step=event.step,
            )
        elif kind in (EventType.TOOL_RESULT, EventType.TOOL_ERROR):
            self._outcome(p["call_id"], cast(Message, message_of(event)), event.seq)
        elif kind == EventType.RETRY:
            if p["target"] == "model":
                key = p["model_key"]
                self.model_attempts[key] = self.model_attempts.get(key, 0) + 1
                self.model_not_before[key] = event.ts + (p.get("delay_s") or 0.0)
            else:
                key = f"{p['call_id']}/{p['tool']}"
                self.tool_attempts[key] = self.tool_attempts.get(key, 0) + 1
        elif kind == EventType.FALLBACK and "to_tool" in p:
            call = self.open_calls.get(p["call_id"])
            if call is not None:
                call.runs = p["to_tool"]
        elif kind == EventType.BUDGET:
            self.budget_overrides.update(p.get("raised", {}))
        elif kind == EventType.DECISION and p.get("decision") == "repair":
            self.messages.append(cast(Message, message_of(event)))  # what the model is told
            self.origins.append(event.seq)
        elif kind == EventType.DECISION and p.get("decision") == "compact":
            start, end = p["drop"]
            note = cast(Message, message_of(event))
            self.messages[start:end] = [note]
            self.origins[start:end] = [event.seq]
            self.sent = 0
            self.compacted = True
        elif kind == EventType.SUBRUN_COMPLETED and "usage" in p:
            self.recoveries = 0  # a sub-run that ended is progress
            self.subrun_usage = self.subrun_usage + Usage.model_validate(p["usage"])
            self.subrun_cost_usd += p.get("cost_usd") or 0.0
            self.subrun_steps += p.get("steps") or 0
        elif kind == EventType.DECISION and p.get("decision") == "context_budget":
            self.context_budget = p["budget"]
            self.compacted = True
        elif kind == EventType.MEMORY_WRITE and p.get("call_id"):
            self.offloaded[p["call_id"]] = p["handle"]
        elif kind == EventType.RUN_COMPLETED:
            self.output = p.get("output")
        elif kind in (EventType.RUN_FAILED, EventType.RUN_NEEDS_ATTENTION,
                      EventType.RUN_QUARANTINED):
            self.error = p.get("error")

    def _response(self, event: Event) -> None:
        p = event.payload
        self.recoveries = 0
        self.model_attempts, self.model_not_before = {}, {}
        self.compacted = False
        self.usage = self.usage + Usage.model_validate(p["usage"])
        self.cost_usd += p.get("cost_usd") or 0.0
        if p.get("malformed"):
            self.repairs_consecutive += 1
            self.repairs_total += 1
            self.last_malformed = p["malformed"]
        else:
            self.repairs_consecutive = 0
        if p.get("rejected"):
            # Not an answer; the step is asked again. A truncated answer stays in the
            # conversation (a ``repair`` decision tells the model it was cut off).
            message = cast(Message, message_of(event))
            if p["rejected"] == "truncated" and (message.content or message.tool_calls):
                self.messages.append(message)
                self.origins.append(event.seq)
            return
        message = cast(Message, message_of(event))
        self.step = event.step
        self.messages.append(message)
        self.origins.append(event.seq)
        self.step_calls = message.tool_calls
        self.call_ids.update(c.id for c in message.tool_calls)
        self.outcomes = {}

    def _outcome(self, call_id: str, message: Message, seq: int) -> None:
        self.open_calls.pop(call_id, None)
        self.recoveries = 0
        self.outcomes[call_id] = (message, seq)
        if all(c.id in self.outcomes for c in self.step_calls):
            # All of the step's calls are settled: the model sees them in call order,
            # whatever order they finished in, so a resumed run sends the same prompt.
            for call in self.step_calls:
                message, seq = self.outcomes[call.id]
                self.messages.append(message)
                self.origins.append(seq)
            self.outcomes = {}
            self.step_calls = ()


def fold(run_id: str, events: list[Event]) -> RunState:
    """The state of a run after ``events``."""
    state = RunState(run_id=run_id)
    for event in events:
        state.apply(event)
    return state
