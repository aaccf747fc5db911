"""The OpenAI Chat Completions wire format: Tether requests to request bodies, and
responses (whole or streamed) back to :class:`ModelResponse`.

No credentials, clients or I/O here; :mod:`._openai` does that. The functions work on
the SDK's response types, which are only imported for type checking, so this module
imports without the ``openai`` package.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import Message, ModelBehaviorError, ToolCall, Usage
from ._answer import build_response
from ._protocol import ModelRequest, ModelResponse

if TYPE_CHECKING:
    from openai.types import CompletionUsage
    from openai.types.chat import ChatCompletion, ChatCompletionChunk

_BUILTIN_CHOICES = frozenset({"auto", "required", "none"})
_SCHEMA_NAME = re.compile(r"[^a-zA-Z0-9_-]")


def chat_request(request: ModelRequest, *, model: str, compatible: bool = False) -> dict[str, Any]:
    """The keyword arguments of ``chat.completions.create`` for ``request``.

    Args:
        request: What to ask.
        model: The model name to send.
        compatible: Shape the body for OpenAI-compatible servers (llama.cpp, vLLM...):
            ``max_tokens`` instead of ``max_completion_tokens``, an explicit
            ``tool_choice="auto"`` when tools are given, and ``""`` rather than ``null``
            as the content of assistant messages that only call tools.
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": [_message(m, compatible) for m in request.messages],
    }
    settings = request.settings
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": t.name,
                    **({"description": t.description} if t.description else {}),
                    "parameters": t.parameters,
                },
            }
            for t in request.tools
        ]
        choice = settings.tool_choice or ("auto" if compatible else None)
        if choice is not None:
            body["tool_choice"] = (
                choice
                if choice in _BUILTIN_CHOICES
                else {"type": "function", "function": {"name": choice}}
            )
        if settings.parallel_tool_calls is not None:
            body["parallel_tool_calls"] = settings.parallel_tool_calls
    if settings.temperature is not None:
        body["temperature"] = settings.temperature
    if settings.max_tokens is not None:
        body["max_tokens" if compatible else "max_completion_tokens"] = settings.max_tokens
    if settings.seed is not None:
        body["seed"] = settings.seed
    if settings.output_schema is not None:
        schema = settings.output_schema
        title = str(schema.get("title") or "output")
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {
                "name": _SCHEMA_NAME.sub("_", title)[:64] or "output",
                "schema": schema,
                "strict": is_strict_schema(schema),
            },
        }
    return body


def _message(message: Message, compatible: bool) -> dict[str, Any]:
    if message.role == "tool":
        return {
            "role": "tool",
            "tool_call_id": message.tool_call_id or "",
            "content": message.content or "",
        }
    if message.role == "assistant" and message.tool_calls:
        content = message.content if message.content else ("" if compatible else None)
        return {
            "role": "assistant",
            "content": content,
            "tool_calls": [
                {
                    "id": c.id,
                    "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments},
                }
                for c in message.tool_calls
            ],
        }
    return {"role": message.role, "content": message.content or ""}


def is_strict_schema(schema: Any) -> bool:
    """Whether OpenAI's strict structured-output mode accepts ``schema`` as it is.

    Strict mode needs every object to list all its properties as required and to
    forbid additional properties; other schemas are sent with ``strict: false``.
    """
    if isinstance(schema, list):
        return all(is_strict_schema(s) for s in schema)
    if not isinstance(schema, dict):
        return True
    if schema.get("type") == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        if schema.get("additionalProperties") is not False:
            return False
        if set(schema.get("required", [])) != set(properties):
            return False
    return all(is_strict_schema(v) for k, v in schema.items() if k not in ("enum", "const"))


def chat_usage(usage: CompletionUsage | None) -> Usage:
    """Tether usage from Chat Completions usage (cached and reasoning tokens included)."""
    if usage is None:
        return Usage(requests=1)
    prompt_details = usage.prompt_tokens_details
    completion_details = usage.completion_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=(prompt_details.cached_tokens or 0) if prompt_details else 0,
        cache_write_tokens=(prompt_details.cache_write_tokens or 0) if prompt_details else 0,
        reasoning_tokens=(completion_details.reasoning_tokens or 0) if completion_details else 0,
        requests=1,
    )


