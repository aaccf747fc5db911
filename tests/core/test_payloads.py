"""Typed payloads: one model per event type, built and parsed without changing a byte."""

from __future__ import annotations

import dataclasses
import json

import pytest

from tether.core import (
    PAYLOADS,
    Event,
    EventType,
    Message,
    ModelResponsePayload,
    Payload,
    RetryPayload,
    RunStartedPayload,
    StoreCorruptError,
    ToolIntentPayload,
    ToolResultPayload,
    message_of,
    parse_payload,
    payload_of,
)

HOSTILE = "\u202e\x00\"'\\<script>{}\ud800 $sealed 𝔘"


def _event(kind: str, payload: dict[str, object], seq: int = 1) -> Event:
    return Event(run_id="r", seq=seq, type=kind, step=1, ts=1.0, payload=payload)


def test_every_event_type_has_one_model() -> None:
    assert set(PAYLOADS) == {str(t) for t in EventType}
    for kind, model in PAYLOADS.items():
        assert model.event_type == kind
        assert model.model_config.get("frozen") is True


def test_a_writer_gets_exactly_the_dict_it_gave() -> None:
    built = ToolResultPayload(call_id="c1", tool="t", content="ok", cost_usd=0)
    assert json.dumps(built.dump()) == '{"call_id": "c1", "tool": "t", "content": "ok", ' \
                                       '"cost_usd": 0}'  # an int stays an int
    retry = RetryPayload(target="model", model_key="k", attempt=2, delay_s=2, error={})
    assert json.dumps(retry.dump()) == json.dumps(
        {"target": "model", "model_key": "k", "attempt": 2, "error": {}, "delay_s": 2})
    # Declared fields in the declared order (the writers'), whatever order given.
    assert list(ToolResultPayload(content="x", tool="t", call_id="c").dump()) == [
        "call_id", "tool", "content"]
    with pytest.raises(Exception, match="frozen"):
        built.content = "changed"  # type: ignore[misc]


def test_unknown_and_sealed_fields_survive_a_round_trip() -> None:
    payload = {"$sealed": {"v": 1, "kid": "k", "data": "AAAA"}, "call_id": HOSTILE,
               "tool": "t", "newer_field": [1, {"x": None}], "content": HOSTILE}
    data = parse_payload(EventType.TOOL_RESULT, payload)
    assert isinstance(data, ToolResultPayload)
    assert data.call_id == HOSTILE
    assert data.extra("$sealed") == payload["$sealed"]
    assert data.dump() == payload  # nothing lost
    assert list(data.dump()) == ["call_id", "tool", "content", "$sealed", "newer_field"]


def test_an_unknown_event_type_keeps_everything() -> None:
    payload = {"b": 1, "a": [HOSTILE], "c": {"d": 2.5}}
    data = parse_payload("plugin.thing", payload)
    assert type(data) is Payload
    assert json.dumps(data.dump()) == json.dumps(payload)


@pytest.mark.parametrize(("kind", "payload", "field"), [
    (EventType.TOOL_INTENT, {"call_id": "c"}, "tool"),
    (EventType.RUN_STARTED, {"agent": "a"}, "task"),
    (EventType.MODEL_RESPONSE, {"message": "not an object"}, "message"),
    (EventType.RETRY, {"target": "model", "attempt": "many"}, "attempt"),
])
def test_a_payload_of_the_wrong_shape_is_a_typed_error(
    kind: str, payload: dict[str, object], field: str,
) -> None:
    with pytest.raises(StoreCorruptError, match=field) as raised:
        _ = _event(kind, payload).data
    assert raised.value.hint and "journal.md" in raised.value.hint


def test_event_data_is_parsed_once_and_follows_the_payload() -> None:
    event = _event(EventType.TOOL_INTENT, {"call_id": "c", "tool": "t", "arguments": {"a": 1},
                                           "idempotency_key": "k", "index": 0})
    first = event.data
    assert event.data is first
    assert payload_of(event, ToolIntentPayload).arguments == {"a": 1}
    with pytest.raises(TypeError, match="not a ToolResultPayload"):
        payload_of(event, ToolResultPayload)
    changed = dataclasses.replace(event, payload={**event.payload, "tool": "u"})
    assert payload_of(changed, ToolIntentPayload).tool == "u"  # not the old parse
    assert changed != event
    assert dataclasses.replace(event) == event  # the cache is not part of equality


def test_message_of_reads_through_the_models() -> None:
    response = _event(EventType.MODEL_RESPONSE, {
        "message": {"role": "assistant", "content": HOSTILE}, "usage": {"input_tokens": 3}})
    assert message_of(response) == Message.assistant(HOSTILE)
    data = payload_of(response, ModelResponsePayload)
    assert data.usage_model.input_tokens == 3
    result = _event(EventType.TOOL_RESULT, {"call_id": "c", "tool": "t", "content": "x"})
    assert message_of(result) == Message(role="tool", content="x", tool_call_id="c", name="t")
    assert message_of(_event(EventType.DECISION, {"decision": "model"})) is None
    assert message_of(_event(EventType.RETRY, {"target": "tool"})) is None


def test_run_started_reads_old_and_new_journals() -> None:
    old = RunStartedPayload.model_validate({"agent": "a", "task": "t"})
    assert (old.format, old.tool_names) == (None, [])
    new = RunStartedPayload(agent="a", task="t", tools=[{"name": "x"}], format=1)
    assert (new.format, new.tool_names) == (1, ["x"])
