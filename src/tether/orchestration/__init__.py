"""Orchestration: delegation to subagents as journaled child runs, agents as tools,
nested budgets, parallel fan-out, plans with replanning, the standard specialists on
their real tools, the team doctor and the delegation overhead."""

from ._brief import ARTIFACT_CHARS, ArtifactRef, Brief, Status, SubagentResult
from ._delegate import MAX_DEPTH, MAX_REPEATS, child_run_id, delegate
from ._doctor import diagnose_team, team_findings, team_reviewer
from ._fanout import Branch, as_tool, fan_out
from ._overhead import DelegationOverhead, delegation_overhead, run_delegation_overhead
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
from ._specialists import api_caller, coder, formatter, register_documents, retriever

__all__ = [
    "ARTIFACT_CHARS",
    "MAX_DEPTH",
    "MAX_REPEATS",
    "ArtifactRef",
    "Branch",
    "Brief",
    "DelegationOverhead",
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
    "delegation_overhead",
    "diagnose_team",
    "fan_out",
    "formatter",
    "plan_tool",
    "register_documents",
    "retriever",
    "retry_with_error",
    "run_delegation_overhead",
    "run_plan",
    "team_findings",
    "team_reviewer",
]
