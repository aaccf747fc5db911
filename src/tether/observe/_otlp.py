"""Runs as OpenTelemetry spans, following the GenAI semantic conventions.

Pure mapping, no OpenTelemetry SDK needed: :func:`otlp_spans` turns a span tree into
:class:`OtlpSpan` records, and :func:`otlp_json` encodes them as an OTLP/JSON
``ExportTraceServiceRequest``. The SDK paths (sending OTLP/protobuf, the live
observer) are in ``_otel.py`` and replay these same records.

Conventions implemented: GenAI semantic conventions v1.38.0
(:data:`GENAI_SEMCONV_VERSION`):

- the run: ``invoke_agent {agent}``, kind INTERNAL (the agent runs in this process);
- each step: ``step {k}``, kind INTERNAL, child of the run (the conventions have no
  step span; OpenInference calls it a CHAIN);
- each model call: ``chat {request model}``, kind CLIENT, child of its step; a call
  that ended in failure (``model.error``) has status ERROR;
- each tool call: ``execute_tool {tool}``, kind INTERNAL, child of its step;
- the doctor's findings: ``doctor``, child of the run, one span event per finding.

Retries, fallbacks and breaker changes are span events of the call they belong to.
OpenInference attributes (``openinference.span.kind``, and with content
``input.value``/``output.value`` and ``llm.input_messages.*``) sit beside the GenAI
ones. Sub-runs' ``invoke_agent`` spans are children of the span that
started them, in the same trace. Trace and span ids are derived from run ids and the
journal's span ids (BLAKE2b, 16 and 8 bytes), so exporting a run twice, or live and
afterwards, gives the same ids. Message content (prompts, answers, tool arguments and
results) is included only when asked for. A chat span's input is then the prompt's
head (the messages before the first answer: instructions and task) and what the
request adds to the previous one; ``tether.prompt.omitted_messages`` says how many
earlier messages are left out (``full_prompts=True`` puts whole prompts in, whose
total size grows with the square of the run's length).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any, TypeAlias, cast

from ..core import (
    Event,
    EventType,
    FindingPayload,
    ModelErrorPayload,
    ModelRequestPayload,
    ModelResponsePayload,
    RetryPayload,
)
from . import _openinference as oi
from ._prompts import HOLDERS, message_dict, resolve
from ._spans import Span, kind_of

#: The version of the OpenTelemetry GenAI semantic conventions these spans follow.
GENAI_SEMCONV_VERSION = "1.38.0"
#: Schema URL of that version, set on the instrumentation scope.
SCHEMA_URL = f"https://opentelemetry.io/schemas/{GENAI_SEMCONV_VERSION}"
#: Instrumentation scope name.
SCOPE_NAME = "tether"
#: Environment variable that opts in to message content (the GenAI instrumentations' one).
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"

AttributeValue: TypeAlias = oi.AttributeValue

KIND_INTERNAL = 1
KIND_CLIENT = 3
STATUS_UNSET = 0
STATUS_ERROR = 2

_ERROR_STATUSES = {"failed", "needs_attention", "quarantined"}


def tether_version() -> str:
    """The installed Tether's version (the instrumentation scope's version)."""
    try:
        return version("tether")
    except PackageNotFoundError:
        return "0.0.0"


def capture_content_default() -> bool:
    """Whether message content is exported when not said otherwise (env opt-in)."""
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in ("1", "true", "yes")


def trace_id_for(root_run_id: str) -> bytes:
    """The 16-byte trace id of a top-level run (shared by all its sub-runs)."""
    return _nonzero(hashlib.blake2b(f"tether-trace/{root_run_id}".encode(), digest_size=16))


def span_id_for(run_id: str, span_id: str) -> bytes:
    """The 8-byte OpenTelemetry span id of journal span ``span_id`` of ``run_id``."""
    return _nonzero(hashlib.blake2b(f"{run_id}/{span_id}".encode(), digest_size=8))


def _nonzero(digest: Any) -> bytes:
    data: bytes = digest.digest()
    return data if any(data) else data[:-1] + b"\x01"


@dataclass(frozen=True, slots=True, kw_only=True)
class OtlpEvent:
    """A span event (a retry, a fallback, a decision... at a point in time)."""

    name: str
    time_ns: int
    attributes: dict[str, AttributeValue] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class OtlpSpan:
    """One OpenTelemetry span, ready to encode."""

    trace_id: bytes
    span_id: bytes
    parent_span_id: bytes | None
    name: str
    kind: int
    start_ns: int
    end_ns: int
    attributes: dict[str, AttributeValue]
    status_code: int = STATUS_UNSET
    status_message: str = ""
    events: tuple[OtlpEvent, ...] = ()


# -- message content in the conventions' JSON shape -------------------------------------


def _arguments(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parts(message: Mapping[str, Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if message.get("role") == "tool":
        return [{"type": "tool_call_response", "id": message.get("tool_call_id"),
                 "response": message.get("content") or ""}]
    if message.get("content"):
        parts.append({"type": "text", "content": message["content"]})
    for call in message.get("tool_calls") or []:
        parts.append({"type": "tool_call", "id": call.get("id"), "name": call.get("name"),
                      "arguments": _arguments(call.get("arguments"))})
    return parts


def input_messages(prompt: Sequence[Mapping[str, Any]]) -> tuple[str, str | None]:
    """``gen_ai.input.messages`` and ``gen_ai.system_instructions`` (JSON) of a prompt."""
    system = [{"type": "text", "content": m.get("content") or ""}
              for m in prompt if m.get("role") == "system"]
    chat = [{"role": m.get("role"), "parts": _parts(m)} for m in prompt
            if m.get("role") != "system"]
    return _json(chat), (_json(system) if system else None)


def output_messages(message: Mapping[str, Any], finish_reason: str | None) -> str:
    """``gen_ai.output.messages`` (JSON) of one assistant message."""
    return _json([{"role": "assistant", "parts": _parts(message),
                   "finish_reason": finish_reason or "stop"}])


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- spans ------------------------------------------------------------------------------


def _ns(seconds: float) -> int:
    return int(round(seconds * 1e9))


def _flatten(prefix: str, value: Any, out: dict[str, AttributeValue], depth: int = 0) -> None:
    if isinstance(value, bool | int | float | str):
        out[prefix] = value
    elif isinstance(value, dict) and depth < 3:
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out, depth + 1)
    elif isinstance(value, list) and all(isinstance(v, str) for v in value):
        out[prefix] = list(value)
    elif value is not None:
        out[prefix] = _json(value)


def span_event(event: Event) -> OtlpEvent:
    """A journal event (retry, fallback, breaker, budget, decision...) as a span event."""
    attributes: dict[str, AttributeValue] = {}
    _flatten("", event.payload, attributes)
    attributes = {k if k.startswith("error.") else f"tether.{k}": v
                  for k, v in attributes.items()}
    attributes["tether.seq"] = event.seq
    return OtlpEvent(name=f"tether.{event.type}", time_ns=_ns(event.ts), attributes=attributes)


#: Event types that become span events on the span they belong to.
SPAN_EVENTS = frozenset({
    EventType.RETRY, EventType.FALLBACK, EventType.BREAKER, EventType.BUDGET,
    EventType.DECISION, EventType.CONTEXT_BUILT, EventType.MEMORY_WRITE,
    EventType.MEMORY_RECALL, EventType.MEMORY_WORKING, EventType.SUBRUN_STARTED,
    EventType.SUBRUN_COMPLETED,
    EventType.RUN_RESUMED, EventType.RUN_PAUSED,
})


def _events(events: Sequence[Event]) -> tuple[OtlpEvent, ...]:
    return tuple(span_event(e) for e in events if e.type in SPAN_EVENTS)


@dataclass(slots=True, kw_only=True)
class RunContext:
    """What every span of one run needs: ids, the agent, tool descriptions."""

    run_id: str
    trace_id: bytes
    root_span_id: bytes
    parent_span_id: bytes | None
    agent: str = ""
    provider: str = ""
    model: str = ""
    tool_descriptions: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, root: Span, trace_id: bytes, parent_span_id: bytes | None) -> RunContext:
        tools = root.attrs.get("tools") or []
        return cls(
            run_id=root.run_id, trace_id=trace_id,
            root_span_id=span_id_for(root.run_id, "run"), parent_span_id=parent_span_id,
            agent=str(root.attrs.get("agent") or ""),
            provider=str(root.attrs.get("provider") or ""),
            model=str(root.attrs.get("model") or ""),
            tool_descriptions={str(t.get("name")): str(t.get("description") or "")
                               for t in tools if isinstance(t, dict)},
        )

    def step_span_id(self, step: int) -> bytes:
        return span_id_for(self.run_id, f"s{step}") if step > 0 else self.root_span_id


def _error_type(error: Any, default: str = "_OTHER") -> str:
    if isinstance(error, dict) and error.get("type"):
        return str(error["type"])
    return default


# -- prompts: what each chat span carries -----------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class SpanPrompt:
    """The messages a chat span carries, and how many of the prompt's it leaves out."""

    messages: list[dict[str, Any]]
    omitted: int
    total: int


