"""The Model protocol: one required method, ``complete``.

Retries, fallbacks, circuit breakers and timeouts are wrappers owned by the
runtime; a provider makes exactly one attempt per call and translates its SDK's
errors into :mod:`tether.core` errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from ..core import Message, ToolSpec, Usage


class ModelSettings(BaseModel):
    """Per-request knobs. ``None`` means the provider's default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    #: ``"auto"`` (the model decides), ``"required"`` (it must call some tool),
    #: ``"none"`` (it must answer in text), or the name of the one tool it must call.
    tool_choice: Literal["auto", "required", "none"] | str | None = None
    parallel_tool_calls: bool | None = None
    #: JSON schema the final answer must follow (structured output).
    output_schema: dict[str, Any] | None = None
    #: Seconds one attempt may take before it is abandoned as transient.
    timeout_s: float | None = None


class ModelRequest(BaseModel):
    """Everything a model is asked in one call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    settings: ModelSettings = Field(default_factory=ModelSettings)
    #: The run step this request belongs to (1-based); 0 when not part of a run.
    step: int = 0


class ModelResponse(BaseModel):
    """One model answer: an assistant message (text and/or tool calls) and its usage."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    message: Message
    usage: Usage = Field(default_factory=Usage)
    provider: str
    model: str
    finish_reason: str | None = None
    #: Provider-reported identifiers (response id, system fingerprint), journaled as is.
    response_id: str | None = None
    #: What constrained the output, if anything (``"grammar:tool_or_answer"``,
    #: ``"grammar:answer_only"``...); set by providers that constrain decoding.
    constraint: str | None = None


class StreamDelta(BaseModel):
    """A piece of a streamed answer. The last delta of a stream carries ``response``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = ""
    response: ModelResponse | None = None


@runtime_checkable
class Model(Protocol):
    """Anything that can answer a :class:`ModelRequest`."""

    @property
    def provider(self) -> str:
        """Provider name as in OpenTelemetry's ``gen_ai.provider.name`` (``openai``...)."""
        ...

    @property
    def model_name(self) -> str:
        """The model asked for, e.g. ``gpt-4.1-mini``."""
        ...

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Make one attempt at answering ``request``; raise a ``ModelError`` on failure."""
        ...


@runtime_checkable
class StreamingModel(Model, Protocol):
    """A model that can also stream its answer."""

    def stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta]:
        """Yield text deltas; the final delta carries the complete response."""
        ...
