"""What a run cost: per step, per run, and rolled up over its sub-runs.

Model costs come from the ``cost_usd`` of each ``model.response`` (priced by the
runtime from its price table, whose version ``run.started`` records). Tool costs come
from the ``cost_usd`` a ``tool.result`` / ``tool.error`` carries, or else from a
per-tool price declared here (``tool_prices={"search": 0.005}``, USD per call).
A run's own figures never include its sub-runs; the rolled-up figures do, and say so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import (
    Event,
    ModelResponsePayload,
    RunStartedPayload,
    ToolErrorPayload,
    ToolResultPayload,
)
from ..store import Store
from ._load import RunTree, load_run_tree


@dataclass(frozen=True, slots=True, kw_only=True)
class StepCost:
    """One step's model and tool spending."""

    step: int
    model_usd: float = 0.0
    tool_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    model_calls: int = 0
    tool_calls: int = 0
    #: Model responses whose price is unknown (no ``cost_usd``, or ``cost_known``
    #: false): counted as 0.
    unpriced_calls: int = 0

    @property
    def total_usd(self) -> float:
        """Model plus tool spending of the step, in US dollars (unpriced calls as 0)."""
        return self.model_usd + self.tool_usd

    def to_dict(self) -> dict[str, Any]:
        """The step's figures as JSON (``tether cost --json``), ``total_usd`` included."""
        return {
            "step": self.step, "model_usd": self.model_usd, "tool_usd": self.tool_usd,
            "total_usd": self.total_usd, "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens, "model_calls": self.model_calls,
            "tool_calls": self.tool_calls, "unpriced_calls": self.unpriced_calls,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCost:
    """A run's cost: its own steps, and its sub-runs' costs for the rolled-up total."""

    run_id: str
    agent: str = ""
    price_table: str | None = None
    steps: tuple[StepCost, ...] = ()
    children: tuple[RunCost, ...] = field(default_factory=tuple)

    # -- this run alone -----------------------------------------------------------

    @property
    def model_usd(self) -> float:
        """What this run's own model calls cost, in US dollars (sub-runs excluded;
        unpriced calls as 0, counted in :attr:`unpriced_calls`)."""
        return sum(s.model_usd for s in self.steps)

    @property
    def tool_usd(self) -> float:
        """What this run's own tool calls cost, in US dollars (sub-runs excluded)."""
        return sum(s.tool_usd for s in self.steps)

    @property
    def own_usd(self) -> float:
        """This run's steps only, sub-runs excluded."""
        return self.model_usd + self.tool_usd

    @property
    def input_tokens(self) -> int:
        """Input tokens of this run's own model calls (sub-runs excluded)."""
        return sum(s.input_tokens for s in self.steps)

    @property
    def output_tokens(self) -> int:
        """Output tokens of this run's own model calls (sub-runs excluded)."""
        return sum(s.output_tokens for s in self.steps)

    @property
    def unpriced_calls(self) -> int:
        """This run's model responses with no known price: its dollar figures are a
        lower bound whenever this is not 0."""
        return sum(s.unpriced_calls for s in self.steps)

    # -- rolled up over sub-runs --------------------------------------------------

    @property
    def subruns(self) -> int:
        """How many descendant runs the rolled-up figures include."""
        return sum(1 + c.subruns for c in self.children)

    @property
    def rolled_up_usd(self) -> float:
        """This run plus every sub-run, recursively."""
        return self.own_usd + sum(c.rolled_up_usd for c in self.children)

    @property
    def rolled_up_input_tokens(self) -> int:
        """Input tokens of this run and every sub-run, recursively."""
        return self.input_tokens + sum(c.rolled_up_input_tokens for c in self.children)

    @property
    def rolled_up_output_tokens(self) -> int:
        """Output tokens of this run and every sub-run, recursively."""
        return self.output_tokens + sum(c.rolled_up_output_tokens for c in self.children)

    @property
    def rolled_up_unpriced_calls(self) -> int:
        """Unpriced model responses of this run and every sub-run: the rolled-up
        dollar figures are a lower bound whenever this is not 0."""
        return self.unpriced_calls + sum(c.rolled_up_unpriced_calls for c in self.children)

    def to_dict(self) -> dict[str, Any]:
        """JSON shape: ``own`` (this run), ``rolled_up`` (with sub-runs, labelled), steps."""
        return {
            "run_id": self.run_id,
            "agent": self.agent,
            "price_table": self.price_table,
            "own": {
                "usd": self.own_usd, "model_usd": self.model_usd, "tool_usd": self.tool_usd,
                "input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "unpriced_calls": self.unpriced_calls,
            },
            "rolled_up": {
                "label": f"rolled up over {self.subruns} sub-runs",
                "subruns": self.subruns,
                "usd": self.rolled_up_usd,
                "input_tokens": self.rolled_up_input_tokens,
                "output_tokens": self.rolled_up_output_tokens,
                "unpriced_calls": self.rolled_up_unpriced_calls,
            },
            "steps": [s.to_dict() for s in self.steps],
            "children": [c.to_dict() for c in self.children],
        }


def tool_cost(event: Event, tool_prices: Mapping[str, float] | None = None) -> float | None:
    """The cost of a tool outcome event: its ``cost_usd``, else the tool's declared price."""
    data = event.data
    if not isinstance(data, ToolResultPayload | ToolErrorPayload):
        return None
    if data.cost_usd is not None:
        return float(data.cost_usd)
    if tool_prices:
        price = tool_prices.get(data.tool)
        if price is not None:
            return float(price)
    return None


def cost_of(
    events: Sequence[Event], *, tool_prices: Mapping[str, float] | None = None
) -> RunCost:
    """The cost of one run (its own events; sub-runs are not followed)."""
    run_id = events[0].run_id if events else ""
    agent = ""
    price_table = None
    steps: dict[int, dict[str, Any]] = {}

    def bucket(step: int) -> dict[str, Any]:
        found = steps.get(step)
        if found is None:
            found = steps[step] = {"model_usd": 0.0, "tool_usd": 0.0, "input_tokens": 0,
                                   "output_tokens": 0, "model_calls": 0, "tool_calls": 0,
                                   "unpriced_calls": 0}
        return found

    for e in events:
        p = e.data
        if isinstance(p, ModelResponsePayload):
            b = bucket(e.step)
            b["input_tokens"] += int(p.usage.get("input_tokens", 0) or 0)
            b["output_tokens"] += int(p.usage.get("output_tokens", 0) or 0)
            b["model_calls"] += 1
            priced = "cost_usd" in p.model_fields_set
            if priced:
                b["model_usd"] += float(p.cost_usd)
            if not priced or p.cost_known is False:
                b["unpriced_calls"] += 1
        elif isinstance(p, ToolResultPayload | ToolErrorPayload):
            b = bucket(e.step)
            b["tool_calls"] += 1
            b["tool_usd"] += tool_cost(e, tool_prices) or 0.0
        elif isinstance(p, RunStartedPayload):
            agent = p.agent
            price_table = p.price_table
    return RunCost(
        run_id=run_id, agent=agent, price_table=price_table,
        steps=tuple(StepCost(step=k, **v) for k, v in sorted(steps.items())),
    )


def tree_cost(tree: RunTree, *, tool_prices: Mapping[str, float] | None = None) -> RunCost:
    """The cost of a loaded run tree: each run's own cost, with its sub-runs as children."""
    own = cost_of(tree.events, tool_prices=tool_prices)
    children = tuple(tree_cost(c, tool_prices=tool_prices) for c in tree.children)
    return RunCost(run_id=tree.run_id, agent=own.agent or tree.summary.agent,
                   price_table=own.price_table, steps=own.steps, children=children)


async def run_cost(
    store: Store, run_id: str, *, tool_prices: Mapping[str, float] | None = None,
    subruns: bool = True,
) -> RunCost:
    """Read a run (and, unless ``subruns`` is false, its sub-runs) and cost it."""
    tree = await load_run_tree(store, run_id, subruns=subruns)
    return tree_cost(tree, tool_prices=tool_prices)
