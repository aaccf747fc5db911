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
    def run_id(self) -> str: ...
    @property
    def step(self) -> int: ...
    @property
    def open_calls(self) -> Mapping[str, Any]: ...
    @property
    def usage(self) -> Usage: ...
    @property
    def cost_usd(self) -> float: ...
    @property
    def subrun_usage(self) -> Usage: ...
    @property
    def subrun_cost_usd(self) -> float: ...
    @property
    def subrun_steps(self) -> int: ...


class RunnerView(Protocol):
    """The Runner driving a run, as a tool that starts sub-runs uses it."""

    @property
    def store(self) -> Any: ...

    async def run(self, agent: Any, task: str, *, run_id: str | None = None,
                  parent: Mapping[str, Any] | None = None) -> Any: ...

    async def resume(self, run_id: str, agent: Any = None) -> Any: ...


class RunHandle(Protocol):
    """The runtime's handle on the run a tool call belongs to (``ToolContext.execution``):
    what ``tether.orchestration`` uses to start child runs and journal delegations.

    ``state``, ``budget`` and ``remaining_s`` read the run; ``event`` and ``commit``
    append to its journal under its lease; ``runner`` starts and resumes other runs
    in the same store.
    """

    @property
    def runner(self) -> RunnerView: ...
    @property
    def state(self) -> RunView: ...
    @property
    def budget(self) -> Any: ...

    def remaining_s(self) -> float | None: ...

    def event(self, kind: EventType, step: int, payload: dict[str, Any], *,
              span: str | None = None, duration_ms: float | None = None) -> Event: ...

    async def commit(self, events: list[Event]) -> None: ...

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


