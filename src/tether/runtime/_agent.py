"""Agent: configuration only. The Runner executes it; all run state lives in the journal."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import ConfigurationError
from ..models import Model, ModelSettings
from ..tools import FunctionToolset, Tool, Toolset, tool
from ._budget import Budget
from ._memory import MemoryConfig
from ._policy import Policy


@dataclass(frozen=True, kw_only=True)
class Agent:
    """What an agent is: its instructions, model, tools and limits.

    Args:
        name: Names the agent in the journal, the CLI and traces.
        instructions: The system prompt.
        model: A :class:`~tether.models.Model`, a selection string such as
            ``"openai:gpt-4.1-mini"``, or ``None`` for ``$TETHER_MODEL`` or the
            embedded local model.
        fallbacks: Models to move on to, in order, when the model is rate-limited, its
            retries are spent or its circuit breaker is open.
        tools: Tools, plain functions (turned into tools with :func:`~tether.tools.tool`)
            and toolsets (:class:`~tether.tools.Toolset`: asked for their tools at every
            step, entered for each drive of a run), offered in this order.
        settings: Model settings sent with every request.
        budget: Limits on steps, tokens, cost and time per run.
        policy: Retries, timeouts, repair budget and circuit breakers.
        max_recoveries: Consecutive resumes without progress before the run is quarantined.
        memory: Build each prompt under a token budget from the thread's and run's
            turns and recalled memories (see docs/memory.md); ``None``: every prompt
            is the whole history, as before.
    """

    name: str
    instructions: str = ""
    model: Model | str | None = None
    fallbacks: Sequence[Model | str] = ()
    tools: Sequence[Tool | Toolset | Callable[..., Any]] = ()
    settings: ModelSettings = field(default_factory=ModelSettings)
    budget: Budget = field(default_factory=Budget)
    policy: Policy = field(default_factory=Policy)
    max_recoveries: int = 3
    memory: MemoryConfig | None = None

    def __post_init__(self) -> None:
        self.tool_map()  # refuses two tools of one name now, not at the first run

    def tool_map(self) -> dict[str, Tool]:
        """The agent's own tools by name (those given as tools, functions or in a
        :class:`~tether.tools.FunctionToolset`; other toolsets list theirs at run time)."""
        tools: list[Tool] = []
        for t in self.tools:
            if isinstance(t, FunctionToolset):
                tools.extend(t.tools.values())
            elif isinstance(t, Tool):
                tools.append(t)
            elif not isinstance(t, Toolset):
                tools.append(tool(t))
        named = {t.name: t for t in tools}
        if len(named) != len(tools):
            twice = sorted({t.name for t in tools if sum(u.name == t.name for u in tools) > 1})
            raise ConfigurationError(
                f"agent {self.name!r} has more than one tool named {', '.join(twice)}",
                hint="give each tool its own name: @tool(name=...)",
            )
        return named

    def toolsets(self) -> list[Toolset]:
        """The toolsets a run asks for its tools, in order: each run of consecutive
        tools (and functions) is one :class:`~tether.tools.FunctionToolset`."""
        sets: list[Toolset] = []
        plain: list[Tool | Callable[..., Any]] = []
        for t in self.tools:
            if isinstance(t, Toolset) and not isinstance(t, Tool):
                if plain:
                    sets.append(FunctionToolset(plain))
                    plain = []
                sets.append(t)
            else:
                plain.append(t)
        if plain:
            sets.append(FunctionToolset(plain))
        return sets
