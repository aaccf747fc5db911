"""What delegation costs: the tokens and money spent coordinating a team of child runs,
against the subtasks' own work, from the journals alone.

One definition, used by ``tether cost``, ``tether trace`` and ``bench/orchestration.py``:

- **work**: what the runs that delegated nothing spent (the leaves of the tree of
  child runs: they did the subtasks, brief included);
- **coordination**: what the runs that delegated spent (the controller, and any child
  that delegated further): planning, writing briefs, reading results, answering;
- ``token_ratio`` = coordination tokens / work tokens: how many tokens delegation
  added per token of subtask work (``None`` when no run of the tree did any).

Tokens are the ``usage`` of each ``model.response``; cost is its ``cost_usd`` plus
the ``cost_usd`` of tool outcomes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..core import Event, EventType
from ..store import Store

#: Most child runs read per parent.
_MAX_CHILDREN = 10_000


@dataclass(frozen=True, kw_only=True)
class DelegationOverhead:
    """Coordination against work over a run and its descendants (see the module)."""

    run_id: str
    #: Descendant runs included.
    subruns: int = 0
    #: Runs that delegated (the root among them, if it did), and runs that did not.
    coordinating_runs: int = 0
    work_runs: int = 0
    coordination_input_tokens: int = 0
    coordination_output_tokens: int = 0
    coordination_usd: float = 0.0
    work_input_tokens: int = 0
    work_output_tokens: int = 0
    work_usd: float = 0.0

    @property
    def coordination_tokens(self) -> int:
        """Input plus output tokens of the runs that delegated (planning, briefing,
        reading children's results)."""
        return self.coordination_input_tokens + self.coordination_output_tokens

    @property
    def work_tokens(self) -> int:
        """Input plus output tokens of the runs that did the work themselves."""
        return self.work_input_tokens + self.work_output_tokens

    @property
    def total_tokens(self) -> int:
        """Every token of the run and its descendants: coordination plus work."""
        return self.coordination_tokens + self.work_tokens

    @property
    def token_ratio(self) -> float | None:
        """Coordination tokens per token of subtask work (``None``: no work)."""
        return self.coordination_tokens / self.work_tokens if self.work_tokens else None

    @property
    def team_token_ratio(self) -> float | None:
        """All the tree's tokens per token of subtask work (``None``: no work)."""
        return self.total_tokens / self.work_tokens if self.work_tokens else None

    @property
    def cost_ratio(self) -> float | None:
        """Coordination cost per dollar of subtask work (``None``: no priced work)."""
        return self.coordination_usd / self.work_usd if self.work_usd else None

    def to_dict(self) -> dict[str, Any]:
        """JSON shape, as ``tether cost --json`` and ``tether trace --json`` show it."""
        return {
            "run_id": self.run_id, "subruns": self.subruns,
            "coordinating_runs": self.coordinating_runs, "work_runs": self.work_runs,
            "coordination": {"input_tokens": self.coordination_input_tokens,
                             "output_tokens": self.coordination_output_tokens,
                             "tokens": self.coordination_tokens,
                             "usd": self.coordination_usd},
            "work": {"input_tokens": self.work_input_tokens,
                     "output_tokens": self.work_output_tokens,
                     "tokens": self.work_tokens, "usd": self.work_usd},
            "token_ratio": self.token_ratio, "team_token_ratio": self.team_token_ratio,
            "cost_ratio": self.cost_ratio,
        }


def _spent(events: Sequence[Event]) -> tuple[int, int, float, bool]:
    # Reads the stored dicts, not the typed models, on purpose: a journal with missing
    # or hostile fields (a damaged or foreign file) is counted as zero, never refused.
    inputs = outputs = 0
    usd = 0.0
    delegated = False
    for e in events:
        p = e.payload
        if e.type == EventType.MODEL_RESPONSE:
            usage = p.get("usage") or {}
            inputs += int(usage.get("input_tokens", 0) or 0)
            outputs += int(usage.get("output_tokens", 0) or 0)
            cost = p.get("cost_usd")
            if isinstance(cost, int | float):
                usd += float(cost)
        elif e.type in (EventType.TOOL_RESULT, EventType.TOOL_ERROR):
            cost = p.get("cost_usd")
            if isinstance(cost, int | float):
                usd += float(cost)
        elif e.type == EventType.SUBRUN_STARTED:
            delegated = True
    return inputs, outputs, usd, delegated


def delegation_overhead(run_id: str, journals: Mapping[str, Sequence[Event]]
                        ) -> DelegationOverhead:
    """The delegation overhead of ``run_id``, from the journals of that run and of
    every descendant run (``{run_id: events}``; the caller gathers the tree)."""
    totals = {"ci": 0, "co": 0, "cu": 0.0, "wi": 0, "wo": 0, "wu": 0.0}
    coordinating = 0
    for events in journals.values():
        inputs, outputs, usd, delegated = _spent(events)
        side = "c" if delegated else "w"
        coordinating += delegated
        totals[f"{side}i"] += inputs
        totals[f"{side}o"] += outputs
        totals[f"{side}u"] += usd
    return DelegationOverhead(
        run_id=run_id, subruns=max(0, len(journals) - (run_id in journals)),
        coordinating_runs=coordinating, work_runs=len(journals) - coordinating,
        coordination_input_tokens=int(totals["ci"]),
        coordination_output_tokens=int(totals["co"]), coordination_usd=totals["cu"],
        work_input_tokens=int(totals["wi"]), work_output_tokens=int(totals["wo"]),
        work_usd=totals["wu"])


async def run_delegation_overhead(store: Store, run_id: str, *, max_depth: int = 16
                                  ) -> DelegationOverhead:
    """:func:`delegation_overhead` of a run in ``store``, its descendants read from there."""
    journals: dict[str, Sequence[Event]] = {}
    frontier = [(run_id, 0)]
    while frontier:
        current, depth = frontier.pop()
        if current in journals:
            continue
        journals[current] = await store.read(current)
        if depth < max_depth:
            for child in await store.runs(parent_run_id=current, limit=_MAX_CHILDREN):
                frontier.append((child.run_id, depth + 1))
    return delegation_overhead(run_id, journals)
