"""The OpenAI provider through the SDK's real HTTP stack, against recorded responses."""

from __future__ import annotations

import json

import pytest

from tether.core import (
    ContextLengthError,
    FatalModelError,
    Message,
    ModelBehaviorError,
    RateLimitError,
    ToolSpec,
    TransientModelError,
)
from tether.models import ModelRequest, ModelSettings, OpenAIModel, StreamDelta

from ._replay import ReplayServer

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
)
ASK = ModelRequest(
    messages=(
        Message.system("You are a travel assistant."),
        Message.user("What's the weather in Paris and in Tokyo?"),
    ),
    tools=(WEATHER,),
    settings=ModelSettings(temperature=0.0, parallel_tool_calls=True),
)


def _model(replay: ReplayServer, name: str = "gpt-4.1-mini") -> OpenAIModel:
    return OpenAIModel(name, api_key="sk-test", base_url=f"{replay.url}/v1")


async def test_parallel_tool_calls_and_cached_usage(replay: ReplayServer) -> None:
    (recorded,) = replay.queue("openai/chat_tool_calls")
    async with _model(replay) as model:
        response = await model.complete(ASK)

    sent = replay.received[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body == recorded.request
    assert sent.headers["authorization"] == "Bearer sk-test"
    assert sent.headers.get("x-stainless-retry-count") == "0"

    calls = response.message.tool_calls
    assert [(c.id, c.name, json.loads(c.arguments)) for c in calls] == [
        ("call_Vq3nC8pJ2mXk7tYw1rL5aZ0e", "get_weather", {"city": "Paris"}),
        ("call_Hb6sD1fG9kQe4uPz2xN8mW3c", "get_weather", {"city": "Tokyo"}),
    ]
    assert response.message.content is None
    assert response.finish_reason == "tool_calls"
    assert response.provider == "openai"
    assert response.model == "gpt-4.1-mini-2025-04-14"
    assert response.response_id == "chatcmpl-CPx7dY3kZqL0mW8rT2vB9nQ4sE1fA"
    assert response.usage.input_tokens == 2113
    assert response.usage.output_tokens == 46
    assert response.usage.cache_read_tokens == 1920
    assert response.usage.reasoning_tokens == 0
    assert response.usage.requests == 1


async def test_reasoning_tokens_are_reported(replay: ReplayServer) -> None:
    replay.queue("openai/chat_reasoning_text")
    async with _model(replay, "o4-mini") as model:
        response = await model.complete(ASK)
    assert response.message.content == "It is sunny in Paris (21 °C) and raining in Tokyo (16 °C)."
    assert response.usage.output_tokens == 598
    assert response.usage.reasoning_tokens == 576
    assert response.usage.cache_read_tokens == 2048


async def test_streamed_tool_call(replay: ReplayServer) -> None:
    replay.queue("openai/chat_stream_tool_call")
    deltas: list[StreamDelta] = []
    async with _model(replay) as model:
        async for delta in model.stream(ASK):
            deltas.append(delta)
    assert replay.received[0].body["stream"] is True
    assert replay.received[0].body["stream_options"] == {"include_usage": True}
    assert [d.text for d in deltas[:-1]] == []  # tool calls are not text
    final = deltas[-1].response
    assert final is not None
    (call,) = final.message.tool_calls
    assert (call.id, call.name, call.arguments) == (
        "call_Vq3nC8pJ2mXk7tYw1rL5aZ0e",
        "get_weather",
        '{"city":"Paris"}',
    )
    assert final.finish_reason == "tool_calls"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (1187, 15)
    assert final.usage.cache_read_tokens == 1024


async def test_streamed_text(replay: ReplayServer) -> None:
    replay.queue("openai/chat_stream_text")
    async with _model(replay) as model:
        deltas = [d async for d in model.stream(ASK)]
    text = "".join(d.text for d in deltas)
    assert text == "It is sunny in Paris (21 °C)."
    final = deltas[-1].response
    assert final is not None and final.message.content == text
    assert final.usage.output_tokens == 10


async def test_error_inside_a_stream_is_transient(replay: ReplayServer) -> None:
    replay.queue("openai/chat_stream_error")
    async with _model(replay) as model:
        with pytest.raises(TransientModelError) as caught:
            async for _ in model.stream(ASK):
                pass
    assert caught.value.status_code is None
    assert "error event in the stream" in caught.value.message


async def test_rate_limit_carries_retry_after(replay: ReplayServer) -> None:
    replay.queue("openai/error_429_rate_limit")
    async with _model(replay) as model:
        with pytest.raises(RateLimitError) as caught:
            await model.complete(ASK)
    error = caught.value
    assert error.retry_after == 20.0
    assert error.retryable
    assert (error.provider, error.model, error.status_code) == ("openai", "gpt-4.1-mini", 429)
    assert "Rate limit reached" in error.message
    assert error.hint
    assert len(replay.received) == 1  # the SDK did not retry on its own


async def test_out_of_quota_is_fatal(replay: ReplayServer) -> None:
    replay.queue("openai/error_429_quota")
    async with _model(replay) as model:
        with pytest.raises(FatalModelError) as caught:
            await model.complete(ASK)
    assert not caught.value.retryable
    assert "OPENAI_API_KEY" in (caught.value.hint or "")


async def test_context_length_exceeded(replay: ReplayServer) -> None:
    replay.queue("openai/error_400_context_length")
    async with _model(replay) as model:
        with pytest.raises(ContextLengthError) as caught:
            await model.complete(ASK)
    assert caught.value.status_code == 400
    assert "compact" in (caught.value.hint or "")


@pytest.mark.parametrize(
    ("recording", "error_type", "hint_part"),
    [
        ("openai/error_400_invalid", FatalModelError, "rejected"),
        ("openai/error_401", FatalModelError, "OPENAI_API_KEY"),
        ("openai/error_404_model", FatalModelError, "model name"),
        ("openai/error_500", TransientModelError, "retries"),
        ("openai/error_503_overloaded", TransientModelError, "retries"),
    ],
)
async def test_status_errors(
    replay: ReplayServer, recording: str, error_type: type[Exception], hint_part: str
) -> None:
    replay.queue(recording)
    async with _model(replay) as model:
        with pytest.raises(error_type) as caught:
            await model.complete(ASK)
    error = caught.value
    assert type(error) is error_type
    assert "openai model 'gpt-4.1-mini'" in str(error)
    assert hint_part in str(error)
    assert isinstance(error.__cause__, Exception)
    assert type(error.__cause__).__module__.startswith("openai")


async def test_truncated_answer_is_a_behavior_error(replay: ReplayServer) -> None:
    replay.queue("openai/chat_truncated")
    async with _model(replay) as model:
        with pytest.raises(ModelBehaviorError) as caught:
            await model.complete(ASK)
    assert caught.value.output == "The weather in Paris is"
    assert "max_tokens" in (caught.value.hint or "")


async def test_no_choices_is_a_behavior_error(replay: ReplayServer) -> None:
    replay.queue("openai/chat_no_choices")
    async with _model(replay) as model:
        with pytest.raises(ModelBehaviorError, match="no choices"):
            await model.complete(ASK)


async def test_connection_refused_is_transient() -> None:
    from tether.models._llama_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    async with OpenAIModel("gpt-4.1-mini", api_key="sk-test", base_url=url) as model:
        with pytest.raises(TransientModelError) as caught:
            await model.complete(ASK)
    assert "could not connect" in caught.value.message
    assert url in (caught.value.hint or "")


async def test_timeout_is_transient(replay: ReplayServer) -> None:
    # No reply queued and a tiny timeout: the replay server answers 500 only after
    # the read; use a timeout shorter than any round trip to force the timeout path.
    request = ASK.model_copy(update={"settings": ModelSettings(timeout_s=1e-6)})
    async with _model(replay) as model:
        with pytest.raises(TransientModelError) as caught:
            await model.complete(request)
    assert "timed out" in caught.value.message
