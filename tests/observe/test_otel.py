"""OpenTelemetry GenAI export, received by a real OTLP/HTTP endpoint on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tether.cli import app
from tether.core import RunStatus, ToolCall
from tether.models import FunctionModel, ModelRequest
from tether.observe import (
    GENAI_SEMCONV_VERSION,
    SCHEMA_URL,
    OtelObserver,
    export_otlp_spans,
    otlp_json,
    send_otlp,
    span_id_for,
    trace_id_for,
)
from tether.runtime import Agent, Runner
from tether.store import SQLiteStore
from tether.tools import tool

from .conftest import Journal, OtlpReceiver, attributes

INTERNAL, CLIENT = 1, 3


@tool
def lookup(i: int) -> str:
    """Look a record up."""
    return f"record {i:04d}"


@tool
def fail(x: int) -> str:
    """Always fails."""
    raise ValueError(f"cannot do {x}")


def _script(request: ModelRequest) -> Any:
    if request.step == 1:
        return [ToolCall.of("lookup", i=1), ToolCall.of("fail", x=2)]
    if request.step == 2:
        return ToolCall.of("lookup", i=2)
    return "record 0001 and record 0002"


def _agent() -> Agent:
    return Agent(name="otel-agent", instructions="Be exact.",
                 model=FunctionModel(_script, model_name="m-1"), tools=[lookup, fail])


def _by_name(spans: list[Any]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for _, _, span in spans:
        found.setdefault(span.name, []).append(span)
    return found


def _check_conventions(received: list[Any], run_id: str) -> None:
    names = _by_name(received)
    assert sorted((n, len(s)) for n, s in names.items()) == [
        ("chat m-1", 3), ("execute_tool fail", 1), ("execute_tool lookup", 2),
        ("invoke_agent otel-agent", 1), ("step 1", 1), ("step 2", 1), ("step 3", 1)]
    (root,) = names["invoke_agent otel-agent"]
    assert root.parent_span_id == b"" and root.kind == INTERNAL
    assert root.trace_id == trace_id_for(run_id)
    assert root.span_id == span_id_for(run_id, "run")
    a = attributes(root)
    assert a["gen_ai.operation.name"] == "invoke_agent"
    assert a["gen_ai.agent.name"] == "otel-agent"
    assert a["gen_ai.conversation.id"] == run_id
    assert a["gen_ai.provider.name"] == "scripted"
    assert a["gen_ai.request.model"] == "m-1"
    assert a["tether.run.status"] == "completed"
    assert a["openinference.span.kind"] == "AGENT"
    steps = {}
    for k in (1, 2, 3):
        (step,) = names[f"step {k}"]
        assert (step.kind, step.parent_span_id) == (INTERNAL, root.span_id)
        assert step.span_id == span_id_for(run_id, f"s{k}")
        assert attributes(step)["openinference.span.kind"] == "CHAIN"
        assert root.start_time_unix_nano <= step.start_time_unix_nano
        assert step.end_time_unix_nano <= root.end_time_unix_nano
        steps[step.span_id] = step
    assert attributes(names["step 1"][0])["tether.step"] == 1
    for span in names["chat m-1"]:
        assert (span.kind, span.trace_id) == (CLIENT, root.trace_id)
        a = attributes(span)
        step = steps[span.parent_span_id]  # under its step, inside its time
        assert attributes(step)["tether.step"] == a["tether.step"]
        assert step.start_time_unix_nano <= span.start_time_unix_nano
        assert span.end_time_unix_nano <= step.end_time_unix_nano
        assert a["openinference.span.kind"] == "LLM" and a["llm.model_name"] == "m-1"
        assert a["llm.token_count.total"] == (a["gen_ai.usage.input_tokens"]
                                              + a["gen_ai.usage.output_tokens"])
        assert "input.value" not in a and "llm.input_messages.0.message.role" not in a
        assert a["gen_ai.operation.name"] == "chat"
        assert a["gen_ai.provider.name"] == "scripted"
        assert a["gen_ai.request.model"] == "m-1"
        assert a["gen_ai.response.model"] == "m-1"  # what the response said
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["gen_ai.conversation.id"] == run_id
        assert span.start_time_unix_nano <= span.end_time_unix_nano
        assert "gen_ai.input.messages" not in a  # content is opt-in
    for name in ("execute_tool lookup", "execute_tool fail"):
        for span in names[name]:
            a = attributes(span)
            assert span.kind == INTERNAL
            assert span.parent_span_id == span_id_for(run_id, f"s{a['tether.step']}")
            assert a["openinference.span.kind"] == "TOOL" and a["tool.name"] == a[
                "gen_ai.tool.name"]
            assert "input.value" not in a and "output.value" not in a
            assert a["gen_ai.operation.name"] == "execute_tool"
            assert a["gen_ai.tool.name"] == name.split()[1]
            assert a["gen_ai.tool.call.id"].startswith("call_")
            assert a["gen_ai.tool.type"] == "function"
            assert "gen_ai.tool.call.arguments" not in a
    (failed,) = names["execute_tool fail"]
    assert attributes(failed)["error.type"] == "ValueError"
    assert failed.status.code == 2  # STATUS_CODE_ERROR
    for resource, scope, _ in received:
        assert scope.schema_url == SCHEMA_URL and scope.scope.name == "tether"
        assert any(kv.key == "service.name" for kv in resource.attributes)


def test_export_after_the_fact_to_an_otlp_endpoint(
    tmp_path: Path, otlp_receiver: OtlpReceiver
) -> None:
    db = tmp_path / "t.db"
    store = SQLiteStore(db)
    result = Runner(store).run_sync(_agent(), "look up two records")
    asyncio.run(store.close())
    assert result.status == RunStatus.COMPLETED
    cli = CliRunner()
    out = cli.invoke(app, ["export", result.run_id, "--format", "otlp", "--db", str(db)])
    assert out.exit_code == 0, out.output
    assert "sent 10 spans" in out.output
    assert otlp_receiver.paths == ["/v1/traces"]
    first = otlp_receiver.spans()
    _check_conventions(first, result.run_id)
    # Re-exporting gives the same ids.
    assert cli.invoke(app, ["export", result.run_id, "-f", "otlp", "--db", str(db)]).exit_code == 0
    again = otlp_receiver.spans()[len(first):]
    assert sorted((s.span_id, s.parent_span_id, s.name) for _, _, s in again) == sorted(
        (s.span_id, s.parent_span_id, s.name) for _, _, s in first)
    # Message content only when asked for, in the conventions' JSON shape.
    assert cli.invoke(app, ["export", result.run_id, "-f", "otlp", "--content",
                            "--db", str(db)]).exit_code == 0
    with_content = _by_name(otlp_receiver.spans()[2 * len(first):])
    chat = attributes(with_content["chat m-1"][-1])
    messages = json.loads(chat["gen_ai.input.messages"])
    assert messages[0] == {"role": "user", "parts": [{"type": "text",
                                                      "content": "look up two records"}]}
    assert json.loads(chat["gen_ai.system_instructions"]) == [{"type": "text",
                                                                "content": "Be exact."}]
    # The last request's head (task) and what it adds: step 2's call and its result;
    # the three messages in between are counted, not repeated.
    assert chat["tether.prompt.omitted_messages"] == 3 and chat["tether.prompt.messages"] == 7
    assert messages[1]["parts"][0]["type"] == "tool_call"
    call = messages[1]["parts"][0]
    assert (call["name"], call["arguments"]) == ("lookup", {"i": 2})
    assert messages[2]["parts"][0] == {"type": "tool_call_response", "id": call["id"],
                                       "response": "record 0002"}
    assert len(messages) == 3
    # OpenInference: the same messages flattened, input.value and output.value.
    assert chat["openinference.span.kind"] == "LLM"
    assert chat["llm.input_messages.0.message.role"] == "system"
    assert chat["llm.input_messages.1.message.content"] == "look up two records"
    assert chat["llm.input_messages.2.message.tool_calls.0.tool_call.function.name"] == "lookup"
    assert chat["llm.input_messages.3.message.content"] == "record 0002"
    assert json.loads(chat["input.value"])["messages"][1]["content"] == "look up two records"
    assert chat["input.mime_type"] == "application/json"
    assert chat["output.value"] == "record 0001 and record 0002"
    assert chat["llm.output_messages.0.message.content"] == "record 0001 and record 0002"
    first_chat = attributes(with_content["chat m-1"][0])
    assert "tether.prompt.omitted_messages" not in first_chat
    assert json.loads(first_chat["output.value"])["tool_calls"][0]["name"] == "lookup"
    output = json.loads(chat["gen_ai.output.messages"])
    assert output[0]["parts"][0]["content"] == "record 0001 and record 0002"
    tool_attrs = attributes(with_content["execute_tool lookup"][0])
    assert json.loads(tool_attrs["gen_ai.tool.call.arguments"]) == {"i": 1}
    assert tool_attrs["gen_ai.tool.call.result"] == "record 0001"
    assert json.loads(tool_attrs["input.value"]) == {"i": 1}
    assert tool_attrs["output.value"] == "record 0001"
    run_attrs = attributes(with_content["invoke_agent otel-agent"][0])
    assert (run_attrs["input.value"], run_attrs["output.value"]) == (
        "look up two records", "record 0001 and record 0002")


async def test_live_observer_exports_the_same_spans(
    store: SQLiteStore, otlp_receiver: OtlpReceiver
) -> None:
    observer = OtelObserver()
    result = await Runner(store, observers=[observer]).run(_agent(), "look up two records")
    observer.shutdown()
    live = otlp_receiver.spans()
    _check_conventions(live, result.run_id)
    after = await export_otlp_spans(store, result.run_id)
    assert send_otlp(after) == 10
    exported = otlp_receiver.spans()[len(live):]

    def key(span: Any) -> tuple[Any, ...]:
        return (span.trace_id, span.span_id, span.parent_span_id, span.name, span.kind,
                span.start_time_unix_nano, span.end_time_unix_nano,
                sorted(attributes(span).items()))

    assert sorted(key(s) for _, _, s in live) == sorted(key(s) for _, _, s in exported)


async def test_sub_runs_share_the_trace_under_the_tool_that_started_them(
    store: SQLiteStore, otlp_receiver: OtlpReceiver
) -> None:
    parent = Journal("run_parent").started("planner", tools=["delegate"])
    parent.model(1, calls=[("delegate", {"task": "research"})])
    parent.add("subrun.started", 1, {"child_run_id": "run_child"}, span="s1.t0")
    child = Journal("run_child", t0=parent.ts).started("worker", parent="run_parent")
    child.model(1, answer="found it")
    parent.ts = child.ts
    parent.result(1, 0, "delegate", "found it")
    parent.model(2, answer="done")
    await parent.save(store)
    await child.save(store)

    spans = await export_otlp_spans(store, "run_parent")
    by_name = {s.name: s for s in spans}
    worker = by_name["invoke_agent worker"]
    assert worker.trace_id == by_name["invoke_agent planner"].trace_id == trace_id_for(
        "run_parent")
    assert worker.parent_span_id == span_id_for("run_parent", "s1.t0")
    assert by_name["execute_tool delegate"].span_id == worker.parent_span_id
    # A sub-run exported alone lands in the same trace, under the same parent.
    alone = await export_otlp_spans(store, "run_child")
    assert {(s.trace_id, s.parent_span_id) for s in alone if s.name.startswith("invoke")} == {
        (worker.trace_id, worker.parent_span_id)}
    # Live: the observer sees the parent's and the child's batches as they commit.
    observer = OtelObserver()
    events = parent.events
    split = next(i for i, e in enumerate(events) if e.type == "subrun.started") + 1
    observer(events[:split])
    observer(child.events)
    observer(events[split:])
    observer.shutdown()
    live = {s.name: s for _, _, s in otlp_receiver.spans()}
    assert live["invoke_agent worker"].parent_span_id == worker.parent_span_id
    assert live["invoke_agent worker"].trace_id == worker.trace_id
    # And OTLP/JSON carries the same ids, hex-encoded.
    document = otlp_json(spans)
    encoded = document["resourceSpans"][0]["scopeSpans"][0]["spans"]
    assert {s["spanId"] for s in encoded} == {s.span_id.hex() for s in spans}
    assert document["resourceSpans"][0]["scopeSpans"][0]["schemaUrl"].endswith(
        GENAI_SEMCONV_VERSION)


def test_an_unreachable_collector_is_reported() -> None:
    from tether.core import TetherError
    from tether.observe import build_spans, otlp_spans

    assert send_otlp([], endpoint="http://127.0.0.1:9/v1/traces") == 0  # nothing to send
    journal = Journal("run_x").started()
    journal.model(1, answer="hi")
    records = otlp_spans(build_spans(journal.events))
    with pytest.raises(TetherError, match="OTLP export"):
        send_otlp(records, endpoint="http://127.0.0.1:9/v1/traces", timeout_s=0.5)


def test_missing_sdk_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from tether.core import ConfigurationError

    monkeypatch.setitem(sys.modules, "opentelemetry.sdk.trace.export", None)
    with pytest.raises(ConfigurationError, match=r'pip install "tether\[otel\]"'):
        OtelObserver()
    journal = Journal("run_x").started()
    journal.model(1, answer="hi")
    from tether.observe import build_spans, otlp_spans

    # OTLP/JSON needs no SDK.
    assert otlp_json(otlp_spans(build_spans(journal.events)))["resourceSpans"]


async def test_live_and_after_the_fact_agree_on_every_kind_of_run(
    store: SQLiteStore, otlp_receiver: OtlpReceiver
) -> None:
    """Retries, fallbacks, compaction, breakers, calls in doubt, resumes, quarantine;
    message content included."""
    from .test_jsonl_log import _every_kind_of_run

    observer = OtelObserver(include_content=True)
    run_ids = await _every_kind_of_run(Runner(store, observers=[observer]))
    observer.shutdown()
    live: dict[bytes, Any] = {}
    for _, _, span in otlp_receiver.spans():  # a span exported twice: the last one counts
        live[span.span_id] = span
    received = len(otlp_receiver.bodies)
    after: dict[bytes, Any] = {}
    for run_id in run_ids:
        assert send_otlp(await export_otlp_spans(store, run_id, include_content=True)) > 0
    for body_index in range(received, len(otlp_receiver.bodies)):
        receiver = OtlpReceiver(url="", bodies=[otlp_receiver.bodies[body_index]])
        for _, _, span in receiver.spans():
            after[span.span_id] = span

    def key(span: Any) -> tuple[Any, ...]:
        events = [(e.name, e.time_unix_nano, sorted(attributes(e).items())) for e in span.events]
        return (span.trace_id, span.parent_span_id, span.name, span.kind,
                span.start_time_unix_nano, span.end_time_unix_nano, span.status.code,
                sorted(attributes(span).items()), events)

    assert set(live) == set(after)
    for span_id, span in after.items():
        assert key(live[span_id]) == key(span), span.name
    names = {s.name for s in after.values()}
    assert {"chat backup", "execute_tool search", "execute_tool charge"} <= names
    (search,) = [s for s in after.values() if s.name == "execute_tool search"]
    assert attributes(search)["tether.tool.ran"] == "backup_search"  # the tool fallback
    (nope,) = [s for s in after.values() if s.name == "execute_tool nope"]
    assert attributes(nope)["gen_ai.tool.call.arguments"] == "{}"
