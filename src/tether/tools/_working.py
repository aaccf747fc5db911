"""What a tool sees of its step's working memory (``ToolContext.working``).

The protocol lives here because ``tools`` imports neither ``memory`` nor ``runtime``;
the runtime implements it (``tether.runtime``'s step-scoped working memory).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class WorkingMemory(Protocol):
    """The current step's scratch space, as one tool call sees it.

    It holds the step's inputs (the model's message and the tool calls it asked for),
    its outputs (each call's result once committed) and the entries tools put there.
    A call sees what is committed (other calls' outputs and entries, once their
    outcome is in the journal) and its own entries, committed or not. Entries are
    journaled with the call's outcome and are gone when the step ends, unless
    promoted to long-term memory.
    """

    @property
    def step(self) -> int:
        """The step this working memory belongs to."""
        ...

    @property
    def message(self) -> str | None:
        """The text of the model's message that opened the step (often None)."""
        ...

    @property
    def calls(self) -> tuple[Mapping[str, Any], ...]:
        """The step's tool calls: ``{"call_id", "tool", "arguments"}`` in call order."""
        ...

    def outputs(self) -> dict[str, str]:
        """Committed results of the step's other calls: content by call id."""
        ...

    def get(self, key: str, default: Any = None) -> Any:
        """An entry's value (this call's own first), or ``default``."""
        ...

    def items(self) -> dict[str, Any]:
        """Every visible entry, by key."""
        ...

    def put(self, key: str, value: Any) -> None:
        """Set an entry (JSON-compatible value); journaled with this call's outcome."""
        ...

    def promote(self, key: str, *, as_key: str | None = None) -> None:
        """Keep ``key``'s entry after the step: it is written to long-term memory when
        the step ends (``as_key`` is the memory's key, for supersession)."""
        ...