class PromptTracker:
    """Follows one run's ``model.request`` chain, event by event, and gives each
    request's :class:`SpanPrompt`: its head (the messages before the first answer)
    and what it adds to the previous request, or, with ``full``, the whole prompt.
    Feed every event of the run in order; the work is linear in the journal."""

    def __init__(self, *, full: bool = False) -> None:
        self.full = full
        self._held: dict[int, dict[str, Any]] = {}
        self._head: list[dict[str, Any]] = []
        self._head_len: int | None = None
        self._prompt: list[dict[str, Any]] = []
        self._length = 0

    def feed(self, event: Event) -> SpanPrompt | None:
        """Take the next event; for a ``model.request``, return its prompt."""
        if event.type != EventType.MODEL_REQUEST:
            if event.type in HOLDERS:
                message = message_dict(event)
                if message is not None:
                    self._held[event.seq] = message
            return None
        new = resolve(event, self._held)
        request = cast(ModelRequestPayload, event.data)
        prefix = max(0, min(request.prefix, self._length))
        self._length = prefix + len(new)
        if self.full:
            self._prompt = self._prompt[:prefix] + new
            return SpanPrompt(messages=self._prompt, omitted=0, total=self._length)
        if self._head_len is None:
            self._head_len = next((i for i, m in enumerate(new)
                                   if m.get("role") == "assistant"), len(new))
        kept = self._head[: min(self._head_len, prefix)]
        self._head = (kept + new)[: self._head_len]
        return SpanPrompt(messages=kept + new, omitted=prefix - len(kept), total=self._length)


