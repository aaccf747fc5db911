"""The in-process llama.cpp provider with the embedded SmolLM2-135M-Instruct."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tether.core import (
    ContextLengthError,
    FatalModelError,
    Message,
    ToolSpec,
)
from tether.models import LocalModel, ModelRequest, ModelSettings, StreamingModel

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "City name"}},
        "required": ["city"],
    },
)
ADD = ToolSpec(
    name="add",
    description="Add two numbers.",
    parameters={
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
)
ASK = ModelRequest(messages=(Message.user("What is the weather in Paris?"),), tools=(WEATHER,))


@pytest.fixture(scope="module")
def model() -> LocalModel:
    local = LocalModel()
    local.load()
    return local


def _check_arguments(spec: ToolSpec, arguments: str) -> dict[str, Any]:
    value = json.loads(arguments)
    properties = spec.parameters["properties"]
    assert set(spec.parameters["required"]) <= set(value) <= set(properties)
    kinds = {"string": str, "number": (int, float), "integer": int, "boolean": bool}
    for key, item in value.items():
        assert isinstance(item, kinds[properties[key]["type"]]), (key, item)
    return value


async def test_a_tool_call_then_a_final_answer(model: LocalModel) -> None:
    assert isinstance(model, StreamingModel)
    first = await model.complete(ASK)
    (call,) = first.message.tool_calls
    assert call.name == "get_weather"
    assert _check_arguments(WEATHER, call.arguments) == {"city": "Paris"}
    assert call.id == "call_0_0"
    assert first.finish_reason == "tool_calls"
    assert first.provider == "local"
    assert first.model == "SmolLM2-135M-Instruct.Q4_1"
    assert first.usage.input_tokens > 0 and first.usage.output_tokens > 0
    assert first.usage.requests == 1

    follow_up = ModelRequest(
        messages=(*ASK.messages, first.message, Message.tool(call, "Sunny, 21 C")),
        tools=ASK.tools,
    )
    final = await model.complete(follow_up)
    assert final.message.tool_calls == ()
    assert final.message.content and "21" in final.message.content
    assert final.finish_reason == "stop"


async def test_deterministic_by_default(model: LocalModel) -> None:
    first = await model.complete(ASK)
    second = await model.complete(ASK)
    assert first == second


async def test_streaming_matches_complete(model: LocalModel) -> None:
    call = (await model.complete(ASK)).message.tool_calls[0]
    follow_up = ModelRequest(
        messages=(*ASK.messages, Message.assistant(None, (call,)), Message.tool(call, "Rain, 9 C")),
        tools=ASK.tools,
    )
    whole = await model.complete(follow_up)
    deltas = [d async for d in model.stream(follow_up)]
    final = deltas[-1].response
    assert final is not None
    assert "".join(d.text for d in deltas) == final.message.content == whole.message.content
    assert len(deltas) > 2  # really streamed, token by token
    assert final.usage == whole.usage


async def test_tool_calls_are_not_streamed_as_text(model: LocalModel) -> None:
    deltas = [d async for d in model.stream(ASK)]
    assert [d.text for d in deltas] == [""]
    final = deltas[-1].response
    assert final is not None
    assert final.message.tool_calls[0].name == "get_weather"
    assert final.usage == (await model.complete(ASK)).usage


async def test_stopping_a_stream_early_frees_the_model(model: LocalModel) -> None:
    request = ModelRequest(messages=(Message.user("Tell me a long story about a fox."),))
    stream = model.stream(request)
    async for delta in stream:
        assert delta.text
        break
    await stream.aclose()  # type: ignore[attr-defined]
    # The model is free again: the next call does not deadlock.
    response = await asyncio.wait_for(model.complete(ASK), timeout=60)
    assert response.message.tool_calls


async def test_every_call_is_valid_for_the_tool_it_names(model: LocalModel) -> None:
    tools = (WEATHER, ADD)
    for question in ("What is 12 plus 30?", "How hot is it in Madrid?", "Please add 7 and 5."):
        response = await model.complete(
            ModelRequest(messages=(Message.user(question),), tools=tools)
        )
        (call,) = response.message.tool_calls
        spec = {t.name: t for t in tools}[call.name]
        _check_arguments(spec, call.arguments)


async def test_tool_choice_overrides_the_phase(model: LocalModel) -> None:
    tools = (WEATHER, ADD)
    forced = await model.complete(
        ModelRequest(
            messages=(Message.user("What is the weather in Paris?"),),
            tools=tools,
            settings=ModelSettings(tool_choice="add"),
        )
    )
    assert forced.message.tool_calls[0].name == "add"
    _check_arguments(ADD, forced.message.tool_calls[0].arguments)
    none = await model.complete(
        ModelRequest(
            messages=(Message.user("Say hello."),),
            tools=tools,
            settings=ModelSettings(tool_choice="none", max_tokens=200),
        )
    )
    assert none.message.tool_calls == () and none.message.content
    with pytest.raises(FatalModelError, match="not among"):
        await model.complete(
            ModelRequest(
                messages=ASK.messages, tools=tools, settings=ModelSettings(tool_choice="x")
            )
        )


async def test_nested_schemas_with_defs(model: LocalModel) -> None:
    booking = ToolSpec(
        name="book_table",
        description="Book a restaurant table.",
        parameters={
            "$defs": {
                "Party": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "size": {"type": "integer"}},
                    "required": ["name", "size"],
                }
            },
            "type": "object",
            "properties": {"party": {"$ref": "#/$defs/Party"}, "time": {"type": "string"}},
            "required": ["party", "time"],
        },
    )
    response = await model.complete(
        ModelRequest(
            messages=(Message.user("Book a table for 4 people, name Ada, at 7pm."),),
            tools=(booking,),
        )
    )
    arguments = json.loads(response.message.tool_calls[0].arguments)
    assert set(arguments) == {"party", "time"}
    assert isinstance(arguments["party"]["name"], str)
    assert isinstance(arguments["party"]["size"], int)


async def test_structured_output(model: LocalModel) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
        "required": ["city", "country"],
    }
    response = await model.complete(
        ModelRequest(
            messages=(Message.user("Which city is the capital of France?"),),
            settings=ModelSettings(output_schema=schema),
        )
    )
    value = json.loads(response.message.content or "")
    assert set(value) == {"city", "country"}


async def test_choice_mode_yields_text_or_a_valid_call() -> None:
    chooser = LocalModel(tool_mode="choice")
    for question in ("Hi! Who are you?", "What is the weather in Paris?"):
        response = await chooser.complete(
            ModelRequest(
                messages=(Message.user(question),),
                tools=(WEATHER,),
                settings=ModelSettings(max_tokens=200),
            )
        )
        if response.message.tool_calls:
            _check_arguments(WEATHER, response.message.tool_calls[0].arguments)
        else:
            assert response.message.content and not response.message.content.startswith("{")


async def test_prompt_longer_than_the_window() -> None:
    small = LocalModel(n_ctx=128)
    request = ModelRequest(messages=(Message.user("word " * 400),))
    with pytest.raises(ContextLengthError, match="context window 128"):
        await small.complete(request)


async def test_inference_does_not_block_the_event_loop(model: LocalModel) -> None:
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.005)
            ticks += 1

    ticker = asyncio.create_task(tick())
    try:
        await model.complete(ModelRequest(messages=(Message.user("Count from one to ten."),)))
    finally:
        ticker.cancel()
    assert ticks >= 5


async def test_runaway_strings_are_bounded(model: LocalModel) -> None:
    email = ToolSpec(
        name="send_email",
        description="Send an email to a recipient.",
        parameters={
            "type": "object",
            "properties": {
                "to": {"type": "string"},
                "subject": {"type": "string"},
                "body": {"type": "string"},
            },
            "required": ["to", "subject", "body"],
        },
    )
    response = await model.complete(
        ModelRequest(
            messages=(Message.user("Email bob@example.com that the meeting moved to 3pm."),),
            tools=(email,),
        )
    )
    arguments = json.loads(response.message.tool_calls[0].arguments)
    assert all(len(value) <= 200 for value in arguments.values())
