"""The delegation contract: what a subagent is given (a brief) and what it returns."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..runtime import Budget

#: How a delegated subtask ended: ``ok`` (output valid), ``partial`` (an answer that
#: does not validate, or a plan with some branches failed) or ``failed``.
Status = Literal["ok", "partial", "failed"]

#: Text outputs longer than this are returned as a reference to the child's journal.
ARTIFACT_CHARS = 4000


@dataclass(frozen=True, kw_only=True)
class Brief:
    """Everything a subagent is given: never the parent's history.

    Args:
        objective: The one narrow job, in words.
        inputs: Data the job needs (JSON-serialisable), e.g. outputs of earlier subtasks.
        output_schema: The pydantic model the answer must validate against (``None``:
            free text).
        tools: Names of the subagent's tools it may use (``None``: all of them).
        budget: Limits for this subtask; capped by what the parent has left.
        deadline_s: Seconds the subtask may take (its ``max_seconds``), capped by the
            parent's own deadline.
        repairs: Further child runs allowed to repair an answer that does not validate.
    """

    objective: str
    inputs: dict[str, Any] = field(default_factory=dict)
    output_schema: type[BaseModel] | None = None
    tools: tuple[str, ...] | None = None
    budget: Budget | None = None
    deadline_s: float | None = None
    repairs: int = 0

    def task(self) -> str:
        """The task text the child run starts with."""
        parts = [f"Objective: {self.objective}"]
        if self.inputs:
            parts.append("Inputs (JSON):\n" + json.dumps(self.inputs, sort_keys=True,
                                                          default=str))
        if self.output_schema is not None:
            schema = json.dumps(self.output_schema.model_json_schema(), sort_keys=True)
            parts.append("Answer with one JSON object, and nothing else, that validates "
                         f"against this JSON schema:\n{schema}")
        return "\n\n".join(parts)

    def digest(self) -> str:
        """Identifies the brief's content (the same job asked again has the same one,
        whatever the case and spacing of its objective)."""
        same = dataclasses.replace(self, objective=" ".join(self.objective.split()).casefold())
        return hashlib.sha256(same.task().encode()).hexdigest()[:16]


class ArtifactRef(BaseModel):
    """Where a large output is, instead of the output: the child run's
    ``run.completed`` event (``tether show RUN_ID``)."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    event: str = "run.completed"
    chars: int
    preview: str


class SubagentResult(BaseModel):
    """What a delegated subtask returns to its parent.

    ``output`` is the answer validated against the brief's schema (as JSON data), or
    the text answer; ``error`` says what went wrong (``type``, ``message``, ``hint``,
    and for a spent budget ``limit``); a text answer over ``ARTIFACT_CHARS`` comes back
    as ``artifacts`` (a reference and a preview).
    """

    model_config = ConfigDict(frozen=True)

    agent: str
    child_run_id: str | None
    status: Status
    output: Any = None
    error: dict[str, Any] | None = None
    artifacts: list[ArtifactRef] = Field(default_factory=list)
    steps: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0

    def parsed(self, schema: type[BaseModel]) -> BaseModel:
        """The output as an instance of ``schema``."""
        return schema.model_validate(self.output)


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.DOTALL)


def strip_fences(text: str) -> str:
    """A model's JSON answer without a surrounding Markdown code fence."""
    text = text.strip()
    match = _FENCE.match(text)
    return match.group(1) if match else text