def span_prompts(events: Sequence[Event], *, full: bool = False) -> dict[int, SpanPrompt]:
    """Each ``model.request``'s :class:`SpanPrompt`, by ``seq``."""
    tracker = PromptTracker(full=full)
    found: dict[int, SpanPrompt] = {}
    for e in events:
        prompt = tracker.feed(e)
        if prompt is not None:
            found[e.seq] = prompt
    return found


# -- one span of each kind --------------------------------------------------------------


def run_span(span: Span, ctx: RunContext, *, include_content: bool) -> OtlpSpan:
    """The ``invoke_agent`` span of a run."""
    attrs: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.provider.name": ctx.provider or "_OTHER",
        "gen_ai.agent.name": ctx.agent,
        "gen_ai.conversation.id": ctx.run_id,
        "gen_ai.usage.input_tokens": span.input_tokens,
        "gen_ai.usage.output_tokens": span.output_tokens,
        "tether.run.id": ctx.run_id,
        "tether.run.status": span.status,
        "tether.run.steps": int(span.attrs.get("steps") or 0),
        "tether.cost_usd": span.cost_usd,
        oi.KIND: "AGENT",
        "agent.name": ctx.agent,
    }
    if ctx.model:
        attrs["gen_ai.request.model"] = ctx.model
    if span.attrs.get("parent_run_id"):
        attrs["tether.parent_run_id"] = str(span.attrs["parent_run_id"])
    if span.attrs.get("price_table"):
        attrs["tether.price_table"] = str(span.attrs["price_table"])
    if span.attrs.get("resumed"):
        attrs["tether.run.resumed"] = True
    if include_content:
        if span.attrs.get("instructions"):
            attrs["gen_ai.system_instructions"] = _json(
                [{"type": "text", "content": span.attrs["instructions"]}])
        if span.attrs.get("task") is not None:
            attrs["gen_ai.input.messages"] = _json(
                [{"role": "user", "parts": [{"type": "text", "content": span.attrs["task"]}]}])
        if span.attrs.get("output") is not None:
            attrs["gen_ai.output.messages"] = output_messages(
                {"content": span.attrs["output"]}, "stop")
        oi.io(attrs, input=span.attrs.get("task"), output=span.attrs.get("output"))
    code, message = STATUS_UNSET, ""
    if span.status in _ERROR_STATUSES:
        error = span.attrs.get("error") or {}
        attrs["error.type"] = _error_type(error, span.status)
        code, message = STATUS_ERROR, str(error.get("message") or span.status)
    end = span.end if span.end is not None else span.attrs.get("last_ts", span.start)
    return OtlpSpan(
        trace_id=ctx.trace_id, span_id=ctx.root_span_id, parent_span_id=ctx.parent_span_id,
        name=f"invoke_agent {ctx.agent}" if ctx.agent else "invoke_agent",
        kind=KIND_INTERNAL, start_ns=_ns(span.start), end_ns=_ns(float(end)),
        attributes=attrs, status_code=code, status_message=message,
        events=_events(span.events),
    )


