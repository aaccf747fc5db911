"""A run's state is a fold over its events. Loading a run and running it use the same fold."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

from ..core import (
    JOURNAL_FORMAT,
    STATUS_AFTER,
    BudgetPayload,
    DecisionPayload,
    Event,
    EventType,
    FallbackPayload,
    MemoryWritePayload,
    Message,
    ModelRequestPayload,
    ModelResponsePayload,
    RetryPayload,
    RunCompletedPayload,
    RunFailedPayload,
    RunNeedsAttentionPayload,
    RunQuarantinedPayload,
    RunResumedPayload,
    RunStartedPayload,
    RunStatus,
    SchemaVersionError,
    SubrunCompletedPayload,
    ToolCall,
    ToolErrorPayload,
    ToolIntentPayload,
    ToolResultPayload,
    Usage,
    UsageError,
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
    """What a run is at one point of its journal: the fold of its events."""

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
    #: The journal format the run was written in (``run.started``'s ``format``).
    format: int = 1

    #: State that packages keep in the fold, by the slot name they registered it under
    #: (:func:`register_fold`); ``slot(name)`` gives it.
    extensions: dict[str, Any] = field(default_factory=dict)

    def slot(self, name: str) -> Any:
        """The state a package keeps under ``name`` (created by its registration's
        factory on first use)."""
        if name not in self.extensions:
            factory = _SLOT_FACTORIES.get(name)
            if factory is None:
                raise KeyError(f"no fold slot named {name!r} is registered")
            self.extensions[name] = factory()
        return self.extensions[name]

    def apply(self, event: Event) -> None:
        """Fold one committed event into the state: the built-in handler of its type,
        then the handlers packages registered for it (:func:`register_fold`)."""
        kind = event.type
        self.working.apply(event)
        self.seq = event.seq
        if kind in STATUS_AFTER:
            self.status = STATUS_AFTER[kind]
        builtin = _BUILTIN.get(kind)
        if builtin is not None:
            builtin(self, event)
        for handler in _FOLDS.get(kind, ()):
            handler(self, event)

    def _started(self, event: Event) -> None:
        p = cast(RunStartedPayload, event.data)
        self.agent = p.agent
        self.agent_spec = p.agent_spec
        self.selection = p.selection
        self.budget_overrides = dict(p.budget or {})
        self.offered = p.tool_names
        self.task = p.task
        self.thread = p.thread
        self.thread_runs = list(p.thread_runs or [])
        self.format = p.format or 1
        self.started_at = event.ts
        if p.instructions:
            self.messages.append(Message.system(p.instructions))
        self.messages.append(Message.user(p.task))
        self.origins = [0] * len(self.messages)

    def _resumed(self, event: Event) -> None:
        p = cast(RunResumedPayload, event.data)
        # Only a resume of a run that was still running follows a crash; resuming a
        # run that stopped cleanly (failed, needs attention) is not a recovery.
        self.recoveries = self.recoveries + 1 if p.from_status == "running" else 0
        self.error = None
        if p.from_status != "running":  # resumed on purpose: attempts start afresh
            self.model_attempts, self.model_not_before, self.tool_attempts = {}, {}, {}

    def _request(self, event: Event) -> None:
        p = cast(ModelRequestPayload, event.data)
        self.sent = p.prefix + len(p.new)
        if p.tools is not None:
            self.offered = list(p.tools)

    def _intent(self, event: Event) -> None:
        p = cast(ToolIntentPayload, event.data)
        self.open_calls[p.call_id] = OpenCall(
            call_id=p.call_id, tool=p.tool, arguments=p.arguments,
            idempotency_key=p.idempotency_key, index=p.index, step=event.step,
        )

    def _tool_outcome(self, event: Event) -> None:
        p = cast(ToolResultPayload | ToolErrorPayload, event.data)
        self._outcome(p.call_id, cast(Message, message_of(event)), event.seq)

    def _retry(self, event: Event) -> None:
        p = cast(RetryPayload, event.data)
        if p.target == "model":
            key = str(p.model_key)
            self.model_attempts[key] = self.model_attempts.get(key, 0) + 1
            self.model_not_before[key] = event.ts + (p.delay_s or 0.0)
        else:
            key = f"{p.call_id}/{p.tool}"
            self.tool_attempts[key] = self.tool_attempts.get(key, 0) + 1

    def _fallback(self, event: Event) -> None:
        p = cast(FallbackPayload, event.data)
        if p.to_tool is not None:
            call = self.open_calls.get(str(p.call_id))
            if call is not None:
                call.runs = p.to_tool

    def _budget(self, event: Event) -> None:
        self.budget_overrides.update(cast(BudgetPayload, event.data).raised)

    def _decision(self, event: Event) -> None:
        p = cast(DecisionPayload, event.data)
        if p.decision == "repair":
            self.messages.append(cast(Message, p.note))  # what the model is told
            self.origins.append(event.seq)
        elif p.decision == "compact":
            start, end = cast(list[int], p.drop)
            self.messages[start:end] = [cast(Message, p.note)]
            self.origins[start:end] = [event.seq]
            self.sent = 0
            self.compacted = True
        elif p.decision == "context_budget":
            self.context_budget = p.budget
            self.compacted = True

    def _subrun_completed(self, event: Event) -> None:
        p = cast(SubrunCompletedPayload, event.data)
        if p.usage is None:
            return
        self.recoveries = 0  # a sub-run that ended is progress
        self.subrun_usage = self.subrun_usage + p.usage_model
        self.subrun_cost_usd += p.cost_usd or 0.0
        self.subrun_steps += p.steps or 0

    def _memory_write(self, event: Event) -> None:
        p = cast(MemoryWritePayload, event.data)
        if p.call_id:
            self.offloaded[p.call_id] = str(p.handle)

    def _completed(self, event: Event) -> None:
        self.output = cast(RunCompletedPayload, event.data).output

    def _stopped(self, event: Event) -> None:
        p = cast(RunFailedPayload | RunNeedsAttentionPayload | RunQuarantinedPayload,
                 event.data)
        self.error = p.error

    def _response(self, event: Event) -> None:
        p = cast(ModelResponsePayload, event.data)
        self.recoveries = 0
        self.model_attempts, self.model_not_before = {}, {}
        self.compacted = False
        self.usage = self.usage + p.usage_model
        self.cost_usd += p.cost_usd or 0.0
        if p.malformed:
            self.repairs_consecutive += 1
            self.repairs_total += 1
            self.last_malformed = p.malformed
        else:
            self.repairs_consecutive = 0
        message = p.assistant
        if p.rejected:
            # Not an answer; the step is asked again. A truncated answer stays in the
            # conversation (a ``repair`` decision tells the model it was cut off).
            if p.rejected == "truncated" and (message.content or message.tool_calls):
                self.messages.append(message)
                self.origins.append(event.seq)
            return
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


#: A fold step a package registers (:func:`register_fold`): called with the state and each
#: event of its type, it updates the state in place and must not do I/O or read the clock.
FoldHandler = Callable[[RunState, Event], None]

_BUILTIN: dict[str, FoldHandler] = {
    EventType.RUN_STARTED: RunState._started,
    EventType.RUN_RESUMED: RunState._resumed,
    EventType.MODEL_REQUEST: RunState._request,
    EventType.MODEL_RESPONSE: RunState._response,
    EventType.TOOL_INTENT: RunState._intent,
    EventType.TOOL_RESULT: RunState._tool_outcome,
    EventType.TOOL_ERROR: RunState._tool_outcome,
    EventType.RETRY: RunState._retry,
    EventType.FALLBACK: RunState._fallback,
    EventType.BUDGET: RunState._budget,
    EventType.DECISION: RunState._decision,
    EventType.SUBRUN_COMPLETED: RunState._subrun_completed,
    EventType.MEMORY_WRITE: RunState._memory_write,
    EventType.RUN_COMPLETED: RunState._completed,
    EventType.RUN_FAILED: RunState._stopped,
    EventType.RUN_NEEDS_ATTENTION: RunState._stopped,
    EventType.RUN_QUARANTINED: RunState._stopped,
}
_FOLDS: dict[str, list[FoldHandler]] = {}
_SLOT_FACTORIES: dict[str, Callable[[], Any]] = {}


def register_fold(
    event_type: str, handler: FoldHandler, *, slot: str | None = None,
    factory: Callable[[], Any] | None = None,
) -> Callable[[], None]:
    """Fold events of ``event_type`` with ``handler`` too, after the built-in fold.

    A package that adds state of its own keeps it in ``state.slot(slot)``, made by
    ``factory`` on first use; the handler runs whenever a run is folded (running,
    loading, resuming), so what it keeps is a function of the journal. Registering
    the same handler twice for a type adds it once.

    Args:
        event_type: The events the handler folds (``EventType`` or a package's own).
        handler: Called with the state and each committed event of that type, in order.
        slot: A name for the package's state, e.g. ``"memory"``.
        factory: Makes the slot's empty state (with ``slot``).

    Returns:
        A function that takes the handler out again (the slot stays registered).

    Raises:
        UsageError: ``slot`` without ``factory``, or a slot registered with another
            factory.
    """
    if slot is not None:
        if factory is None:
            raise UsageError(f"fold slot {slot!r} needs a factory for its empty state",
                             hint="register_fold(..., slot=name, factory=dict)")
        known = _SLOT_FACTORIES.setdefault(slot, factory)
        if known is not factory:
            raise UsageError(f"fold slot {slot!r} is already registered with another "
                             "factory", hint="give the package's slot a name of its own")
    handlers = _FOLDS.setdefault(str(event_type), [])
    if handler not in handlers:
        handlers.append(handler)

    def unregister() -> None:
        if handler in handlers:
            handlers.remove(handler)

    return unregister


def fold(run_id: str, events: list[Event]) -> RunState:
    """The state of a run after ``events``."""
    state = RunState(run_id=run_id)
    for event in events:
        state.apply(event)
    return state


def check_format(state: RunState) -> None:
    """Refuse to drive a run written in a newer journal format than this version's.

    Raises:
        SchemaVersionError: ``run.started`` says a format above :data:`JOURNAL_FORMAT`.
    """
    if state.format > JOURNAL_FORMAT:
        raise SchemaVersionError(
            f"run {state.run_id} was written in journal format {state.format}; this "
            f"Tether reads up to format {JOURNAL_FORMAT}",
            hint="upgrade tether (pip install -U tether) to resume it; "
                 "`tether show` still reads it",
        )
