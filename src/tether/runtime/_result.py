"""What a run returns to its caller."""

from __future__ import annotations

from dataclasses import dataclass

from ..core import RunStatus, TetherError, Usage


@dataclass(frozen=True, kw_only=True)
class RunResult:
    """The outcome of :meth:`Runner.run` or :meth:`Runner.resume`.

    A run that failed returns too: ``status`` says how it ended and ``error`` (a typed
    :class:`~tether.core.TetherError`, as journaled: ``error.details``) what went
    wrong, where, and what to do. The journal holds everything else.
    """

    run_id: str
    status: RunStatus
    output: str | None
    steps: int
    usage: Usage
    cost_usd: float
    error: TetherError | None = None
