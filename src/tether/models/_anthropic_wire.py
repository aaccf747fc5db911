"""The Anthropic Messages wire format: Tether requests to request bodies, and messages
(whole or streamed) back to :class:`ModelResponse`.

No credentials, clients or I/O here; :mod:`._anthropic` does that. SDK types are only
imported for type checking, so this module imports without the ``anthropic`` package.

Usage is normalized to Tether's convention: ``input_tokens`` includes the prompt
tokens read from and written to the cache (Anthropic reports them apart), and
``output_tokens`` includes thinking tokens.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..core import Message, ModelBehaviorError, ToolCall, Usage
from ._answer import build_response
from ._protocol import ModelRequest, ModelResponse

if TYPE_CHECKING:
    from anthropic.types import Message as AnthropicMessage
    from anthropic.types import MessageDeltaUsage, RawMessageStreamEvent
    from anthropic.types import Usage as AnthropicUsage

#: ``max_tokens`` is required by the Messages API; this is sent when settings leave it open.
DEFAULT_MAX_TOKENS = 8192


def messages_request(
    request: ModelRequest, *, model: str, default_max_tokens: int = DEFAULT_MAX_TOKENS
) -> dict[str, Any]:
    """The keyword arguments of ``messages.create`` for ``request``.

    System messages become the ``system`` parameter; tool results become
    ``tool_result`` blocks in a user turn, several results of one step in one turn.
    """
    settings = request.settings
    system = "\n\n".join(m.content or "" for m in request.messages if m.role == "system")
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": settings.max_tokens or default_max_tokens,
        "messages": _turns(request.messages),
    }
    if system:
        body["system"] = system
    if request.tools:
        body["tools"] = [
            {
                "name": t.name,
                **({"description": t.description} if t.description else {}),
                "input_schema": t.parameters,
            }
            for t in request.tools
        ]
        choice = _tool_choice(settings.tool_choice, settings.parallel_tool_calls)
        if choice is not None:
            body["tool_choice"] = choice
    if settings.temperature is not None:
        body["temperature"] = settings.temperature
    if settings.output_schema is not None:
        body["output_config"] = {
            "format": {"type": "json_schema", "schema": settings.output_schema}
        }
    return body


def _tool_choice(choice: str | None, parallel: bool | None) -> dict[str, Any] | None:
    if choice is None and parallel is None:
        return None
    if choice in (None, "auto"):
        result: dict[str, Any] = {"type": "auto"}
    elif choice == "required":
        result = {"type": "any"}
    elif choice == "none":
        return {"type": "none"}
    else:
        result = {"type": "tool", "name": choice}
    if parallel is False:
        result["disable_parallel_tool_use"] = True
    return result


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks: list[dict[str, Any]] = []
        if message.role == "tool":
            blocks.append(
                {
                    "type": "tool_result",
                    "tool_use_id": message.tool_call_id or "",
                    "content": message.content or "",
                }
            )
        else:
            if message.content:
                blocks.append({"type": "text", "text": message.content})
            for call in message.tool_calls:
                blocks.append(
                    {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call)}
                )
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    # A turn of one text block is sent in the API's short form, a plain string.
    for turn in turns:
        content = turn["content"]
        if len(content) == 1 and content[0]["type"] == "text":
            turn["content"] = content[0]["text"]
    return turns


def _input(call: ToolCall) -> dict[str, Any]:
    """A tool call's arguments as the object Anthropic expects (``{}`` if they were not)."""
    try:
        value = json.loads(call.arguments or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def messages_usage(usage: AnthropicUsage | MessageDeltaUsage | None) -> Usage:
    """Tether usage from Anthropic usage (cache reads and writes included in input)."""
    if usage is None:
        return Usage(requests=1)
    cache_read = usage.cache_read_input_tokens or 0
    cache_write = usage.cache_creation_input_tokens or 0
    details = usage.output_tokens_details
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cache_read + cache_write,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=cache_read,
        cache_write_tokens=cache_write,
        reasoning_tokens=(getattr(details, "thinking_tokens", None) or 0) if details else 0,
        requests=1,
    )


