"""The lifecycle of a run."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Where a run stands. Terminal statuses can still be resumed where it makes sense
    (``failed`` with a raised budget, ``needs_attention`` once the call in doubt is resolved)."""

    RUNNING = "running"
    PAUSED = "paused"
    COMPLETED = "completed"
    FAILED = "failed"
    NEEDS_ATTENTION = "needs_attention"
    QUARANTINED = "quarantined"

    @property
    def is_final(self) -> bool:
        """Whether a resume leaves the run as it is: ``completed``, and ``quarantined``
        (until resumed with ``release``). ``failed`` and ``needs_attention`` are
        terminal for a run in progress but not final: a resume may continue them."""
        return self in (RunStatus.COMPLETED, RunStatus.QUARANTINED)
