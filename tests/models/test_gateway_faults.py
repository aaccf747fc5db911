"""What a provider or a gateway may send, through the real SDK and HTTP stack, becomes a
classified Tether error inside ``tether.models``: never a raw decoding error."""

from __future__ import annotations

import asyncio
import json

import pytest

from tether.core import (
    ContextLengthError,
    FatalModelError,
    Message,
    ModelBehaviorError,
    ModelError,
    ToolSpec,
    TransientModelError,
)
from tether.models import (
    DEFAULT_COMPATIBLE_MAX_TOKENS,
    AnthropicModel,
    ModelRequest,
    ModelSettings,
    OpenAIModel,
    TruncatedResponseError,
)
from tether.testing import Fault, FaultServer, counting_responder

LOOKUP = ToolSpec(name="lookup", description="Look up record i.",
                  parameters={"type": "object", "properties": {"i": {"type": "integer"}},
                              "required": ["i"]})
ASK = ModelRequest(messages=(Message.user("look up a record"),), tools=(LOOKUP,))


def _model(server: FaultServer, **kwargs: object) -> OpenAIModel:
    return OpenAIModel("qwen", api_key="sk-test", base_url=server.base_url,
                       provider="openai-compatible", **kwargs)  # type: ignore[arg-type]


async def _complete(server: FaultServer, request: ModelRequest = ASK, **kwargs: object) -> object:
    async with _model(server, **kwargs) as model:
        # A guard against a hang, far above any bound under test: never a timing assertion.
        return await asyncio.wait_for(model.complete(request), 60)


@pytest.mark.parametrize(("fault", "expected", "says"), [
    (Fault(kind="not_json"), TransientModelError, "upstream request timeout"),
    (Fault(kind="truncated_json"), TransientModelError, "not a completion"),
    (Fault(kind="html_200"), TransientModelError, "502 Bad Gateway nginx"),
    (Fault(kind="html_502"), TransientModelError, "HTTP 502: 502 Bad Gateway"),
    (Fault(kind="truncated"), TransientModelError, ""),
    (Fault(kind="reset"), TransientModelError, ""),
    (Fault(kind="huge"), ModelBehaviorError, "declares"),
    (Fault(kind="huge", declare_length=False), ModelBehaviorError, "passed"),
    (Fault(kind="context_length"), ContextLengthError, "maximum context length"),
    (Fault(kind="unauthorized"), FatalModelError, "Incorrect API key"),
    (Fault(kind="empty_choice"), ModelBehaviorError, "no choices"),
])
async def test_every_fault_is_classified(fault: Fault, expected: type, says: str) -> None:
    with FaultServer([fault], responder=counting_responder(1)) as server:
        with pytest.raises(ModelError) as caught:
            await _complete(server)
    error = caught.value
    assert type(error) is expected, repr(error)
    assert says in error.message
    assert "<" not in error.message and "script" not in error.message  # no raw HTML
    assert error.hint and (error.provider, error.model) == ("openai-compatible", "qwen")


async def test_a_trickle_is_bounded_by_the_request_timeout_not_per_read() -> None:
    # One byte every 0.2 s: each read is quick, the whole body would take over a minute.
    with FaultServer([Fault(kind="trickle", interval_s=0.2)]) as server:
        with pytest.raises(TransientModelError, match="no complete answer within 0.5 s"):
            await _complete(server, ASK.model_copy(
                update={"settings": ModelSettings(timeout_s=0.5)}))
        # the model's own timeout bounds it the same way when the request sets none
        server.set_plan([Fault(), Fault(kind="trickle", interval_s=0.2)])
        with pytest.raises(TransientModelError, match="within 0.5 s"):
            await _complete(server, timeout_s=0.5)


async def test_a_slow_but_whole_trickle_still_answers() -> None:
    with FaultServer([Fault(kind="trickle", interval_s=0.0)],
                     responder=counting_responder(0)) as server:
        response = await _complete(server)
    assert response.message.content == "done after 0 lookups"  # type: ignore[attr-defined]


async def test_arguments_sent_as_an_object_are_read_as_their_json() -> None:
    with FaultServer(["wrong_type_args"], responder=counting_responder(1)) as server:
        response = await _complete(server)
    (call,) = response.message.tool_calls  # type: ignore[attr-defined]
    assert json.loads(call.arguments) == {"i": "#0"}  # the schema check is the runtime's


async def test_a_cut_answer_carries_what_was_written() -> None:
    def cut(body: dict[str, object]) -> dict[str, object]:
        return {"role": "assistant", "content": "Once upon a time", "finish_reason": "length"}

    with FaultServer(responder=cut) as server:
        with pytest.raises(TruncatedResponseError) as caught:
            await _complete(server)
    assert isinstance(caught.value, ModelBehaviorError)
    assert caught.value.response.message.content == "Once upon a time"
    assert caught.value.response.usage.output_tokens == 7


async def test_compatible_servers_get_a_default_max_tokens_that_can_be_overridden() -> None:
    with FaultServer(responder=counting_responder(0)) as server:
        await _complete(server)
        await _complete(server, max_tokens=100)
        await _complete(server, ASK.model_copy(
            update={"settings": ModelSettings(max_tokens=7)}), max_tokens=100)
        sent = [r.body.get("max_tokens") for r in server.received]
    assert sent == [DEFAULT_COMPATIBLE_MAX_TOKENS, 100, 7]
    openai = OpenAIModel("gpt-4.1-mini", api_key="sk-test", base_url=server.base_url)
    assert openai.max_tokens is None  # reasoning models need the room


@pytest.mark.parametrize(("fault", "expected"), [
    (Fault(kind="not_json"), TransientModelError),
    (Fault(kind="truncated_json"), TransientModelError),
    (Fault(kind="html_200"), TransientModelError),
    (Fault(kind="html_502"), TransientModelError),
    (Fault(kind="huge", declare_length=False), ModelBehaviorError),
    (Fault(kind="trickle", interval_s=0.2), TransientModelError),
])
async def test_the_anthropic_provider_classifies_gateway_faults_too(
    fault: Fault, expected: type
) -> None:
    with FaultServer([fault]) as server:
        model = AnthropicModel("claude-x", api_key="sk-ant-test",
                               base_url=f"http://127.0.0.1:{server.port}",
                               timeout_s=0.5 if fault.kind == "trickle" else 60.0)
        async with model:
            with pytest.raises(ModelError) as caught:
                await asyncio.wait_for(model.complete(ASK), 60)
    assert type(caught.value) is expected, repr(caught.value)
    assert "<" not in caught.value.message and caught.value.provider == "anthropic"
