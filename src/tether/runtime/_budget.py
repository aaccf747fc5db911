"""Per-run limits, checked before each model call."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..core import BudgetExceededError, ConfigurationError, Usage


@dataclass(frozen=True, kw_only=True)
class Budget:
    """Limits on one run; ``None`` means unlimited. A run that reaches one ends as
    ``failed`` with reason ``budget_exceeded``; resume it with a raised budget
    (``tether resume RUN_ID --budget max_steps=100``) to continue.

    Args:
        max_steps: Model calls that produced a response.
        max_input_tokens: Input tokens over all model calls.
        max_output_tokens: Output tokens over all model calls.
        max_cost_usd: Cost in US dollars, from the recorded price table.
        max_seconds: Wall-clock seconds since the run started (its deadline).
    """

    max_steps: int | None = 50
    max_input_tokens: int | None = None
    max_output_tokens: int | None = None
    max_cost_usd: float | None = None
    max_seconds: float | None = None

    def raised(self, overrides: Mapping[str, Any]) -> Budget:
        """This budget with some limits replaced."""
        return dataclasses.replace(self, **overrides)

    def deadline(self, started_at: float) -> float | None:
        """When a run started at ``started_at`` must stop (both seconds on the runtime's
        clock); None when ``max_seconds`` sets no limit."""
        return None if self.max_seconds is None else started_at + self.max_seconds

    def check(self, *, steps: int, usage: Usage, cost_usd: float, elapsed_s: float) -> None:
        """Raise :class:`BudgetExceededError` for the first limit that is reached."""
        for limit, used in (
            ("max_steps", steps),
            ("max_input_tokens", usage.input_tokens),
            ("max_output_tokens", usage.output_tokens),
            ("max_cost_usd", cost_usd),
            ("max_seconds", elapsed_s),
        ):
            allowed = getattr(self, limit)
            if allowed is not None and used >= allowed:
                raise BudgetExceededError(
                    f"the run reached its {limit} budget: used {used:g} of {allowed:g}",
                    hint=f"resume it with a raised budget: tether resume RUN_ID --budget "
                         f"{limit}=...",
                    limit=limit, used=used, allowed=allowed,
                )


def parse_budget(items: list[str]) -> dict[str, float | int]:
    """``["max_steps=100", "max_cost_usd=2.5"]`` as budget overrides."""
    fields = {f.name: f for f in dataclasses.fields(Budget)}
    overrides: dict[str, float | int] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or name not in fields:
            raise ConfigurationError(
                f"budget item {item!r} is not LIMIT=VALUE with a known limit",
                hint=f"limits: {', '.join(fields)}",
            )
        try:
            number = float(value)
        except ValueError as e:
            raise ConfigurationError(f"budget value {value!r} of {name} is not a number") from e
        overrides[name] = int(number) if name in ("max_steps", "max_input_tokens",
                                                  "max_output_tokens") else number
    return overrides
