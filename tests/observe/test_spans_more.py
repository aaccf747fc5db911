"""Failed model calls (``model.error``), what a request offered, the span tree and the
OpenInference attributes on the decoded OTLP payload, findings on live spans, and a
live exporter that forgets ended runs."""

from __future__ import annotations

import json
from typing import Any

from tether.core import Event, EventType, RunStatus, ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.observe import (
    OtelObserver,
    build_spans,
    describe,
    export_otlp_spans,
    finding_payloads,
    otlp_spans,
    send_otlp,
    span_id_for,
)
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .conftest import Journal, OtlpReceiver, attributes

CONSTRAINT = {"grammar": "tool_call", "reason": "local model: tool calls by grammar"}


def _failing_then_fallback() -> Journal:
    """Step 1: the primary model fails (after 3 attempts); the fallback answers with a
    call; step 2: the primary fails and the run fails."""
    j = Journal("run_err").started(tools=["lookup"])
    system = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "task"}]
    j.add(EventType.MODEL_REQUEST, 1, {"provider": "openai", "model": "gpt-x", "prefix": 0,
                                       "new": system, "tools": ["lookup"],
                                       "constraint": CONSTRAINT}, span="s1.m")
    j.add("model.error", 1, {"provider": "openai", "model": "gpt-x", "error": {
        "type": "RateLimitError", "message": "slow down [bold]now[/bold]"},
        "error_class": "rate_limit", "attempts": 3, "output": "half an answer :x:"},
        span="s1.m", duration_ms=40.0)
    j.add(EventType.FALLBACK, 1, {"from_model": "openai:gpt-x", "to_model": "local:small",
                                  "reason": "rate_limited"})
    j.add(EventType.MODEL_REQUEST, 1, {"provider": "local", "model": "small", "prefix": 2,
                                       "new": []}, span="s1.m")
    j.add(EventType.MODEL_RESPONSE, 1, {
        "message": {"role": "assistant", "tool_calls": [
            {"id": "c1", "name": "lookup", "arguments": "{\"i\": 1}"}]},
        "usage": {"input_tokens": 20, "output_tokens": 5}, "provider": "local",
        "model": "small"}, span="s1.m", duration_ms=10.0)
    j.add(EventType.TOOL_INTENT, 1, {"call_id": "c1", "tool": "lookup", "arguments": {"i": 1},
                                     "idempotency_key": "k1", "index": 0,
                                     "idempotent": True}, span="s1.t0")
    j.add(EventType.TOOL_RESULT, 1, {"call_id": "c1", "tool": "lookup", "content": "one"},
          span="s1.t0", duration_ms=1.0)
    j.add(EventType.MODEL_REQUEST, 2, {"provider": "openai", "model": "gpt-x", "prefix": 2,
                                       "new": [{"event": 6}, {"event": 8}]}, span="s2.m")
    j.add("model.error", 2, {"provider": "openai", "model": "gpt-x", "error": {
        "type": "TransientModelError", "message": "upstream 503"},
        "error_class": "transient", "attempts": 2}, span="s2.m", duration_ms=30.0)
    j.add(EventType.RUN_FAILED, 2, {"reason": "model_error", "error": {
        "type": "TransientModelError", "message": "upstream 503"}})
    return j


def test_failed_model_calls_in_the_span_tree_and_show() -> None:
    events = _failing_then_fallback().events
    root = build_spans(events)
    step1, step2 = root.children
    failed, answered, tool_span = step1.children
    assert (failed.span_id, failed.status, failed.name) == ("s1.m", "error", "chat gpt-x")
    assert failed.attrs["error"]["type"] == "RateLimitError" and failed.attrs["attempts"] == 3
    assert failed.attrs["offered"] == ["lookup"] and failed.attrs["constraint"] == CONSTRAINT
    assert (answered.span_id, answered.status, answered.name) == ("s1.m~2", "ok", "chat small")
    assert tool_span.status == "ok"
    assert [e.type for e in failed.events] == ["model.request", "model.error"]
    # The fallback opens the next call of the step, the one it moved to.
    assert [e.type for e in answered.events] == ["fallback", "model.request", "model.response"]
    (chat2,) = step2.children
    assert chat2.status == "error" and step2.status == "error"
    assert root.status == "failed"
    line = describe(events[2])
    assert line.startswith("openai:gpt-x failed: RateLimitError: slow down [bold]now[/bold]")
    assert "rate_limit, 3 attempt(s)" in line and "rejected: half an answer :x:" in line
    request = describe(events[1])
    assert "tools: lookup" in request and "constraint: " in request and "tool_call" in request


def test_failed_model_calls_in_the_trace_view() -> None:
    from tether.cli._observe_render import render_trace

    text = "\n".join(t.plain for t in render_trace(build_spans(_failing_then_fallback().events),
                                                   full=True))
    assert "✗ chat gpt-x" in text
    assert "RateLimitError: slow down [bold]now[/bold] (after 3 attempt(s))" in text
    assert "offered: lookup" in text and 'constrained: {"grammar": "tool_call"' in text
    assert "rejected output: half an answer :x:" in text
    assert "✓ chat small" in text and "TransientModelError: upstream 503" in text


