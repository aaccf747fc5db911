"""What the call path (a model call, a tool call, a compaction) gets to work with.

The step loop (``_execution.py``) hands each call a :class:`CallContext`: the run's
journal, its policy and budget, the injected clock, jitter source and id source, the
Runner's breakers, and the run's interrupt signal. ``_model_call.py``,
``_tool_call.py`` and ``_compaction.py`` depend on this module only, never on the
``Execution`` that drives them, so their logic runs (and is tested) with any journal
that commits and folds events: no Runner and no store needed.

This module is a leaf of the runtime: it imports no other runtime module but the
plain-data ones (policy, breakers, budget, state); a test keeps it so.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from ..core import (
    BudgetExceededError,
    Clock,
    Event,
    EventType,
    IdSource,
    Redactor,
    RunFailedPayload,
    Sealer,
    TetherError,
    ToolResult,
)
from ..models import Model, ModelRequest, ModelResponse, PriceTable
from ..store import Lease, Store
from ..tools import ToolContext, ToolDef
from ._breaker import BreakerBoard, Transition
from ._budget import Budget
from ._policy import Policy
from ._state import OpenCall, RunState


class Stream(Protocol):
    """The Runner's live stream as a run uses it (``EventStream`` is one)."""

    @property
    def subscribed(self) -> bool: ...

    def wants_tokens(self, run_id: str) -> bool: ...

    def delta(self, run_id: str, kind: str, step: int, data: dict[str, Any]) -> None: ...


class Host(Protocol):
    """What a run needs of the Runner that drives it (the Runner is one)."""

    @property
    def store(self) -> Store: ...
    @property
    def clock(self) -> Clock: ...
    @property
    def rng(self) -> random.Random: ...
    @property
    def ids(self) -> IdSource: ...
    @property
    def breakers(self) -> BreakerBoard: ...
    @property
    def sealer(self) -> Sealer: ...
    @property
    def redactor(self) -> Redactor: ...
    @property
    def prices(self) -> PriceTable: ...
    @property
    def stream(self) -> Stream: ...
    @property
    def reviewers(self) -> Sequence[Callable[[Sequence[Event]], list[dict[str, Any]]]]: ...

    def notify(self, events: Sequence[Event]) -> None: ...

    async def take_lease(self, events: Sequence[Event]) -> Lease: ...


class Journaling(Protocol):
    """A run's journal as the call path sees it: the folded state, events to build,
    and one transaction per :meth:`commit` (folded into :attr:`state` once it is in)."""

    @property
    def state(self) -> RunState: ...

    def event(
        self, kind: EventType, step: int, payload: dict[str, Any], *,
        span: str | None = None, duration_ms: float | None = None,
    ) -> Event: ...

    async def commit(self, events: list[Event]) -> None: ...


class ToolCalls(Protocol):
    """The run's tools as the tool path sees them (``RunTools`` is one): the tools
    offered at this step by name, and calls through the toolset that offered each."""

    @property
    def approved(self) -> Collection[str]: ...

    def __getitem__(self, name: str) -> ToolDef: ...

    def __contains__(self, name: object) -> bool: ...

    async def call(self, name: str, arguments: dict[str, Any], ctx: ToolContext
                   ) -> ToolResult: ...

    async def reconcile(self, name: str, key: str) -> Any: ...


class Named(Protocol):
    """Anything with a name (an ``Agent`` is one)."""

    @property
    def name(self) -> str: ...


class Driving(Protocol):
    """A run's driver as its helpers (toolsets, the live token stream) see it: the
    Runner that hosts it, its folded state, its agent's name, events to build
    (``Execution`` is one). Typing them by this keeps them off ``_execution``."""

    @property
    def runner(self) -> Host: ...
    @property
    def state(self) -> RunState: ...
    @property
    def agent(self) -> Named: ...

    def event(
        self, kind: EventType, step: int, payload: dict[str, Any], *,
        span: str | None = None, duration_ms: float | None = None,
    ) -> Event: ...


#: One model attempt (the live stream's token deltas go out from here); default
#: ``model.complete``.
Attempt = Callable[[Model, ModelRequest], Awaitable[ModelResponse]]
#: A fresh view of working memory for one attempt of a call (None: no memory).
WorkingView = Callable[[OpenCall, str], Any]
#: The ``memory.working`` events to commit with a call's outcome.
TakeWorking = Callable[[OpenCall, str], list[Event]]