def chat_response(completion: ChatCompletion, *, provider: str, model: str) -> ModelResponse:
    """The :class:`ModelResponse` for a whole (non-streamed) completion.

    Raises:
        ModelBehaviorError: no choices, output truncated or filtered, a refusal, or
            neither text nor tool calls.
    """
    if not completion.choices:
        raise ModelBehaviorError(
            f"{provider} model {model!r} returned no choices",
            hint="the server answered without output; retrying usually helps",
            provider=provider,
            model=model,
        )
    choice = completion.choices[0]
    message = choice.message
    calls: list[ToolCall] = []
    for index, call in enumerate(message.tool_calls or ()):
        if call.type != "function":
            raise ModelBehaviorError(
                f"{provider} model {model!r} returned a {call.type!r} tool call; only "
                "function tools are supported",
                provider=provider,
                model=model,
            )
        calls.append(
            ToolCall(
                id=call.id or f"call_{index}",
                name=call.function.name,
                arguments=_arguments_text(call.function.arguments, provider, model),
            )
        )
    return build_response(
        provider=provider,
        model=completion.model or model,
        content=message.content,
        refusal=message.refusal,
        calls=calls,
        finish_reason=choice.finish_reason,
        usage=chat_usage(completion.usage),
        response_id=completion.id,
    )


def _arguments_text(arguments: object, provider: str, model: str) -> str:
    """A call's arguments as JSON text. Some servers send an object where the API has a
    string; its JSON is what the model meant. Anything else is the model's error."""
    if arguments is None or arguments == "":
        return "{}"
    if isinstance(arguments, str):
        return arguments
    if isinstance(arguments, dict | list):
        return json.dumps(arguments)
    raise ModelBehaviorError(
        f"{provider} model {model!r} sent tool-call arguments of type "
        f"{type(arguments).__name__}, not JSON text",
        hint="the server is not fully OpenAI-compatible; retrying may help",
        provider=provider,
        model=model,
        output=str(arguments)[:2000],
    )


@dataclass
class _PartialCall:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class ChatStreamDecoder:
    """Accumulates streamed ``chat.completion.chunk`` objects into one response."""

    def __init__(self, *, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self._text: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, _PartialCall] = {}
        self._finish_reason: str | None = None
        self._usage: CompletionUsage | None = None
        self._response_id: str | None = None
        self._reported_model: str | None = None

    def feed(self, chunk: ChatCompletionChunk) -> str:
        """Take one chunk; return the text it adds (may be empty)."""
        self._response_id = self._response_id or chunk.id
        self._reported_model = self._reported_model or chunk.model
        if chunk.usage is not None:
            self._usage = chunk.usage
        if not chunk.choices:
            return ""
        choice = chunk.choices[0]
        if choice.finish_reason is not None:
            self._finish_reason = choice.finish_reason
        delta = choice.delta
        for call in delta.tool_calls or ():
            partial = self._calls.setdefault(call.index, _PartialCall())
            if call.id:
                partial.id = call.id
            if call.function is not None:
                if call.function.name:
                    partial.name += call.function.name
                if call.function.arguments:
                    partial.arguments.append(call.function.arguments)
        if delta.refusal:
            self._refusal.append(delta.refusal)
        if delta.content:
            self._text.append(delta.content)
            return delta.content
        return ""

    def response(self) -> ModelResponse:
        """The complete response; call after the last chunk.

        Raises:
            ModelBehaviorError: as :func:`chat_response`, or a stream that ended before
                any choice.
        """
        if self._finish_reason is None and not self._text and not self._calls:
            raise ModelBehaviorError(
                f"{self.provider} model {self.model!r}: the stream ended without an answer",
                hint="the connection may have been cut; retrying usually helps",
                provider=self.provider,
                model=self.model,
            )
        calls = [
            ToolCall(id=p.id or f"call_{i}", name=p.name, arguments="".join(p.arguments) or "{}")
            for i, p in sorted(self._calls.items())
        ]
        return build_response(
            provider=self.provider,
            model=self._reported_model or self.model,
            content="".join(self._text) or None,
            refusal="".join(self._refusal) or None,
            calls=calls,
            finish_reason=self._finish_reason,
            usage=chat_usage(self._usage),
            response_id=self._response_id,
        )
