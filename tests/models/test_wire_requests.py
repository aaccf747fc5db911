"""Request bodies built by the wire modules, and the local provider's prompt plan."""

from __future__ import annotations

from tether.core import Message, ToolCall, ToolSpec
from tether.models import ModelRequest, ModelSettings
from tether.models._anthropic_wire import messages_request
from tether.models._local_prompt import call_schema, plan_request, rank_tools
from tether.models._openai_wire import chat_request, is_strict_schema

WEATHER = ToolSpec(
    name="get_weather",
    description="Get the current weather for a city.",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
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
CALL = ToolCall(id="call_1", name="get_weather", arguments='{"city": "Paris"}')
HISTORY = (
    Message.system("Be brief."),
    Message.user("Weather in Paris?"),
    Message.assistant(None, (CALL,)),
    Message.tool(CALL, "Sunny"),
)


def test_openai_body() -> None:
    body = chat_request(
        ModelRequest(
            messages=HISTORY,
            tools=(WEATHER,),
            settings=ModelSettings(max_tokens=100, seed=7, tool_choice="get_weather"),
        ),
        model="gpt-4.1-mini",
    )
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert body["max_completion_tokens"] == 100 and "max_tokens" not in body
    assert body["seed"] == 7


def test_openai_compatible_body() -> None:
    body = chat_request(
        ModelRequest(messages=HISTORY, tools=(WEATHER,), settings=ModelSettings(max_tokens=100)),
        model="m",
        compatible=True,
    )
    assert body["messages"][2]["content"] == ""
    assert body["tool_choice"] == "auto"
    assert body["max_tokens"] == 100 and "max_completion_tokens" not in body


def test_openai_structured_output() -> None:
    strict = {
        "title": "City Answer",
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    }
    body = chat_request(
        ModelRequest(messages=HISTORY[:2], settings=ModelSettings(output_schema=strict)),
        model="gpt-4.1-mini",
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "City_Answer", "schema": strict, "strict": True},
    }
    loose = {"type": "object", "properties": {"city": {"type": "string"}}}
    assert not is_strict_schema(loose)
    assert "tools" not in body and "tool_choice" not in body


def test_anthropic_body() -> None:
    body = messages_request(
        ModelRequest(
            messages=(*HISTORY, Message.user("And in Rome?")),
            tools=(WEATHER,),
            settings=ModelSettings(tool_choice="required", parallel_tool_calls=False),
        ),
        model="claude-sonnet-4-6",
    )
    assert body["system"] == "Be brief."
    assert body["max_tokens"] == 8192
    assert body["messages"] == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                }
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "Sunny"},
                {"type": "text", "text": "And in Rome?"},
            ],
        },
    ]
    assert body["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}
    assert body["tools"][0]["input_schema"] == WEATHER.parameters


def test_anthropic_structured_output_and_choices() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "integer"}}}
    body = messages_request(
        ModelRequest(messages=HISTORY[:2], settings=ModelSettings(output_schema=schema)),
        model="claude-sonnet-4-6",
    )
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    named = messages_request(
        ModelRequest(
            messages=HISTORY[:2],
            tools=(WEATHER,),
            settings=ModelSettings(tool_choice="get_weather"),
        ),
        model="m",
    )
    assert named["tool_choice"] == {"type": "tool", "name": "get_weather"}
    none = messages_request(
        ModelRequest(
            messages=HISTORY[:2], tools=(WEATHER,), settings=ModelSettings(tool_choice="none")
        ),
        model="m",
    )
    assert none["tool_choice"] == {"type": "none"}


def test_local_phases() -> None:
    ask = plan_request(ModelRequest(messages=HISTORY[:2], tools=(ADD, WEATHER)))
    assert ask.mode == "tool"
    # The prompt lists every tool, most relevant first; the grammar admits only the
    # one tool the request shares the most words with.
    assert ask.messages[0]["role"] == "system"
    assert ask.messages[0]["content"] == (
        "Be brief.\n\nYou answer by calling one of these tools:\n"
        "- get_weather: Get the current weather for a city.\n- add: Add two numbers.\n"
        'Reply only with JSON: {"tool": <tool name>, "arguments": {...}}'
    )
    assert ask.tools == (WEATHER,)
    wide = plan_request(ModelRequest(messages=HISTORY[:2], tools=(ADD, WEATHER)), narrow=False)
    assert wide.tools == (WEATHER, ADD)
    unclear = plan_request(ModelRequest(messages=(Message.user("Hello"),), tools=(ADD, WEATHER)))
    assert unclear.tools == (ADD, WEATHER)
    answer = plan_request(ModelRequest(messages=HISTORY, tools=(ADD, WEATHER)))
    assert answer.mode == "answer"
    assert answer.call_schema is None
    assert [m["role"] for m in answer.messages] == ["system", "user", "assistant", "tool"]
    assert (
        answer.messages[2]["content"] == '{"tool": "get_weather", "arguments": {"city": "Paris"}}'
    )
    choice = plan_request(ModelRequest(messages=HISTORY[:2], tools=(WEATHER,)), tool_mode="choice")
    assert choice.mode == "choice"


def test_rank_is_stable_without_overlap() -> None:
    assert rank_tools((ADD, WEATHER), "hello there") == (ADD, WEATHER)
    assert rank_tools((ADD, WEATHER), "is it raining in the city of Oslo") == (WEATHER, ADD)


def test_call_schema_lifts_defs() -> None:
    nested = ToolSpec(
        name="book",
        parameters={
            "$defs": {"Party": {"type": "object", "properties": {"size": {"type": "integer"}}}},
            "type": "object",
            "properties": {"party": {"$ref": "#/$defs/Party"}},
        },
    )
    schema = call_schema((WEATHER, nested))
    assert schema["$defs"] == {
        "t1_Party": {"type": "object", "properties": {"size": {"type": "integer"}}}
    }
    second = schema["oneOf"][1]["properties"]
    assert second["tool"] == {"const": "book"}
    assert second["arguments"]["properties"]["party"] == {"$ref": "#/$defs/t1_Party"}


def test_grammars_compile() -> None:
    from llama_cpp.llama_grammar import LlamaGrammar

    from tether.models._local import _grammar_text

    for mode in ("phased", "choice"):
        plan = plan_request(
            ModelRequest(messages=HISTORY[:2], tools=(WEATHER, ADD)), tool_mode=mode
        )  # type: ignore[arg-type]
        text = _grammar_text(plan)
        assert text is not None and "\\x00-\\x1F" in text
        LlamaGrammar.from_string(text, verbose=False)