#: A step's ``model.request`` events for a request to a model (an agent with memory
#: puts its ``memory.recall`` and ``context.built`` first), with extra payload fields.
RequestEvents = Callable[[ModelRequest, Model, "dict[str, Any] | None"], list[Event]]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallContext:
    """One step's calls' view of their run: plain values and a journal, no Execution.

    Args:
        journal: Where the call's events are committed (and folded).
        policy: The agent's failure policy (retries, timeouts, breaker settings).
        budget: The run's budget now (its deadline is ``max_seconds`` after the start).
        clock: Injected time: every wait of the call path is ``clock.sleep``.
        rng: Source of retry jitter.
        ids: Source of new ids.
        breakers: The Runner's breakers, shared by its runs.
        interrupted: Done once the run is asked to stop (None: never).
        request_events: Builds a step's ``model.request`` (and what precedes it).
        handle: What tools get as ``ToolContext.execution`` (the driving Execution).
        attempt: Makes one model attempt (default ``model.complete``).
        working_view: An agent with memory's working memory for a call's attempt.
        take_working: An agent with memory's ``memory.working`` events of a call.
    """

    journal: Journaling
    policy: Policy
    budget: Budget
    clock: Clock
    rng: random.Random
    ids: IdSource
    breakers: BreakerBoard
    interrupted: asyncio.Future[None] | None = None
    request_events: RequestEvents | None = None
    handle: Any = None
    attempt: Attempt | None = None
    working_view: WorkingView | None = None
    take_working: TakeWorking | None = None

    @property
    def state(self) -> RunState:
        """The run's state, folded from its journal."""
        return self.journal.state

    def remaining_s(self) -> float | None:
        """Seconds left before the run's deadline, if it has one."""
        deadline = self.budget.deadline(self.journal.state.started_at)
        return None if deadline is None else deadline - self.clock.now()

    def deadline_error(self) -> BudgetExceededError:
        """The error of a run that reached its ``max_seconds``."""
        allowed = self.budget.max_seconds or 0.0
        return BudgetExceededError(
            f"the run reached its max_seconds budget of {allowed:g} s",
            hint="resume it with a raised budget: tether resume RUN_ID --budget max_seconds=...",
            limit="max_seconds", used=self.clock.now() - self.journal.state.started_at,
            allowed=allowed,
        )

    def check_deadline(self, delay: float, error: BaseException) -> None:
        """Refuse to wait ``delay`` seconds for what would end past the deadline."""
        remaining = self.remaining_s()
        if remaining is not None and delay >= remaining:
            raise self.deadline_error() from error

    def model_request_events(
        self, request: ModelRequest, model: Model, extra: dict[str, Any] | None = None,
    ) -> list[Event]:
        """The ``model.request`` event(s) of ``request`` to ``model``."""
        if self.request_events is not None:
            return self.request_events(request, model, extra)
        state = self.journal.state
        payload = request_payload(state, request, model)
        return [self.journal.event(EventType.MODEL_REQUEST, request.step,
                                   {**payload, **(extra or {})}, span=f"s{request.step}.m")]


def request_payload(state: RunState, request: ModelRequest, model: Model) -> dict[str, Any]:
    """The ``model.request`` payload: what is new since the previous request."""
    return {
        "provider": model.provider,
        "model": model.model_name,
        "prefix": state.sent,
        # Messages that earlier events hold are referenced, not copied.
        "new": [{"event": origin} if origin else m.model_dump(exclude_defaults=True)
                for m, origin in zip(request.messages[state.sent:], state.origins[state.sent:],
                                     strict=True)],
    }


def failure_event(
    journal: Journaling, error: TetherError, reason: str, step: int, **extra: Any,
) -> Event:
    """The ``run.failed`` event of ``error`` at ``step`` (the error learns both)."""
    error.run_id, error.step = journal.state.run_id, step
    return journal.event(EventType.RUN_FAILED, step, RunFailedPayload(
        reason=reason, error=error.to_dict(), **extra,
    ).dump())


def transition_events(
    journal: Journaling, transition: Transition | None, step: int, *, span: str | None = None,
) -> list[Event]:
    """The ``breaker`` event of a breaker's transition (none for no transition): the one
    place a transition becomes an event, so none is ever dropped or shaped apart."""
    if transition is None:
        return []
    return [journal.event(EventType.BREAKER, step, transition.payload(), span=span)]


async def commit_transition(
    journal: Journaling, transition: Transition | None, step: int, *, span: str | None = None,
) -> None:
    """Commit a breaker's transition on its own (nothing for no transition)."""
    if transition is not None:
        await journal.commit(transition_events(journal, transition, step, span=span))
