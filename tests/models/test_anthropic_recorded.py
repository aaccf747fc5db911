"""The Anthropic provider through the SDK's real HTTP stack, against recorded responses."""

from __future__ import annotations

import json

import pytest

from tether.core import (
    ContextLengthError,
    FatalModelError,
    Message,
    ModelBehaviorError,
    RateLimitError,
    ToolCall,
    ToolSpec,
    TransientModelError,
)
from tether.models import AnthropicModel, ModelRequest, ModelSettings

from ._replay import ReplayServer

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {
            "city": {"type": "string", "description": "The city name"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        },
        "required": ["city"],
    },
)
ASK = ModelRequest(
    messages=(
        Message.system("You are a travel assistant."),
        Message.user("What's the weather like in Paris?"),
    ),
    tools=(WEATHER,),
    settings=ModelSettings(max_tokens=1024, parallel_tool_calls=False),
)


def _model(replay: ReplayServer) -> AnthropicModel:
    return AnthropicModel("claude-sonnet-4-6", api_key="sk-ant-test", base_url=replay.url)


async def test_tool_use_with_cache_usage(replay: ReplayServer) -> None:
    (recorded,) = replay.queue("anthropic/messages_tool_use")
    async with _model(replay) as model:
        response = await model.complete(ASK)

    sent = replay.received[0]
    assert sent.path == "/v1/messages"
    assert sent.body == recorded.request
    # The SDK sends the key as x-api-key or as a bearer token, depending on its version.
    sent_key = sent.headers.get("x-api-key") or sent.headers["authorization"].removeprefix(
        "Bearer "
    )
    assert sent_key == "sk-ant-test"
    assert sent.headers.get("x-stainless-retry-count") == "0"

    message = response.message
    assert message.content == "I'll check the current weather in Paris for you."
    (call,) = message.tool_calls
    assert (call.id, call.name) == ("toolu_01A09q90qw90lq917835lq9", "get_weather")
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "celsius"}
    assert response.finish_reason == "tool_use"
    assert response.provider == "anthropic"
    assert response.model == "claude-sonnet-4-6"
    assert response.response_id == "msg_01Aq9w938a90dw8qYxZ7kLmN"
    usage = response.usage
    # Tether counts cache reads and writes inside input_tokens; Anthropic reports them apart.
    assert usage.input_tokens == 412 + 1024 + 2048
    assert usage.cache_read_tokens == 2048
    assert usage.cache_write_tokens == 1024
    assert usage.output_tokens == 71


async def test_tool_results_go_back_in_one_user_turn(replay: ReplayServer) -> None:
    (recorded,) = replay.queue("anthropic/messages_after_tool_result")
    paris = ToolCall(id="toolu_01Paris", name="get_weather", arguments='{"city": "Paris"}')
    tokyo = ToolCall(id="toolu_01Tokyo", name="get_weather", arguments='{"city": "Tokyo"}')
    request = ModelRequest(
        messages=(
            Message.system("You are a travel assistant."),
            Message.user("What's the weather in Paris and in Tokyo?"),
            Message.assistant("Let me look both up.", (paris, tokyo)),
            Message.tool(paris, "Sunny, 21 C"),
            Message.tool(tokyo, "Rain, 16 C"),
        ),
        tools=(
            ToolSpec(
                name="get_weather",
                description="Get the current weather for a city.",
                parameters={
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            ),
        ),
    )
    async with _model(replay) as model:
        response = await model.complete(request)
    assert replay.received[0].body == recorded.request
    assert (
        response.message.content == "It's sunny and 21 °C in Paris, and raining at 16 °C in Tokyo."
    )
    assert response.message.tool_calls == ()
    assert response.finish_reason == "end_turn"
    assert response.usage.input_tokens == 96 + 3072
    assert response.usage.cache_read_tokens == 3072


async def test_streamed_tool_use(replay: ReplayServer) -> None:
    replay.queue("anthropic/stream_tool_use")
    async with _model(replay) as model:
        deltas = [d async for d in model.stream(ASK)]
    assert replay.received[0].body["stream"] is True
    assert [d.text for d in deltas[:-1]] == ["Okay", ", let me check the weather in Paris."]
    final = deltas[-1].response
    assert final is not None
    assert final.message.content == "Okay, let me check the weather in Paris."
    (call,) = final.message.tool_calls
    assert call.id == "toolu_01T1x1fJ34qAmk2tNTrN7Up6"
    assert json.loads(call.arguments) == {"city": "Paris", "unit": "celsius"}
    assert final.finish_reason == "tool_use"
    assert final.usage.input_tokens == 472 + 1536
    assert final.usage.cache_read_tokens == 1536
    assert final.usage.output_tokens == 89  # message_delta's cumulative count wins


async def test_overloaded_error_event_inside_a_stream(replay: ReplayServer) -> None:
    replay.queue("anthropic/stream_overloaded")
    texts: list[str] = []
    async with _model(replay) as model:
        with pytest.raises(TransientModelError) as caught:
            async for delta in model.stream(ASK):
                texts.append(delta.text)
    assert texts == ["Paris"]
    assert "overloaded" in (caught.value.hint or "")
    assert caught.value.status_code is None


async def test_rate_limit_carries_retry_after(replay: ReplayServer) -> None:
    replay.queue("anthropic/error_429_rate_limit")
    async with _model(replay) as model:
        with pytest.raises(RateLimitError) as caught:
            await model.complete(ASK)
    assert caught.value.retry_after == 17.0
    assert caught.value.status_code == 429
    assert "50,000 input tokens per minute" in caught.value.message
    assert len(replay.received) == 1


async def test_overloaded_529_is_transient(replay: ReplayServer) -> None:
    replay.queue("anthropic/error_529_overloaded")
    async with _model(replay) as model:
        with pytest.raises(TransientModelError) as caught:
            await model.complete(ASK)
    assert caught.value.status_code == 529
    assert caught.value.retryable
    assert "overloaded" in (caught.value.hint or "")
    assert len(replay.received) == 1


async def test_prompt_too_long_is_context_length(replay: ReplayServer) -> None:
    replay.queue("anthropic/error_400_prompt_too_long")
    async with _model(replay) as model:
        with pytest.raises(ContextLengthError, match="prompt is too long"):
            await model.complete(ASK)


@pytest.mark.parametrize(
    ("recording", "error_type", "hint_part"),
    [
        ("anthropic/error_400_invalid_request", FatalModelError, "rejected"),
        ("anthropic/error_401", FatalModelError, "ANTHROPIC_API_KEY"),
        ("anthropic/error_500", TransientModelError, "retries"),
    ],
)
async def test_status_errors(
    replay: ReplayServer, recording: str, error_type: type[Exception], hint_part: str
) -> None:
    replay.queue(recording)
    async with _model(replay) as model:
        with pytest.raises(error_type) as caught:
            await model.complete(ASK)
    assert type(caught.value) is error_type
    assert "anthropic model 'claude-sonnet-4-6'" in str(caught.value)
    assert hint_part in str(caught.value)
    assert type(caught.value.__cause__).__module__.startswith("anthropic")


async def test_max_tokens_is_a_truncation(replay: ReplayServer) -> None:
    replay.queue("anthropic/messages_max_tokens")
    async with _model(replay) as model:
        with pytest.raises(ModelBehaviorError) as caught:
            await model.complete(ASK)
    assert caught.value.output == "Paris in late November is usually"
