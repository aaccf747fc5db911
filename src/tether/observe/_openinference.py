"""OpenInference attributes beside the GenAI conventions, so backends that read them
(Arize Phoenix, Langfuse, ...) show each span's kind, input and output.

Reference: the OpenInference semantic conventions (``openinference.span.kind``,
``input.value`` / ``output.value`` with their MIME types, ``llm.input_messages.<i>.*``
and ``llm.output_messages.<i>.*`` flattened message attributes, ``llm.token_count.*``,
``tool.name``). Content attributes are added only when content capture is on.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

AttributeValue: TypeAlias = str | bool | int | float | list[str] | list[int] | list[float]

KIND = "openinference.span.kind"
JSON_MIME = "application/json"
TEXT_MIME = "text/plain"


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _json(value)


def messages(prefix: str, found: Sequence[Mapping[str, Any]],
             out: dict[str, AttributeValue]) -> None:
    """``{prefix}.<i>.message.*`` attributes of a message list (journal shape)."""
    for i, m in enumerate(found):
        key = f"{prefix}.{i}.message"
        out[f"{key}.role"] = str(m.get("role") or "")
        if m.get("content") is not None:
            out[f"{key}.content"] = _text(m["content"])
        if m.get("tool_call_id"):
            out[f"{key}.tool_call_id"] = str(m["tool_call_id"])
        if m.get("name"):
            out[f"{key}.name"] = str(m["name"])
        for j, call in enumerate(m.get("tool_calls") or []):
            call_key = f"{key}.tool_calls.{j}.tool_call"
            if call.get("id"):
                out[f"{call_key}.id"] = str(call["id"])
            out[f"{call_key}.function.name"] = str(call.get("name") or "")
            out[f"{call_key}.function.arguments"] = _text(call.get("arguments") or "{}")


def llm(attrs: dict[str, AttributeValue], *, model: str, provider: str, input_tokens: int,
        output_tokens: int, answered: bool) -> None:
    """The content-free attributes of an LLM span."""
    attrs[KIND] = "LLM"
    attrs["llm.model_name"] = model
    attrs["llm.provider"] = provider
    if answered:
        attrs["llm.token_count.prompt"] = input_tokens
        attrs["llm.token_count.completion"] = output_tokens
        attrs["llm.token_count.total"] = input_tokens + output_tokens


def llm_content(attrs: dict[str, AttributeValue], *, prompt: Sequence[Mapping[str, Any]] | None,
                answer: Mapping[str, Any] | None) -> None:
    """``input.value`` (the prompt's messages as JSON), ``output.value`` (the answer's
    text, or its tool calls as JSON) and the flattened message attributes."""
    if prompt is not None:
        attrs["input.value"] = _json({"messages": list(prompt)})
        attrs["input.mime_type"] = JSON_MIME
        messages("llm.input_messages", prompt, attrs)
    if answer is not None:
        content = answer.get("content")
        if content:
            attrs["output.value"] = _text(content)
            attrs["output.mime_type"] = TEXT_MIME
        else:
            attrs["output.value"] = _json({"tool_calls": answer.get("tool_calls") or []})
            attrs["output.mime_type"] = JSON_MIME
        messages("llm.output_messages", [answer], attrs)


def io(attrs: dict[str, AttributeValue], *, input: Any = None, output: Any = None) -> None:
    """``input.value`` / ``output.value`` of an agent or tool span."""
    if input is not None:
        attrs["input.value"] = _text(input)
        attrs["input.mime_type"] = TEXT_MIME if isinstance(input, str) else JSON_MIME
    if output is not None:
        attrs["output.value"] = _text(output)
        attrs["output.mime_type"] = TEXT_MIME if isinstance(output, str) else JSON_MIME
