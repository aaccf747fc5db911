"""What a tool call gets to know about the run it is part of."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..core import Event, EventType, ToolError, Usage


class RunView(Protocol):
    """The folded state of a run, as far as a tool that starts sub-runs reads it."""

    @property
    def run_id(self) -> str:
        """The run's id (its journal's key in the store)."""

    @property
    def step(self) -> int:
        """The step of the run's last accepted model response (steps count from 1);
        0 before the first."""

    @property
    def open_calls(self) -> Mapping[str, Any]:
        """Tool calls with an intent journaled and no outcome yet, by call id: a child
        run started for one of them is still that call's work."""

    @property
    def usage(self) -> Usage:
        """Tokens this run's own model calls used so far (not its sub-runs')."""

    @property
    def cost_usd(self) -> float:
        """What this run's own model and tool calls cost so far, in US dollars (0.0
        where no price is known)."""

    @property
    def subrun_usage(self) -> Usage:
        """Tokens used by finished sub-runs (``subrun.completed``): they count against
        this run's budget beside :attr:`usage`."""

    @property
    def subrun_cost_usd(self) -> float:
        """What finished sub-runs cost, in US dollars; counts against this run's budget."""

    @property
    def subrun_steps(self) -> int:
        """Steps taken by finished sub-runs; counts against this run's step limit."""


class RunnerView(Protocol):
    """The Runner driving a run, as a tool that starts sub-runs uses it."""

    @property
    def store(self) -> Any:
        """The store every run of this Runner journals to (a ``tether.store.Store``)."""

    @property
    def sealer(self) -> Any:
        """Unseals what the journal stores redacted (a ``tether.core.Sealer``)."""

    async def run(self, agent: Any, task: str, *, run_id: str | None = None,
                  parent: Mapping[str, Any] | None = None) -> Any:
        """Start ``agent`` on ``task`` and drive it until it stops (a ``RunResult``).

        ``run_id`` fixes the child's id (derive it from the parent's call so a resumed
        parent finds the same child); ``parent`` links the child to the run and call
        that started it (``run_id``, ``call_id``, ``step``). Raises ``ConfigurationError``
        for a bad agent and the store's errors when the journal cannot be written."""

    async def resume(self, run_id: str, agent: Any = None) -> Any:
        """Continue the run ``run_id`` from its journal and drive it until it stops (a
        ``RunResult``); ``agent`` None rebuilds it from the journaled spec. Raises
        ``RunNotFoundError`` for an unknown id, ``RunLeasedError`` while another live
        process drives it."""


class RunHandle(Protocol):
    """The runtime's handle on the run a tool call belongs to (``ToolContext.execution``):
    what ``tether.orchestration`` uses to start child runs and journal delegations.

    ``state``, ``budget`` and ``remaining_s`` read the run; ``event`` and ``commit``
    append to its journal under its lease; ``runner`` starts and resumes other runs
    in the same store.
    """

    @property
    def runner(self) -> RunnerView:
        """The Runner driving this run: it starts and resumes child runs in its store."""

    @property
    def state(self) -> RunView:
        """The run's folded state now: it changes with every commit, so read it again
        after awaiting rather than keeping a value."""

    @property
    def budget(self) -> Any:
        """The agent's ``Budget`` as raised by the run's ``budget`` events: the limits a
        child's use is checked against."""

    def remaining_s(self) -> float | None:
        """Seconds left before the run's deadline (may be negative once it passed);
        None when the budget sets no deadline."""

    def event(self, kind: EventType, step: int, payload: dict[str, Any], *,
              span: str | None = None, duration_ms: float | None = None) -> Event:
        """Build an event of this run, stamped by the runtime's clock, to pass to
        :meth:`commit`; nothing is written yet and its ``seq`` is assigned there.
        ``duration_ms`` is in milliseconds; ``span`` names the trace span it closes."""

    async def commit(self, events: list[Event]) -> None:
        """Append ``events`` to the run's journal in one transaction and fold them into
        :attr:`state`. Raises ``LeaseLostError`` (nothing written) once another
        process took the run over, and the store's errors when it cannot write."""

    def interrupt(self) -> None:
        """Stop the run taking new work and pause it (``run.paused``) for a resume."""


if TYPE_CHECKING:
    from ._working import WorkingMemory


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolContext:
    """Handed to a tool that declares a parameter of this type.

    ``idempotency_key`` is stable across resumes (derived from run id, step and the
    call's index): pass it to the outside world (an HTTP ``Idempotency-Key`` header,
    a database unique key) so a repeated call is recognised there too.
    """

    run_id: str
    step: int
    call_id: str
    tool: str
    idempotency_key: str
    attempt: int = 1
    #: A human approved this call (``tether approve``): an approval-required toolset
    #: lets it through, and a tool that raises ``ApprovalRequired`` itself should not.
    approved: bool = False
    #: The runtime's handle on the run this call is part of, for tools that start
    #: sub-runs (``tether.orchestration``); None outside a run.
    execution: RunHandle | None = None
    #: The step's working memory (an agent with memory), else None.
    working: WorkingMemory | None = None
    #: Set when the run gives up on this call (timeout, run cancelled).
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
        """Whether the run gave up on this call."""
        return self.cancel_event.is_set()

    def raise_if_cancelled(self) -> None:
        """Stop a long-running tool cooperatively once the run gave up on it."""
        if self.cancel_event.is_set():
            raise ToolError(
                f"tool call {self.call_id} was cancelled",
                tool=self.tool,
                call_id=self.call_id,
                run_id=self.run_id,
                step=self.step,
            )