def step_span(span: Span, ctx: RunContext) -> OtlpSpan:
    """The ``step {k}`` span covering one step's model and tool calls."""
    attrs: dict[str, AttributeValue] = {
        "tether.step": span.step,
        "gen_ai.conversation.id": ctx.run_id,
        "gen_ai.usage.input_tokens": span.input_tokens,
        "gen_ai.usage.output_tokens": span.output_tokens,
        oi.KIND: "CHAIN",
    }
    if span.cost_usd:
        attrs["tether.cost_usd"] = span.cost_usd
    code, message = STATUS_UNSET, ""
    if span.status == "error":
        code, message = STATUS_ERROR, "a call of this step failed or is in doubt"
    end = span.end if span.end is not None else span.start
    return OtlpSpan(
        trace_id=ctx.trace_id, span_id=ctx.step_span_id(span.step),
        parent_span_id=ctx.root_span_id, name=f"step {span.step}", kind=KIND_INTERNAL,
        start_ns=_ns(span.start), end_ns=_ns(end), attributes=attrs, status_code=code,
        status_message=message, events=_events(span.events),
    )


def doctor_span(findings: Sequence[Event], ctx: RunContext) -> OtlpSpan:
    """The ``doctor`` span: one span event per ``finding`` event of the run."""
    data = [cast(FindingPayload, e.data) for e in findings]
    kinds = sorted({d.kind for d in data})
    events = []
    for e, d in zip(findings, data, strict=True):
        attributes: dict[str, AttributeValue] = {
            "tether.finding.kind": d.kind,
            "tether.finding.steps": [int(s) for s in d.steps or [] if isinstance(s, int)],
            "tether.finding.message": d.message,
            "tether.finding.how_to_look": str(d.how_to_look or ""),
            "tether.seq": e.seq,
        }
        events.append(OtlpEvent(name="tether.finding", time_ns=_ns(e.ts),
                                attributes=attributes))
    return OtlpSpan(
        trace_id=ctx.trace_id, span_id=span_id_for(ctx.run_id, "doctor"),
        parent_span_id=ctx.root_span_id, name="doctor", kind=KIND_INTERNAL,
        start_ns=_ns(findings[0].ts), end_ns=_ns(findings[-1].ts),
        attributes={"tether.findings": len(findings), "tether.finding.kinds": kinds,
                    "gen_ai.conversation.id": ctx.run_id, oi.KIND: "EVALUATOR"},
        events=tuple(events),
    )


