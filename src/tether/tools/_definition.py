"""What the runtime knows of a tool offered at a step: its spec and its policies."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ValidationError

from ..core import ModelBehaviorError, ToolSpec


def _strip_titles(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {k: _strip_titles(v) for k, v in schema.items() if k != "title"}
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


@dataclass(frozen=True, kw_only=True)
class ToolDef:
    """A tool as a :class:`~tether.tools.Toolset` offers it: what the model is told, how
    its arguments are checked, and the policies the runtime applies to its calls.

    Args:
        name: The name the model sees (and the journal records).
        description: What the model is told the tool does.
        parameters: The JSON schema of its arguments; default: ``args_model``'s.
        args_model: Validates the arguments (a pydantic model); ``None`` accepts any
            JSON object (a toolset that validates on its own side, such as a remote one).
        idempotent: A call left in doubt by a crash may simply run again.
        reconcilable: The toolset's ``reconcile`` can tell whether a call in doubt
            took effect.
        timeout_s: Seconds a call may take (default ``Policy.tool_timeout_s``).
        fallback: Name of another tool to call with the same arguments when this one
            fails for good.
    """

    name: str
    description: str = ""
    parameters: dict[str, Any] | None = None
    args_model: type[BaseModel] | None = None
    idempotent: bool = False
    reconcilable: bool = False
    timeout_s: float | None = None
    fallback: str | None = None

    @cached_property
    def spec(self) -> ToolSpec:
        """What the model is told about the tool."""
        schema = self.parameters
        if schema is None:
            schema = ({"type": "object", "properties": {}} if self.args_model is None
                      else _strip_titles(self.args_model.model_json_schema()))
        return ToolSpec(name=self.name, description=self.description, parameters=schema)

    def renamed(self, name: str, *, fallback: str | None = None) -> ToolDef:
        """The same tool under another name (a prefixing toolset)."""
        return dataclasses.replace(self, name=name, fallback=fallback)

    def validate(self, arguments: str) -> dict[str, Any]:
        """Parse and validate the model's JSON arguments.

        Raises:
            ModelBehaviorError: with a message precise enough for the model to repair.
        """
        try:
            raw = json.loads(arguments or "{}")
        except json.JSONDecodeError as e:
            raise ModelBehaviorError(
                f"arguments for tool {self.name!r} are not valid JSON ({e.msg} at "
                f"position {e.pos}): {arguments[:200]!r}",
                output=arguments,
            ) from e
        if not isinstance(raw, dict):
            raise ModelBehaviorError(
                f"arguments for tool {self.name!r} must be a JSON object, got {arguments[:200]!r}",
                output=arguments,
            )
        return self.validate_object(raw, raw_text=arguments)

    def validate_object(
        self, arguments: dict[str, Any], *, raw_text: str | None = None
    ) -> dict[str, Any]:
        """Validate already-parsed arguments (e.g. from a journaled intent)."""
        if self.args_model is None:
            return dict(arguments)
        try:
            model = self.args_model.model_validate(arguments)
        except ValidationError as e:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(arguments)'}: {err['msg']}"
                for err in e.errors()
            )
            raise ModelBehaviorError(
                f"arguments for tool {self.name!r} do not match its schema: {problems}",
                output=raw_text if raw_text is not None else json.dumps(arguments),
            ) from e
        return {name: getattr(model, name) for name in type(model).model_fields}
