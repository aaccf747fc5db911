"""Messages, tool calls, tool results and token usage: the data every layer speaks."""

from __future__ import annotations

import json
from typing import Any, Literal

import pydantic_core
from pydantic import BaseModel, ConfigDict, Field

#: Who a message is from: instructions, the user, the model, or a tool's answer.
Role = Literal["system", "user", "assistant", "tool"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ToolCall(_Frozen):
    """A model's request to call one tool.

    ``arguments`` is the JSON text exactly as the model produced it: it may be
    malformed, and the runtime (not the provider) decides what to do about that.
    """

    id: str
    name: str
    arguments: str = "{}"

    @classmethod
    def of(cls, name: str, /, *, call_id: str | None = None, **arguments: Any) -> ToolCall:
        """Build a call from keyword arguments (handy in tests and scripted models)."""
        return cls(id=call_id or f"call_{name}", name=name, arguments=json.dumps(arguments))


class Message(_Frozen):
    """One message of a conversation, in a provider-neutral shape."""

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None

    @classmethod
    def system(cls, content: str) -> Message:
        """A system message: instructions the model follows for the whole conversation."""
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str) -> Message:
        """A user message: the task, or what a person said."""
        return cls(role="user", content=content)

    @classmethod
    def assistant(cls, content: str | None, tool_calls: tuple[ToolCall, ...] = ()) -> Message:
        """A model's message: its text (None when it only calls tools) and the tool
        calls it asked for, in the order they are answered."""
        return cls(role="assistant", content=content, tool_calls=tool_calls)

    @classmethod
    def tool(cls, call: ToolCall, content: str) -> Message:
        """The answer to one tool call: ``content`` is what the model reads (the
        result, serialised, or the error), tied to ``call`` by its id and name."""
        return cls(role="tool", content=content, tool_call_id=call.id, name=call.name)


class Usage(_Frozen):
    """Token counts of one model call (or a sum of several)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    requests: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_tokens=self.cache_read_tokens + other.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens + other.cache_write_tokens,
            reasoning_tokens=self.reasoning_tokens + other.reasoning_tokens,
            requests=self.requests + other.requests,
        )

    @property
    def total_tokens(self) -> int:
        """Input plus output tokens. Cache and reasoning tokens are already counted in
        those by providers that report them, so they are not added again."""
        return self.input_tokens + self.output_tokens


class ToolSpec(_Frozen):
    """What a model is told about a tool: name, description and JSON schema of its arguments."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class Artifact(_Frozen):
    """A reference to a large artifact a tool produced (a file, a report, a dataset):
    the journal and the model get the reference, never the bytes.

    Args:
        uri: Where the artifact is (``file:///...``, ``s3://...``, a run id).
        media_type: Its MIME type.
        size_bytes: Its size, if known.
        summary: A short description the model sees in place of the content.
    """

    uri: str
    media_type: str = "application/octet-stream"
    size_bytes: int | None = None
    summary: str = ""


class ToolResult(_Frozen):
    """What a tool returns when it has more to say than one value: a structured value
    (journaled as JSON, shown to the model as JSON text), the text the model sees, and
    references to large artifacts.

    A tool may also return a plain value: a ``str`` is the text itself, anything else
    (dicts, lists, numbers, dataclasses, pydantic models) is its structured ``value``.

    Args:
        value: A JSON-compatible value, journaled as it is (field ``value`` of
            ``tool.result``).
        content: The text the model sees; default: ``value`` as JSON text.
        artifacts: References to artifacts kept outside the journal; the model sees
            each one's uri, media type, size and summary.
    """

    value: Any = None
    content: str | None = None
    artifacts: tuple[Artifact, ...] = ()

    def text(self) -> str:
        """The text the model sees for this result."""
        if self.content is not None:
            text = self.content
        elif self.value is None:
            text = ""
        elif isinstance(self.value, str):
            text = self.value
        else:
            text = pydantic_core.to_json(self.value).decode()
        if self.artifacts:
            refs = pydantic_core.to_json(
                [a.model_dump(exclude_defaults=True) for a in self.artifacts]).decode()
            text = f"{text}\nartifacts: {refs}" if text else f"artifacts: {refs}"
        return text