def chat_span(
    span: Span, ctx: RunContext, *, include_content: bool, prompt: SpanPrompt | None = None,
) -> OtlpSpan:
    """The ``chat`` span of one model call (``prompt``: what its request carries)."""
    a = span.attrs
    request_model = str(a.get("request_model") or a.get("response_model") or ctx.model)
    provider = str(a.get("provider") or ctx.provider or "_OTHER")
    attrs: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": request_model,
        "gen_ai.conversation.id": ctx.run_id,
        "tether.step": span.step,
    }
    response = next((d for d in (e.data for e in span.events)
                     if isinstance(d, ModelResponsePayload)), None)
    failure = next((d for d in (e.data for e in span.events)
                    if isinstance(d, ModelErrorPayload)), None)
    oi.llm(attrs, model=request_model, provider=provider, input_tokens=span.input_tokens,
           output_tokens=span.output_tokens, answered=response is not None)
    if a.get("offered") is not None:
        attrs["tether.request.tools"] = [
            str(t.get("name") if isinstance(t, dict) else t) for t in a["offered"]]
    if a.get("constraint") is not None:
        constraint = a["constraint"]
        attrs["tether.request.constraint"] = (constraint if isinstance(constraint, str)
                                              else _json(constraint))
    if response is not None:
        _response_attrs(attrs, span, response)
    if failure is not None:
        for key in ("error_class", "attempts"):
            value = getattr(failure, key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                attrs[f"tether.{key}"] = value
    if include_content:
        _chat_content(attrs, span, response, failure, prompt)
    code, message = STATUS_UNSET, ""
    if span.status == "error":
        if failure is not None:
            error = failure.error
        else:
            retries = [d for d in (e.data for e in span.events) if isinstance(d, RetryPayload)]
            error = retries[-1].error if retries else None
        attrs["error.type"] = _error_type(error)
        code, message = STATUS_ERROR, str((error or {}).get("message") or "model call failed")
    end = span.end if span.end is not None else span.start
    return OtlpSpan(
        trace_id=ctx.trace_id, span_id=span_id_for(ctx.run_id, span.span_id),
        parent_span_id=ctx.step_span_id(span.step), name=f"chat {request_model}",
        kind=KIND_CLIENT, start_ns=_ns(span.start), end_ns=_ns(end), attributes=attrs,
        status_code=code, status_message=message, events=_events(span.events),
    )


def _response_attrs(attrs: dict[str, AttributeValue], span: Span,
                    response: ModelResponsePayload) -> None:
    """What an answered model call adds to its ``chat`` span: usage, the response's
    model, id and finish reason, and its cost when the response carried one."""
    a = span.attrs
    attrs["gen_ai.usage.input_tokens"] = span.input_tokens
    attrs["gen_ai.usage.output_tokens"] = span.output_tokens
    if a.get("response_model"):
        attrs["gen_ai.response.model"] = str(a["response_model"])
    if a.get("response_id"):
        attrs["gen_ai.response.id"] = str(a["response_id"])
    if a.get("finish_reason"):
        attrs["gen_ai.response.finish_reasons"] = [str(a["finish_reason"])]
    if "cost_usd" in response.model_fields_set:
        attrs["tether.cost_usd"] = span.cost_usd


def _chat_content(attrs: dict[str, AttributeValue], span: Span,
                  response: ModelResponsePayload | None, failure: ModelErrorPayload | None,
                  prompt: SpanPrompt | None) -> None:
    """The messages of a ``chat`` span, captured only when content capture is on: the
    prompt, the answer, and the output a failed call rejected."""
    answer = response.message if response is not None else None
    if prompt is not None:
        chat, system = input_messages(prompt.messages)
        attrs["gen_ai.input.messages"] = chat
        if system is not None:
            attrs["gen_ai.system_instructions"] = system
        attrs["tether.prompt.messages"] = prompt.total
        if prompt.omitted:
            attrs["tether.prompt.omitted_messages"] = prompt.omitted
    if answer is not None:
        attrs["gen_ai.output.messages"] = output_messages(answer,
                                                          span.attrs.get("finish_reason"))
    if failure is not None and failure.output is not None:
        attrs["tether.rejected_output"] = str(failure.output)
    oi.llm_content(attrs, prompt=prompt.messages if prompt is not None else None,
                   answer=answer)


def tool_span(span: Span, ctx: RunContext, *, include_content: bool) -> OtlpSpan:
    """The ``execute_tool`` span of one tool call."""
    a = span.attrs
    name = str(a.get("tool") or "")
    attrs: dict[str, AttributeValue] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": name,
        "gen_ai.tool.type": "function",
        "gen_ai.conversation.id": ctx.run_id,
        "tether.step": span.step,
        oi.KIND: "TOOL",
        "tool.name": name,
    }
    if a.get("call_id"):
        attrs["gen_ai.tool.call.id"] = str(a["call_id"])
    if ctx.tool_descriptions.get(name):
        attrs["gen_ai.tool.description"] = ctx.tool_descriptions[name]
        attrs["tool.description"] = ctx.tool_descriptions[name]
    if a.get("idempotency_key"):
        attrs["tether.idempotency_key"] = str(a["idempotency_key"])
    if a.get("ran"):
        attrs["tether.tool.ran"] = str(a["ran"])  # a fallback tool produced the outcome
    if span.cost_usd:
        attrs["tether.cost_usd"] = span.cost_usd
    if include_content:
        if a.get("arguments") is not None:
            attrs["gen_ai.tool.call.arguments"] = _json(a["arguments"])
        if a.get("result") is not None:
            attrs["gen_ai.tool.call.result"] = str(a["result"])
        oi.io(attrs, input=a.get("arguments"), output=a.get("result"))
    code, message = STATUS_UNSET, ""
    if span.status == "error":
        error = a.get("error") or {}
        attrs["error.type"] = _error_type(error)
        code, message = STATUS_ERROR, str(error.get("message") or "tool call failed")
    elif span.status == "in_doubt":
        attrs["error.type"] = "CallInDoubtError"
        code, message = STATUS_ERROR, "the call has an intent and no outcome"
    end = span.end if span.end is not None else span.start
    return OtlpSpan(
        trace_id=ctx.trace_id, span_id=span_id_for(ctx.run_id, span.span_id),
        parent_span_id=ctx.step_span_id(span.step), name=f"execute_tool {name}",
        kind=KIND_INTERNAL, start_ns=_ns(span.start), end_ns=_ns(end), attributes=attrs,
        status_code=code, status_message=message, events=_events(span.events),
    )


