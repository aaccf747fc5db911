"""What a tool call gets to know about the run it is part of."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import ToolError

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
    #: The runtime's handle on the run this call is part of (its ``Execution``), for
    #: tools that start sub-runs (``tether.orchestration``); None outside a run.
    execution: Any = None
    #: The step's working memory (an agent with memory), else None.
    working: WorkingMemory | None = None
    #: Set when the run gives up on this call (timeout, run cancelled).
    cancel_event: threading.Event = field(default_factory=threading.Event)

    @property
    def cancelled(self) -> bool:
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