def test_failed_model_calls_over_otlp(otlp_receiver: OtlpReceiver) -> None:
    events = _failing_then_fallback().events
    records = otlp_spans(build_spans(events), include_content=True)
    assert send_otlp(records) == len(records)
    spans = {}
    for _, _, s in otlp_receiver.spans():
        mark = " ✗" if s.status.code == 2 else ""
        spans[f"{s.name}{mark} {attributes(s).get('tether.step', '')}"] = s
    failed = spans["chat gpt-x ✗ 1"]
    a = attributes(failed)
    assert failed.parent_span_id == span_id_for("run_err", "s1")
    assert failed.status.message == "slow down [bold]now[/bold]"
    assert a["error.type"] == "RateLimitError"
    assert (a["tether.error_class"], a["tether.attempts"]) == ("rate_limit", 3)
    assert a["tether.rejected_output"] == "half an answer :x:"
    assert a["tether.request.tools"] == ["lookup"]
    assert json.loads(a["tether.request.constraint"]) == CONSTRAINT
    assert a["openinference.span.kind"] == "LLM"
    assert json.loads(a["gen_ai.input.messages"])[0]["parts"][0]["content"] == "task"
    assert a["llm.input_messages.1.message.content"] == "task"
    assert "output.value" not in a and "gen_ai.usage.input_tokens" not in a
    assert list(failed.events) == []
    retried = spans["chat small 1"]
    assert [e.name for e in retried.events] == ["tether.fallback"]
    assert retried.span_id == span_id_for("run_err", "s1.m~2")
    assert attributes(retried)["tether.prompt.messages"] == 2
    second = spans["chat gpt-x ✗ 2"]
    a2 = attributes(second)
    # Step 2's prompt: the head, then what the request adds (the answer and the result).
    assert [m["role"] for m in json.loads(a2["gen_ai.input.messages"])] == [
        "user", "assistant", "tool"]
    assert spans["step 2 ✗ 2"].status.code == 2
    # The live observer, fed the same batches, exports the same spans.
    sent = len(otlp_receiver.spans())
    observer = OtelObserver(include_content=True)
    for batch in (events[:3], events[3:7], events[7:8], events[8:]):
        observer(batch)
    observer.shutdown()
    live = {s.span_id: s for _, _, s in otlp_receiver.spans()[sent:]}
    assert set(live) == {r.span_id for r in records}
    for record in records:
        got = live[record.span_id]
        assert (got.name, got.parent_span_id, got.status.code, got.start_time_unix_nano,
                got.end_time_unix_nano) == (record.name, record.parent_span_id or b"",
                                            record.status_code, record.start_ns, record.end_ns)
        assert attributes(got) == {k: v for k, v in record.attributes.items()}, record.name


@tool
def same(i: int) -> str:
    """Always the same."""
    return "the same thing"


def _repeating(request: ModelRequest) -> Any:
    return ToolCall.of("same", i=1) if request.step <= 3 else "the same thing"


async def test_live_findings_and_no_state_after_the_end(
    store: SQLiteStore, otlp_receiver: OtlpReceiver
) -> None:
    observer = OtelObserver(include_content=True)
    agent = Agent(name="rep", model=FunctionModel(_repeating), tools=[same])
    runner = Runner(store, observers=[observer], reviewers=[finding_payloads])
    results = [await runner.run(agent, "go") for _ in range(3)]
    assert all(r.status == RunStatus.COMPLETED for r in results)
    assert observer.runs_tracked == 0  # findings after the end create no state
    observer.shutdown()
    live: dict[bytes, Any] = {}
    for _, _, span in otlp_receiver.spans():
        live[span.span_id] = span
    for result in results:
        doctor = live[span_id_for(result.run_id, "doctor")]
        assert doctor.parent_span_id == span_id_for(result.run_id, "run")
        kinds = sorted(attributes(e)["tether.finding.kind"] for e in doctor.events)
        assert kinds == ["no_progress", "repeated_call"]
        after = {s.span_id: s for s in await export_otlp_spans(
            store, result.run_id, include_content=True)}
        assert set(after) <= set(live)
        mine = after[doctor.span_id]
        assert [e.attributes["tether.finding.kind"] for e in mine.events] == [
            attributes(e)["tether.finding.kind"] for e in doctor.events]
        assert [e.time_ns for e in mine.events] == [e.time_unix_nano for e in doctor.events]


def test_findings_of_a_run_the_observer_never_saw() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    observer = OtelObserver(processor=SimpleSpanProcessor(exporter))
    finding = Event(run_id="run_elsewhere", seq=9, type=EventType.FINDING, step=2, ts=1.0,
                    payload={"kind": "cycle", "steps": [1, 2], "message": "m",
                             "how_to_look": "h"})
    for _ in range(3):
        observer([finding])
    assert observer.runs_tracked == 0
    (span, *_) = exporter.get_finished_spans()
    assert span.name == "doctor" and span.events[0].attributes["tether.finding.kind"] == "cycle"


def test_streamed_otlp_json_is_the_same_document() -> None:
    from tether.observe import otlp_json, otlp_json_chunks

    records = otlp_spans(build_spans(_failing_then_fallback().events), include_content=True)
    chunks = list(otlp_json_chunks(records))
    assert len(chunks) == len(records) + 2 and chunks[-1].endswith("\n")
    assert json.loads("".join(chunks)) == otlp_json(records)
    assert json.loads("".join(otlp_json_chunks([]))) == otlp_json([])