def otlp_spans(
    root: Span,
    *,
    trace_id: bytes | None = None,
    include_content: bool = False,
    events: Mapping[str, Sequence[Event]] | None = None,
    parent_span_id: bytes | None = None,
    full_prompts: bool = False,
) -> list[OtlpSpan]:
    """The OpenTelemetry spans of a trace built by :func:`~tether.observe.build_trace`.

    Args:
        root: The root span (a run, with its sub-runs attached).
        trace_id: Defaults to :func:`trace_id_for` the root's run id.
        include_content: Add prompts, answers, tool arguments and results.
        events: Each run's events by run id, to rebuild prompts when
            ``include_content`` is set (defaults to the events held by the spans).
        parent_span_id: The root span's parent (for a sub-run exported alone).
        full_prompts: Put each request's whole prompt in its chat span, rather than
            the prompt's head and what the request adds (output grows with the square
            of the run's length).
    """
    trace = trace_id if trace_id is not None else trace_id_for(root.run_id)
    out: list[OtlpSpan] = []
    _emit(root, trace, parent_span_id, include_content, events or {}, out, full_prompts)
    return out


def _emit(
    root: Span, trace: bytes, parent: bytes | None, include_content: bool,
    events: Mapping[str, Sequence[Event]], out: list[OtlpSpan], full_prompts: bool,
) -> None:
    ctx = RunContext.of(root, trace, parent)
    by_seq: dict[int, SpanPrompt] = {}
    if include_content:
        journal = events.get(root.run_id)
        if journal is None:
            journal = sorted((e for s in root.walk() if s.run_id == root.run_id
                              for e in s.events), key=lambda e: e.seq)
        by_seq = span_prompts(journal, full=full_prompts)
    extra: list[Event] = []
    out.append(run_span(root, ctx, include_content=include_content))
    run_index = len(out) - 1
    findings = [e for e in root.events if e.type == EventType.FINDING]
    pending = list(reversed(root.children))
    while pending:
        span = pending.pop()
        if span.run_id != root.run_id:  # a sub-run started from this run
            owner = ctx.root_span_id
            if span.parent_id and kind_of(span.parent_id) in ("model", "tool"):
                owner = span_id_for(root.run_id, span.parent_id)
            _emit(span, trace, owner, include_content, events, out, full_prompts)
            continue
        if span.kind == "model":
            seq = span.attrs.get("request_seq")
            prompt = by_seq.get(seq) if isinstance(seq, int) else None
            out.append(chat_span(span, ctx, include_content=include_content, prompt=prompt))
        elif span.kind == "tool":
            out.append(tool_span(span, ctx, include_content=include_content))
        elif span.kind == "step":
            out.append(step_span(span, ctx))
        else:  # unknown spans are flattened into the run span
            extra.extend(e for e in span.events if e.type in SPAN_EVENTS)
        pending.extend(reversed(span.children))
    if findings:
        out.append(doctor_span(findings, ctx))
    if extra:
        first = out[run_index]
        merged = sorted((*first.events, *(span_event(e) for e in extra)),
                        key=lambda ev: ev.time_ns)
        out[run_index] = _replace_events(first, tuple(merged))


