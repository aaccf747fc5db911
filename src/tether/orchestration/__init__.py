"""Orchestration: delegation to subagents as journaled child runs, agents as tools,
nested budgets, parallel fan-out, plans with replanning, and the team doctor."""

from ._brief import ARTIFACT_CHARS, ArtifactRef, Brief, Status, SubagentResult
from ._delegate import MAX_DEPTH, MAX_REPEATS, child_run_id, delegate
from ._doctor import diagnose_team, team_findings, team_reviewer
from ._fanout import Branch, as_tool, fan_out
from ._plan import (
    Plan,
    PlanResult,
    Replanner,
    Subtask,
    controller,
    plan_tool,
    retry_with_error,
    run_plan,
)
from ._specialists import api_caller, coder, formatter, retriever

__all__ = [
    "ARTIFACT_CHARS",
    "MAX_DEPTH",
    "MAX_REPEATS",
    "ArtifactRef",
    "Branch",
    "Brief",
    "Plan",
    "PlanResult",
    "Replanner",
    "Status",
    "SubagentResult",
    "Subtask",
    "api_caller",
    "as_tool",
    "child_run_id",
    "coder",
    "controller",
    "delegate",
    "diagnose_team",
    "fan_out",
    "formatter",
    "plan_tool",
    "retriever",
    "retry_with_error",
    "run_plan",
    "team_findings",
    "team_reviewer",
]
