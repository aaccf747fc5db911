"""Checks every provider applies to a decoded answer before it becomes a response."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..core import ContextLengthError, Message, ModelBehaviorError, ToolCall, Usage
from ._protocol import ModelResponse

#: Finish reasons (OpenAI's, Anthropic's and llama.cpp's) meaning "cut off by a limit".
TRUNCATED = frozenset({"length", "max_tokens"})
#: Finish reasons meaning the provider withheld or the model refused the answer.
REFUSED = frozenset({"content_filter", "refusal"})


class TruncatedResponseError(ModelBehaviorError):
    """The answer stopped at the token limit. ``response`` is what the model did write
    (with its usage), so the runtime can show it to the model and ask for a shorter
    answer instead of sending the same prompt again."""

    def __init__(self, message: str, *, response: ModelResponse, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.response = response


def build_response(
    *,
    provider: str,
    model: str,
    content: str | None,
    calls: Sequence[ToolCall],
    finish_reason: str | None,
    usage: Usage,
    response_id: str | None = None,
    refusal: str | None = None,
) -> ModelResponse:
    """Check a decoded answer and build its :class:`ModelResponse`.

    ``finish_reason`` is kept as the provider reported it.

    Raises:
        TruncatedResponseError: the answer was cut off by the token limit.
        ModelBehaviorError: the answer was withheld or refused, or has neither text
            nor tool calls.
        ContextLengthError: generation stopped because the context window filled up.
    """
    where = f"{provider} model {model!r}"
    output = content or refusal or "".join(c.arguments for c in calls) or None
    if finish_reason == "model_context_window_exceeded":
        raise ContextLengthError(
            f"{where} filled its context window while answering",
            hint="compact the history or trim tool results, then retry",
            provider=provider,
            model=model,
        )
    if finish_reason in TRUNCATED:
        raise TruncatedResponseError(
            f"{where} stopped at the token limit: the answer is truncated",
            hint="raise ModelSettings.max_tokens, or ask for a shorter answer; the runtime "
            "shows the model its cut answer and asks for a shorter one",
            provider=provider,
            model=model,
            output=output,
            response=ModelResponse(
                message=Message(role="assistant", content=content or None,
                                tool_calls=tuple(calls)),
                usage=usage, provider=provider, model=model, finish_reason=finish_reason,
                response_id=response_id,
            ),
        )
    if finish_reason in REFUSED or (refusal and not content and not calls):
        reason = f": {refusal}" if refusal else ""
        raise ModelBehaviorError(
            f"{where} refused or the provider withheld the answer ({finish_reason}){reason}",
            hint="rephrase the task; retrying the same prompt will not help",
            provider=provider,
            model=model,
            output=output,
            retryable=False,
        )
    if not content and not calls:
        raise ModelBehaviorError(
            f"{where} returned neither text nor tool calls",
            hint="retrying usually helps; if not, check the prompt and tool_choice",
            provider=provider,
            model=model,
        )
    return ModelResponse(
        message=Message(role="assistant", content=content or None, tool_calls=tuple(calls)),
        usage=usage,
        provider=provider,
        model=model,
        finish_reason=finish_reason,
        response_id=response_id,
    )