def _replace_events(span: OtlpSpan, events: tuple[OtlpEvent, ...]) -> OtlpSpan:
    return OtlpSpan(
        trace_id=span.trace_id, span_id=span.span_id, parent_span_id=span.parent_span_id,
        name=span.name, kind=span.kind, start_ns=span.start_ns, end_ns=span.end_ns,
        attributes=span.attributes, status_code=span.status_code,
        status_message=span.status_message, events=events,
    )


# -- OTLP/JSON --------------------------------------------------------------------------


def _any_value(value: AttributeValue) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [_any_value(v) for v in value]}}
    return {"stringValue": value}


def _attributes(attrs: Mapping[str, AttributeValue]) -> list[dict[str, Any]]:
    return [{"key": k, "value": _any_value(v)} for k, v in attrs.items()]


def resource_attributes(service_name: str | None = None) -> dict[str, AttributeValue]:
    """``service.name`` (``$OTEL_SERVICE_NAME`` or ``tether``) and
    ``$OTEL_RESOURCE_ATTRIBUTES``, as the SDK would read them."""
    attrs: dict[str, AttributeValue] = {}
    for item in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "").split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            attrs[key.strip()] = value.strip()
    attrs["service.name"] = (service_name or os.environ.get("OTEL_SERVICE_NAME")
                             or str(attrs.get("service.name") or "tether"))
    return attrs


def _span_json(s: OtlpSpan) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": s.trace_id.hex(), "spanId": s.span_id.hex(), "name": s.name,
        "kind": s.kind, "startTimeUnixNano": str(s.start_ns),
        "endTimeUnixNano": str(s.end_ns), "attributes": _attributes(s.attributes),
        "status": {"code": s.status_code, **({"message": s.status_message}
                                              if s.status_message else {})},
    }
    if s.parent_span_id is not None:
        span["parentSpanId"] = s.parent_span_id.hex()
    if s.events:
        span["events"] = [{"timeUnixNano": str(ev.time_ns), "name": ev.name,
                           "attributes": _attributes(ev.attributes)} for ev in s.events]
    return span


def _envelope(spans: list[Any], service_name: str | None) -> dict[str, Any]:
    return {"resourceSpans": [{
        "resource": {"attributes": _attributes(resource_attributes(service_name))},
        "scopeSpans": [{"scope": {"name": SCOPE_NAME, "version": tether_version()},
                        "schemaUrl": SCHEMA_URL, "spans": spans}],
        "schemaUrl": SCHEMA_URL,
    }]}


def otlp_json(
    spans: Sequence[OtlpSpan], *, service_name: str | None = None
) -> dict[str, Any]:
    """An OTLP/JSON ``ExportTraceServiceRequest`` (ids in hex, times as strings)."""
    return _envelope([_span_json(s) for s in spans], service_name)


_MARK = "\u0000spans\u0000"


def otlp_json_chunks(
    spans: Iterable[OtlpSpan], *, service_name: str | None = None
) -> Iterator[str]:
    """:func:`otlp_json` as JSON text, one span at a time, ending in a newline (for
    writing a large export without building it whole)."""
    head, _, tail = json.dumps(_envelope([_MARK], service_name), ensure_ascii=False,
                               separators=(",", ":")).partition(json.dumps(_MARK))
    yield head
    encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    for i, span in enumerate(spans):
        yield ("," if i else "") + encode(_span_json(span))
    yield tail + "\n"
