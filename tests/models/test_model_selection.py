"""Model selection strings: every form parses, errors name the variable to set."""

from __future__ import annotations

import pytest

from tether.core import ConfigurationError
from tether.models import (
    AnthropicModel,
    LocalModel,
    ModelSpec,
    OpenAIModel,
    default_local_model_path,
    parse_model_spec,
    select_model,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("local", ModelSpec(provider="local")),
        ("  local ", ModelSpec(provider="local")),
        ("local:/models/qwen.gguf", ModelSpec(provider="local", path="/models/qwen.gguf")),
        ("openai:gpt-4.1-mini", ModelSpec(provider="openai", model="gpt-4.1-mini")),
        ("anthropic:claude-sonnet-4-6", ModelSpec(provider="anthropic", model="claude-sonnet-4-6")),
        (
            "openai-compatible:http://127.0.0.1:8080/v1#smollm2",
            ModelSpec(
                provider="openai-compatible", model="smollm2", base_url="http://127.0.0.1:8080/v1"
            ),
        ),
        (
            "openai-compatible:https://llm.internal.example/v1/#Qwen/Qwen2.5-7B-Instruct",
            ModelSpec(
                provider="openai-compatible",
                model="Qwen/Qwen2.5-7B-Instruct",
                base_url="https://llm.internal.example/v1",
            ),
        ),
    ],
)
def test_each_form_parses(text: str, expected: ModelSpec) -> None:
    assert parse_model_spec(text) == expected
    assert ModelSpec.parse(text) == expected
    assert parse_model_spec(str(expected)) == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("gpt-4.1-mini", "TETHER_MODEL=openai:gpt-4.1-mini"),
        ("claude-sonnet-4-6", "TETHER_MODEL=anthropic:claude-sonnet-4-6"),
        ("bedrock:claude", "unknown provider"),
        ("openai:", "model name"),
        ("openai:gpt 4", "not a model name"),
        ("local:", ".gguf"),
        ("openai-compatible:127.0.0.1:8080#m", "http(s) URL"),
        ("openai-compatible:http://127.0.0.1:8080/v1", "TETHER_MODEL=openai-compatible:"),
    ],
)
def test_malformed_strings_name_the_variable(text: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse_model_spec(text)
    assert fragment in str(caught.value)
    assert "TETHER_MODEL" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "variable"),
    [
        ("openai:gpt-4.1-mini", "OPENAI_API_KEY"),
        ("anthropic:claude-sonnet-4-6", "ANTHROPIC_API_KEY"),
        ("openai-compatible:https://llm.example.com/v1#m", "OPENAI_COMPATIBLE_API_KEY"),
    ],
)
def test_missing_credentials_name_the_variable(text: str, variable: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        select_model(text, env={"OPENAI_API_KEY": "sk-real"} if "compatible" in text else {})
    assert variable in str(caught.value)


def test_credentials_come_from_the_environment() -> None:
    env = {"OPENAI_API_KEY": "sk-1", "ANTHROPIC_API_KEY": "sk-ant-1"}
    openai = select_model("openai:gpt-4.1-mini", env=env)
    assert isinstance(openai, OpenAIModel)
    assert (openai.provider, openai.model_name) == ("openai", "gpt-4.1-mini")
    assert openai.base_url == "https://api.openai.com/v1"
    anthropic = select_model("anthropic:claude-sonnet-4-6", env=env)
    assert isinstance(anthropic, AnthropicModel)
    assert (anthropic.provider, anthropic.model_name) == ("anthropic", "claude-sonnet-4-6")


def test_base_url_variables_are_honoured() -> None:
    env = {"OPENAI_API_KEY": "sk-1", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    model = select_model("openai:gpt-4.1-mini", env=env)
    assert isinstance(model, OpenAIModel) and model.base_url == "http://127.0.0.1:9/v1"


def test_local_compatible_server_needs_no_key() -> None:
    model = select_model("openai-compatible:http://localhost:8080/v1#smollm2", env={})
    assert isinstance(model, OpenAIModel)
    assert (model.provider, model.model_name) == ("openai-compatible", "smollm2")
    remote = select_model(
        "openai-compatible:https://llm.example.com/v1#m",
        env={"OPENAI_COMPATIBLE_API_KEY": "k"},
    )
    assert remote.provider == "openai-compatible"


def test_default_is_the_embedded_local_model() -> None:
    model = select_model(env={})
    assert isinstance(model, LocalModel)
    assert model.path == default_local_model_path().resolve()
    assert model.model_name == "SmolLM2-135M-Instruct.Q4_1"


def test_tether_model_variable_selects() -> None:
    model = select_model(env={"TETHER_MODEL": "openai:gpt-4.1-nano", "OPENAI_API_KEY": "sk"})
    assert model.model_name == "gpt-4.1-nano"


def test_local_path_must_exist(tmp_path: object) -> None:
    with pytest.raises(ConfigurationError, match="no GGUF model file"):
        select_model("local:/nonexistent/model.gguf", env={})
