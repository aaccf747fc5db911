"""Typed event payloads: one frozen model per :class:`EventType`.

A payload is stored as the JSON object it always was; these models are how code
reads and builds one. :func:`payload_of` (or ``Event.data``) parses an event's payload
into the model its type registers in :data:`PAYLOADS`, once per event; ``.dump()``
gives back the dict to journal: only the fields set, unknown fields (from a newer
writer, or ``$sealed``) kept, declared fields in the order declared here (the order
the writers use). The journal itself keeps the stored dict; nothing re-dumps a parsed
payload to store it. Fields are added, never renamed (``docs/journal.md``).

Numbers a writer may give as ``int`` or ``float`` are typed ``int | float`` so a round
trip keeps their JSON spelling (``2`` stays ``2``, not ``2.0``). Nested structures
(messages, errors, usage) stay plain JSON, with typed views where readers need them
(:attr:`ModelResponsePayload.assistant`, :attr:`ModelResponsePayload.usage_model`):
their own models forbid unknown keys, and an old or newer journal must still parse.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
)

from ._errors import StoreCorruptError
from ._messages import Message, Usage

if TYPE_CHECKING:
    from ._events import Event

JSON = dict[str, Any]
Number = int | float


class Payload(BaseModel):
    """The payload of one event: the base of every event's model, and the model of an
    event type this version does not know (all its fields are kept as extras)."""

    model_config = ConfigDict(frozen=True, extra="allow", protected_namespaces=())

    #: The event type this model is for (empty for the base).
    event_type: ClassVar[str] = ""
    def dump(self) -> JSON:
        """The JSON object to journal: the fields that were set (unknown ones too).

        Declared fields come in the order declared here, which is the order the writers
        use, so a writer that builds its payload with the model stores the same bytes
        as before. (No custom ``__init__`` keeps a writer's order: pydantic then calls
        it on every parse too, which doubles the cost of reading a journal.)"""
        return self.model_dump(exclude_unset=True)

    def extra(self, name: str, default: Any = None) -> Any:
        """A field this version does not declare (``$sealed``, a newer writer's)."""
        return (self.model_extra or {}).get(name, default)


# -- run lifecycle --------------------------------------------------------------------


class RunStartedPayload(Payload):
    """``run.started``: what the run is (agent, task, model, tools, budget, thread)."""

    event_type = "run.started"
    thread: str | None = None
    #: The thread with its scope (agent, user): what the run table's ``thread`` holds.
    thread_key: str | None = None
    thread_runs: list[list[Any]] | None = None
    agent: str
    agent_spec: str | None = None
    task: str
    instructions: str | None = None
    provider: str | None = None
    model: str | None = None
    fallbacks: list[str] | None = None
    selection: JSON | None = None
    tools: list[JSON] | None = None
    price_table: str | None = None
    budget: JSON | None = None
    parent_run_id: str | None = None
    depth: int | None = None
    delegated_by: str | None = None
    brief_digest: str | None = None
    #: The journal format the run was written in (see :data:`JOURNAL_FORMAT`); absent
    #: in journals written before the format was versioned (format 1).
    format: int | None = None

    @property
    def tool_names(self) -> list[str]:
        """Names of the tools offered at start."""
        return [t["name"] for t in self.tools or ()]


class RunResumedPayload(Payload):
    """``run.resumed``: a process continues the run."""

    event_type = "run.resumed"
    attempt: int = 1
    from_status: str


class RunCompletedPayload(Payload):
    """``run.completed``: the model's final answer."""

    event_type = "run.completed"
    output: str | None = None


class RunFailedPayload(Payload):
    """``run.failed``: why the run stopped on an error."""

    event_type = "run.failed"
    reason: str | None = None
    error: JSON | None = None
    last_output: Any = None
    tried: Any = None


class RunPausedPayload(Payload):
    """``run.paused``: the run was stopped on purpose."""

    event_type = "run.paused"
    reason: str | None = None
    open_calls: list[str] | None = None


class RunNeedsAttentionPayload(Payload):
    """``run.needs_attention``: calls in doubt, or a journal that could not be unsealed."""

    event_type = "run.needs_attention"
    error: JSON | None = None
    calls: list[JSON] | None = None
    reason: str | None = None


class RunQuarantinedPayload(Payload):
    """``run.quarantined``: resumed too often without progress."""

    event_type = "run.quarantined"
    error: JSON | None = None
    recoveries: int | None = None


# -- model calls ----------------------------------------------------------------------


class ModelRequestPayload(Payload):
    """``model.request``: what is new in the prompt since the previous request."""

    event_type = "model.request"
    provider: str | None = None
    model: str | None = None
    prefix: int = 0
    new: list[JSON] = []
    context: str | None = None
    tools: list[str] | None = None
    constraint: Any = None


class ModelResponsePayload(Payload):
    """``model.response``: the assistant's message, its usage and cost."""

    event_type = "model.response"
    message: JSON
    usage: dict[str, int] = {}
    cost_usd: Number = 0
    provider: str | None = None
    model: str | None = None
    rejected: str | None = None
    malformed: JSON | None = None
    finish_reason: str | None = None
    response_id: str | None = None
    cost_known: bool | None = None

    @property
    def assistant(self) -> Message:
        """The assistant message, typed."""
        return Message.model_validate(self.message)

    @property
    def usage_model(self) -> Usage:
        """The call's usage, typed."""
        return Usage.model_validate(self.usage)


class ModelErrorPayload(Payload):
    """``model.error``: a model call that ended in failure."""

    event_type = "model.error"
    provider: str | None = None
    model: str | None = None
    model_key: str | None = None
    error: JSON | None = None
    error_class: str | None = None
    attempts: Any = None
    output: str | None = None


# -- tool calls -----------------------------------------------------------------------


class ToolIntentPayload(Payload):
    """``tool.intent``: a call about to run."""

    event_type = "tool.intent"
    call_id: str
    tool: str
    arguments: JSON = {}
    idempotency_key: str
    index: int = 0
    idempotent: bool | None = None


class ToolResultPayload(Payload):
    """``tool.result``: a call's outcome, as the model sees it."""

    event_type = "tool.result"
    call_id: str
    tool: str
    content: str = ""
    #: ``content`` is the JSON text of a structured value (``json.loads`` gives it).
    structured: bool | None = None
    #: A structured value shown to the model as other text (``content``).
    value: Any = None
    #: References to large artifacts the result points at (``core.Artifact``).
    artifacts: list[JSON] | None = None
    cost_usd: Number | None = None
    ran: str | None = None
    reconciled: bool | None = None
    resolved_by: str | None = None


class ToolErrorPayload(Payload):
    """``tool.error``: a call that failed; the model is told (``content``)."""

    event_type = "tool.error"
    call_id: str
    tool: str
    error: JSON | None = None
    attempts: Any = None
    not_started: bool | None = None
    content: str = ""
    #: A human denied the call (``tether approve --deny``).
    denied: bool | None = None
    ran: str | None = None
    cost_usd: Number | None = None
    reconciled: bool | None = None


# -- decisions and policies -----------------------------------------------------------


class DecisionPayload(Payload):
    """``decision``: a branch the runtime took (reconcile, model, repair, compact,
    context_budget; orchestration's with a ``key``)."""

    event_type = "decision"
    decision: str
    call_id: str | None = None
    tool: str | None = None
    #: The subtask a ``replan`` is about, and its attempt.
    subtask: str | None = None
    attempt: int | None = None
    options: list[Any] | None = None
    chosen: Any = None
    reason: str | None = None
    message: JSON | None = None
    drop: list[int] | None = None
    budget: int | None = None
    was: int | None = None
    #: A ``replan``'s new objective (None: given up).
    objective: str | None = None
    #: The plan an orchestrator journaled (``decision: "plan"``), as JSON.
    plan: JSON | None = None
    key: str | None = None

    @property
    def note(self) -> Message | None:
        """The message a ``repair`` or ``compact`` decision adds, typed."""
        return None if self.message is None else Message.model_validate(self.message)


class RetryPayload(Payload):
    """``retry``: a failed attempt will be made again after ``delay_s``."""

    event_type = "retry"
    target: str
    model_key: str | None = None
    provider: str | None = None
    model: str | None = None
    call_id: str | None = None
    tool: str | None = None
    attempt: int = 0
    error: JSON | None = None
    error_class: str | None = None
    delay_s: Number | None = None
    outcome: str | None = None


class FallbackPayload(Payload):
    """``fallback``: moved on to a fallback model or tool."""

    event_type = "fallback"
    from_model: str | None = None
    to_model: str | None = None
    from_key: str | None = None
    to_key: str | None = None
    call_id: str | None = None
    from_tool: str | None = None
    to_tool: str | None = None
    reason: str | None = None
    error: JSON | None = None


class BreakerPayload(Payload):
    """``breaker``: a circuit breaker changed state."""

    event_type = "breaker"
    name: str
    from_state: str
    to_state: str
    reason: str | None = None


class BudgetPayload(Payload):
    """``budget``: limits raised on resume."""

    event_type = "budget"
    raised: JSON = {}
    reason: str | None = None


# -- memory ---------------------------------------------------------------------------


class ContextBuiltPayload(Payload):
    """``context.built``: how a step's prompt was assembled (agents with memory)."""

    event_type = "context.built"
    tokens: int | None = None
    budget: int | None = None
    parts: list[JSON] = []
    recipe: JSON | None = None


class MemoryWritePayload(Payload):
    """``memory.write``: a memory stored or forgotten, committed with its rows."""

    event_type = "memory.write"
    action: str
    handle: str | None = None
    key: str | None = None
    kind: str | None = None
    namespace: Any = None
    superseded: list[str] | None = None
    text: str | None = None
    call_id: str | None = None
    tool_call_id: str | None = None


class MemoryRecallPayload(Payload):
    """``memory.recall``: a search of long-term memory."""

    event_type = "memory.recall"
    query: str | None = None
    scope: Any = None
    hits: list[JSON] = []
    tool_call_id: str | None = None


class MemoryWorkingPayload(Payload):
    """``memory.working``: a call's working-memory operations (committed with its
    outcome), or the step's end (what was promoted to long-term memory, what dropped)."""

    event_type = "memory.working"
    call_id: str | None = None
    tool: str | None = None
    ops: list[JSON] | None = None
    step_end: bool | None = None
    promoted: list[JSON] | None = None
    dropped: list[str] | None = None


# -- sub-runs and findings ------------------------------------------------------------


class SubrunStartedPayload(Payload):
    """``subrun.started``: a delegated child run, in the parent's journal."""

    event_type = "subrun.started"
    child_run_id: str
    agent: str | None = None
    task: str | None = None
    brief_digest: str | None = None
    branch: Any = None
    budget: JSON | None = None


class SubrunCompletedPayload(Payload):
    """``subrun.completed``: what a child run ended with and used."""

    event_type = "subrun.completed"
    child_run_id: str
    agent: str | None = None
    status: str | None = None
    output: str | None = None
    result: Any = None
    usage: dict[str, int] | None = None
    cost_usd: Number | None = None
    steps: int | None = None

    @property
    def usage_model(self) -> Usage:
        """The child's usage, typed (zero if not recorded)."""
        return Usage.model_validate(self.usage or {})


class FindingPayload(Payload):
    """``finding``: something the doctor found."""

    event_type = "finding"
    kind: str
    steps: Any = None
    message: str = ""
    how_to_look: Any = None
    subject: Any = None


_MODELS: tuple[type[Payload], ...] = (
    RunStartedPayload, RunResumedPayload, RunCompletedPayload, RunFailedPayload,
    RunPausedPayload, RunNeedsAttentionPayload, RunQuarantinedPayload,
    ModelRequestPayload, ModelResponsePayload, ModelErrorPayload,
    ToolIntentPayload, ToolResultPayload, ToolErrorPayload,
    DecisionPayload, RetryPayload, FallbackPayload, BreakerPayload, BudgetPayload,
    ContextBuiltPayload, MemoryWritePayload, MemoryRecallPayload, MemoryWorkingPayload,
    SubrunStartedPayload, SubrunCompletedPayload, FindingPayload,
)

#: The one registry: the payload model of each event type.
PAYLOADS: Mapping[str, type[Payload]] = {m.event_type: m for m in _MODELS}

P = TypeVar("P", bound=Payload)


def parse_payload(event_type: str, payload: Mapping[str, Any]) -> Payload:
    """Parse a payload into its type's model (:class:`Payload` for an unknown type).

    Raises:
        StoreCorruptError: The payload does not have its type's shape.
    """
    model = PAYLOADS.get(event_type, Payload)
    try:
        parsed = model.model_validate(payload)
    except ValidationError as e:
        raise StoreCorruptError(
            f"a {event_type} payload does not have the shape of its type: "
            f"{e.errors(include_url=False, include_input=False)}",
            hint="the journal was damaged or written by an incompatible tool; "
                 "see docs/journal.md for the payload of each event",
        ) from None
    return parsed


def payload_of(event: Event, model: type[P] = Payload) -> P:  # type: ignore[assignment]
    """The event's typed payload (parsed once per event and kept).

    Args:
        event: A journal event of any type.
        model: The model the caller expects; a payload of another type is a
            ``TypeError`` (a reader asked the wrong event).
    """
    data = event.data
    if not isinstance(data, model):
        raise TypeError(f"a {event.type} event's payload is not a {model.__name__}")
    return data