def messages_response(message: AnthropicMessage, *, provider: str, model: str) -> ModelResponse:
    """The :class:`ModelResponse` for a whole (non-streamed) message.

    Raises:
        ModelBehaviorError: truncated (``max_tokens``), refused, or empty.
        ContextLengthError: stopped because the context window filled up.
    """
    text: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            text.append(block.text)
        elif block.type == "tool_use":
            calls.append(ToolCall(id=block.id, name=block.name, arguments=json.dumps(block.input)))
    return build_response(
        provider=provider,
        model=message.model or model,
        content="".join(text) or None,
        calls=calls,
        finish_reason=message.stop_reason,
        usage=messages_usage(message.usage),
        response_id=message.id,
    )


@dataclass
class _Block:
    type: str
    text: list[str] = field(default_factory=list)
    id: str = ""
    name: str = ""


class MessagesStreamDecoder:
    """Accumulates streamed Messages events into one response.

    ``message_start`` carries the input usage; ``message_delta`` carries the stop
    reason and cumulative usage (its fields override those of ``message_start``).
    """

    def __init__(self, *, provider: str, model: str) -> None:
        self.provider = provider
        self.model = model
        self._blocks: dict[int, _Block] = {}
        self._usage: dict[str, Any] = {}
        self._stop_reason: str | None = None
        self._response_id: str | None = None
        self._reported_model: str | None = None
        self._stopped = False

    def feed(self, event: RawMessageStreamEvent) -> str:
        """Take one event; return the text it adds (may be empty)."""
        if event.type == "message_start":
            self._response_id = event.message.id
            self._reported_model = event.message.model
            self._merge_usage(event.message.usage)
        elif event.type == "content_block_start":
            block = event.content_block
            if block.type == "tool_use":
                self._blocks[event.index] = _Block(type="tool_use", id=block.id, name=block.name)
            elif block.type == "text":
                self._blocks[event.index] = _Block(type="text", text=[block.text])
                return block.text
        elif event.type == "content_block_delta":
            partial = self._blocks.get(event.index)
            delta = event.delta
            if partial is None:
                return ""
            if delta.type == "text_delta":
                partial.text.append(delta.text)
                return delta.text
            if delta.type == "input_json_delta":
                partial.text.append(delta.partial_json)
        elif event.type == "message_delta":
            if event.delta.stop_reason is not None:
                self._stop_reason = event.delta.stop_reason
            self._merge_usage(event.usage)
        elif event.type == "message_stop":
            self._stopped = True
        return ""

    def _merge_usage(self, usage: AnthropicUsage | MessageDeltaUsage) -> None:
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
            "output_tokens_details",
        ):
            value = getattr(usage, name, None)
            if value is not None:
                self._usage[name] = value

    def response(self) -> ModelResponse:
        """The complete response; call after the last event.

        Raises:
            ModelBehaviorError: as :func:`messages_response`, or a stream cut before
                ``message_stop``.
        """
        if not self._stopped:
            raise ModelBehaviorError(
                f"{self.provider} model {self.model!r}: the stream ended before message_stop",
                hint="the connection may have been cut; retrying usually helps",
                provider=self.provider,
                model=self.model,
            )
        text: list[str] = []
        calls: list[ToolCall] = []
        for _, block in sorted(self._blocks.items()):
            if block.type == "text":
                text.append("".join(block.text))
            else:
                calls.append(
                    ToolCall(id=block.id, name=block.name, arguments="".join(block.text) or "{}")
                )
        cache_read = int(self._usage.get("cache_read_input_tokens") or 0)
        cache_write = int(self._usage.get("cache_creation_input_tokens") or 0)
        details = self._usage.get("output_tokens_details")
        usage = Usage(
            input_tokens=int(self._usage.get("input_tokens") or 0) + cache_read + cache_write,
            output_tokens=int(self._usage.get("output_tokens") or 0),
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            reasoning_tokens=int(getattr(details, "thinking_tokens", None) or 0),
            requests=1,
        )
        return build_response(
            provider=self.provider,
            model=self._reported_model or self.model,
            content="".join(text) or None,
            calls=calls,
            finish_reason=self._stop_reason,
            usage=usage,
            response_id=self._response_id,
        )
