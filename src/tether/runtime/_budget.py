"""Per-run limits, checked before each model call."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Limits on one run. ``None`` means unlimited.

    Args:
        max_steps: Model calls.
    """

    max_steps: int | None = 50
