"""The OpenAI-compatible provider against a real llama.cpp server on 127.0.0.1."""

from __future__ import annotations

import json

import httpx
import pytest

from tether.core import ContextLengthError, Message, ModelBehaviorError, ToolSpec
from tether.models import ModelRequest, ModelSettings, OpenAIModel, select_model
from tether.models._openai_wire import chat_request

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)
DETERMINISTIC = ModelSettings(temperature=0.0, seed=0, max_tokens=256)


def _model(base_url: str) -> OpenAIModel:
    model = select_model(f"openai-compatible:{base_url}#smollm2", env={})
    assert isinstance(model, OpenAIModel)
    return model


WEATHER_REQUEST = ModelRequest(
    messages=(
        Message.system("You are a weather assistant. Answer in one sentence."),
        Message.user("What is the weather in Paris?"),
    ),
    tools=(WEATHER,),
    settings=DETERMINISTIC,
)


async def test_a_tool_call_with_the_usage_the_server_reported(llama_server: str) -> None:
    request = WEATHER_REQUEST
    async with _model(llama_server) as model:
        response = await model.complete(request)
    (call,) = response.message.tool_calls
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "Paris"}
    assert response.provider == "openai-compatible"
    assert response.finish_reason == "tool_calls"

    # The same body sent by hand: the server's own usage figures.
    body = chat_request(request, model="smollm2", compatible=True)
    async with httpx.AsyncClient() as client:
        raw = (await client.post(f"{llama_server}/chat/completions", json=body, timeout=120)).json()
    assert raw["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    assert response.usage.input_tokens == raw["usage"]["prompt_tokens"]
    assert response.usage.output_tokens == raw["usage"]["completion_tokens"]
    assert response.usage.requests == 1


async def test_a_tool_result_then_a_text_answer(llama_server: str) -> None:
    call_request = WEATHER_REQUEST
    async with _model(llama_server) as model:
        first = await model.complete(call_request)
        call = first.message.tool_calls[0]
        answer = await model.complete(
            ModelRequest(
                messages=(*call_request.messages, first.message, Message.tool(call, "Sunny, 21 C")),
                tools=(WEATHER,),
                settings=DETERMINISTIC.model_copy(update={"tool_choice": "none"}),
            )
        )
    assert answer.message.tool_calls == ()
    assert answer.message.content
    assert answer.finish_reason == "stop"


async def test_streamed_text(llama_server: str) -> None:
    request = ModelRequest(
        messages=(
            Message.system("Answer in one sentence."),
            Message.user("What is the capital of France?"),
        ),
        settings=DETERMINISTIC,
    )
    async with _model(llama_server) as model:
        deltas = [d async for d in model.stream(request)]
        whole = await model.complete(request)
    final = deltas[-1].response
    assert final is not None
    assert len(deltas) > 2
    assert "".join(d.text for d in deltas) == final.message.content == whole.message.content


async def test_truncation_is_reported(llama_server: str) -> None:
    request = ModelRequest(
        messages=(Message.user("Write a long essay about the sea."),),
        settings=ModelSettings(temperature=0.0, max_tokens=5),
    )
    async with _model(llama_server) as model:
        with pytest.raises(ModelBehaviorError, match="truncated") as caught:
            await model.complete(request)
    assert caught.value.output


async def test_a_prompt_over_the_window_is_a_context_length_error(llama_server: str) -> None:
    request = ModelRequest(messages=(Message.user("word " * 3000),), settings=DETERMINISTIC)
    async with _model(llama_server) as model:
        with pytest.raises(ContextLengthError) as caught:
            await model.complete(request)
    assert caught.value.status_code == 400
