"""OpenTelemetry export through the SDK: send OTLP after the fact, or live as a run goes.

Both paths replay :class:`~tether.observe.OtlpSpan` records (see ``_otlp.py``) through
an SDK ``TracerProvider`` whose id generator hands out the planned, deterministic ids,
with explicit start and end times. The exporter is the SDK's OTLP/HTTP (protobuf)
one, configured by the standard ``OTEL_EXPORTER_OTLP_*`` environment variables
(endpoint, headers, timeout, compression, certificates).

The SDK is an optional dependency, imported only here: ``pip install "tether[otel]"``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from ..core import (
    STATUS_AFTER,
    ConfigurationError,
    Event,
    EventType,
    Redactor,
    RunStatus,
    TetherError,
)
from ._otlp import (
    SCHEMA_URL,
    SCOPE_NAME,
    STATUS_ERROR,
    OtlpSpan,
    RunContext,
    capture_content_default,
    chat_span,
    resource_attributes,
    run_span,
    span_id_for,
    tether_version,
    tool_span,
    trace_id_for,
)
from ._prompts import message_dict, resolve
from ._spans import (
    TERMINAL_STATUSES,
    Span,
    SpanRouter,
    close_call,
    kind_of,
    requested_arguments,
)

#: Spans per OTLP request when exporting after the fact.
EXPORT_CHUNK = 2000
#: Stopped (not final) runs whose state the live observer keeps, in case they resume.
KEEP_STOPPED_RUNS = 1000


def _require(module: str) -> Any:
    try:
        return import_module(module)
    except ImportError as e:
        raise ConfigurationError(
            f"OpenTelemetry export needs the OpenTelemetry SDK and OTLP exporter ({e.name} "
            'is missing): pip install "tether[otel]"',
            hint='pip install "tether[otel]"',
        ) from e


class _Replayer:
    """Turns OtlpSpan records into SDK spans with their own ids and times."""

    def __init__(self, processor: Any, service_name: str | None = None) -> None:
        sdk_trace = _require("opentelemetry.sdk.trace")
        resources = _require("opentelemetry.sdk.resources")
        sampling = _require("opentelemetry.sdk.trace.sampling")
        id_generator = _require("opentelemetry.sdk.trace.id_generator")
        self._api = _require("opentelemetry.trace")
        self._context = _require("opentelemetry.context")
        self._status = self._api.Status
        self._lock = threading.Lock()
        self._planned = (0, 0)
        outer = self

        class PlannedIds(id_generator.IdGenerator):  # type: ignore[misc, name-defined]
            def generate_span_id(self) -> int:
                return outer._planned[1]

            def generate_trace_id(self) -> int:
                return outer._planned[0]

        self.provider = sdk_trace.TracerProvider(
            resource=resources.Resource.create(resource_attributes(service_name)),
            sampler=sampling.ALWAYS_ON, id_generator=PlannedIds(), shutdown_on_exit=False,
        )
        self.provider.add_span_processor(processor)
        self.tracer = self.provider.get_tracer(SCOPE_NAME, tether_version(),
                                               schema_url=SCHEMA_URL)

    def emit(self, span: OtlpSpan) -> None:
        api = self._api
        trace_id = int.from_bytes(span.trace_id, "big")
        if span.parent_span_id is not None:
            parent = api.SpanContext(trace_id=trace_id,
                                     span_id=int.from_bytes(span.parent_span_id, "big"),
                                     is_remote=False,
                                     trace_flags=api.TraceFlags(api.TraceFlags.SAMPLED))
            context = api.set_span_in_context(api.NonRecordingSpan(parent),
                                              self._context.Context())
        else:
            context = self._context.Context()
        kind = api.SpanKind.CLIENT if span.kind == 3 else api.SpanKind.INTERNAL
        with self._lock:
            self._planned = (trace_id, int.from_bytes(span.span_id, "big"))
            sdk_span = self.tracer.start_span(span.name, context=context, kind=kind,
                                              attributes=span.attributes,
                                              start_time=span.start_ns)
        for event in span.events:
            sdk_span.add_event(event.name, attributes=event.attributes,
                               timestamp=event.time_ns)
        if span.status_code == STATUS_ERROR:
            sdk_span.set_status(self._status(api.StatusCode.ERROR, span.status_message))
        sdk_span.end(end_time=max(span.end_ns, span.start_ns))

    def shutdown(self) -> None:
        self.provider.shutdown()


def send_otlp(
    spans: Sequence[OtlpSpan],
    *,
    endpoint: str | None = None,
    headers: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    exporter: Any = None,
    service_name: str | None = None,
) -> int:
    """Send spans over OTLP/HTTP (protobuf); return how many were sent.

    Args:
        endpoint: The full traces URL (``http://host:4318/v1/traces``); default from
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        headers: Extra request headers (default ``OTEL_EXPORTER_OTLP_HEADERS``).
        timeout_s: Per request (default ``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s).
        exporter: Any SDK ``SpanExporter`` to use instead of OTLP/HTTP.

    Raises:
        TetherError: the collector did not accept the spans.
        ConfigurationError: the OpenTelemetry SDK is not installed.
    """
    sdk_trace = _require("opentelemetry.sdk.trace")
    export = _require("opentelemetry.sdk.trace.export")
    collected: list[Any] = []

    class Collect(sdk_trace.SpanProcessor):  # type: ignore[misc, name-defined]
        def on_end(self, span: Any) -> None:
            collected.append(span)

    replayer = _Replayer(Collect(), service_name)
    for span in spans:
        replayer.emit(span)
    replayer.shutdown()
    own = exporter is None
    if own:
        otlp = _require("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        exporter = otlp.OTLPSpanExporter(endpoint=endpoint, headers=headers, timeout=timeout_s)
    try:
        for start in range(0, len(collected), EXPORT_CHUNK):
            result = exporter.export(collected[start : start + EXPORT_CHUNK])
            if result != export.SpanExportResult.SUCCESS:
                where = endpoint or getattr(exporter, "_endpoint", "the OTLP endpoint")
                raise TetherError(
                    f"the OTLP export to {where} failed",
                    hint="check OTEL_EXPORTER_OTLP_ENDPOINT (or --endpoint) and that the "
                         "collector is up; `--format otlp-json` writes the spans to a file",
                )
    finally:
        if own:
            exporter.shutdown()
    return len(collected)


# -- live -------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class _LiveRun:
    root: Span
    ctx: RunContext | None = None
    open: dict[str, Span] = field(default_factory=dict)
    previous_prompt: list[dict[str, Any]] = field(default_factory=list)
    prompts: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    router: SpanRouter = field(default_factory=SpanRouter)
    #: Arguments of the latest step's calls, for calls rejected before an intent.
    requested: dict[str, Any] = field(default_factory=dict)
    #: Events of calls still open when the run stopped (exported as in doubt).
    parked: dict[str, list[Event]] = field(default_factory=dict)
    #: Events holding messages that later requests refer to (content capture only).
    held: dict[int, dict[str, Any]] = field(default_factory=dict)


class OtelObserver:
    """A Runner observer that exports OpenTelemetry GenAI spans as the run goes.

    Use it as ``Runner(store, observers=[OtelObserver()])``. A ``chat`` span is
    exported when its model response is committed, an ``execute_tool`` span when the
    tool's outcome is, and the ``invoke_agent`` span when the run stops (completed,
    failed, paused, needs attention, quarantined). Ids and attributes are the ones
    ``tether export --format otlp`` produces for the same run. Spans go through a
    ``BatchSpanProcessor`` to the OTLP/HTTP exporter configured by the standard
    ``OTEL_EXPORTER_OTLP_*`` variables; call :meth:`shutdown` (or :meth:`force_flush`)
    before the process ends.

    A run that stops without finishing (failed, paused, needs attention) has its
    ``invoke_agent`` span exported then, and again when it ends after a resume (same
    span id); a call in doubt is exported as such when the run stops, and again once
    it is settled. A run resumed in another process gets its ``invoke_agent`` span
    exported by that process too (``tether.run.resumed``), covering what it saw.

    Args:
        exporter: An SDK ``SpanExporter`` (default: OTLP/HTTP from the environment).
        processor: An SDK ``SpanProcessor`` to use instead of a batch processor.
        include_content: Export prompts, answers, tool arguments and results
            (default: ``$OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT``).
        redactor: Applied to every event first (default :meth:`Redactor.from_env`).
        service_name: ``service.name`` (default ``$OTEL_SERVICE_NAME`` or ``tether``).
        tool_prices: Declared per-call tool prices, USD (see :func:`cost_of`).
    """

    def __init__(
        self,
        *,
        exporter: Any = None,
        processor: Any = None,
        include_content: bool | None = None,
        redactor: Redactor | None = None,
        service_name: str | None = None,
        tool_prices: Mapping[str, float] | None = None,
    ) -> None:
        if processor is None:
            export = _require("opentelemetry.sdk.trace.export")
            if exporter is None:
                otlp = _require("opentelemetry.exporter.otlp.proto.http.trace_exporter")
                exporter = otlp.OTLPSpanExporter()
            processor = export.BatchSpanProcessor(exporter)
        self._processor = processor
        self._replayer = _Replayer(processor, service_name)
        self.include_content = (capture_content_default() if include_content is None
                                else include_content)
        self.redactor = redactor if redactor is not None else Redactor.from_env()
        self.tool_prices = tool_prices
        self._runs: dict[str, _LiveRun] = {}
        self._trace_ids: dict[str, bytes] = {}
        self._started_by: dict[str, tuple[str, str]] = {}
        self._stopped: dict[str, None] = {}  # insertion-ordered
        self._lock = threading.Lock()

    def __call__(self, events: Sequence[Event]) -> None:
        """Take one committed batch; export the spans it closes."""
        with self._lock:
            for event in events:
                self._on_event(self.redactor.redact_event(event))

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        """Send every finished span now."""
        return bool(self._processor.force_flush(timeout_millis))

    def shutdown(self) -> None:
        """Flush and stop the exporter."""
        self._replayer.shutdown()

    # -- events -------------------------------------------------------------------

    def _run(self, event: Event) -> _LiveRun:
        run = self._runs.get(event.run_id)
        if run is None:
            root = Span(run_id=event.run_id, span_id="run", parent_id=None, kind="run",
                        name="invoke_agent", step=0, start=event.ts)
            if event.type != EventType.RUN_STARTED:
                root.attrs["resumed"] = True
            run = self._runs[event.run_id] = _LiveRun(root=root)
        return run

    def _context(self, run: _LiveRun) -> RunContext:
        if run.ctx is None:
            run_id = run.root.run_id
            parent_run = run.root.attrs.get("parent_run_id")
            parent_span: bytes | None = None
            if parent_run:
                trace = self._trace_ids.get(parent_run) or trace_id_for(parent_run)
                owner_run, owner = self._started_by.get(run_id, (parent_run, "run"))
                if kind_of(owner) not in ("model", "tool"):
                    owner = "run"
                parent_span = span_id_for(owner_run, owner)
            else:
                trace = trace_id_for(run_id)
            self._trace_ids[run_id] = trace
            run.ctx = RunContext.of(run.root, trace, parent_span)
        return run.ctx

    def _on_event(self, e: Event) -> None:
        run = self._run(e)
        root = run.root
        p = e.payload
        root.attrs["steps"] = max(int(root.attrs.get("steps") or 0), e.step)
        if e.type == EventType.RUN_STARTED:
            root.start = e.ts
            root.attrs.update(agent=p.get("agent"), task=p.get("task"),
                              instructions=p.get("instructions"), provider=p.get("provider"),
                              model=p.get("model"), tools=p.get("tools") or [],
                              parent_run_id=p.get("parent_run_id"),
                              price_table=p.get("price_table"))
        elif e.type == EventType.SUBRUN_STARTED:
            child = p.get("child_run_id") or p.get("run_id")
            if child:
                self._started_by[str(child)] = (e.run_id, e.span_id or "run")
        if self.include_content:
            self._track_prompt(run, e)
        if e.type == EventType.MODEL_RESPONSE:
            run.requested = requested_arguments(e)
        span_id = run.router.route(e)
        kind = kind_of(span_id) if span_id else "run"
        if span_id and kind in ("model", "tool"):
            span = run.open.get(span_id)
            if span is None:
                span = run.open[span_id] = Span(
                    run_id=e.run_id, span_id=span_id, parent_id=f"s{e.step}",
                    kind=kind, name=kind, step=e.step, start=e.ts,
                    events=run.parked.pop(span_id, []))
            span.events.append(e)
            if e.type in (EventType.MODEL_RESPONSE, EventType.TOOL_RESULT,
                          EventType.TOOL_ERROR):
                self._close(run, run.open.pop(span_id))
        elif e.type not in STATUS_AFTER or e.type in (EventType.RUN_RESUMED,
                                                      EventType.RUN_PAUSED):
            root.events.append(e)
        if e.type in STATUS_AFTER:
            status = STATUS_AFTER[e.type]
            root.status = str(status)
            if e.type == EventType.RUN_COMPLETED:
                root.attrs["output"] = p.get("output")
            elif p.get("error"):
                root.attrs["error"] = p["error"]
            if status in TERMINAL_STATUSES:
                root.end = e.ts
                self._finish(run, status)

    @staticmethod
    def _track_prompt(run: _LiveRun, e: Event) -> None:
        if e.type == EventType.MODEL_REQUEST:
            new = resolve(e, run.held)
            prompt = run.previous_prompt[: int(e.payload.get("prefix", 0) or 0)] + new
            run.previous_prompt = prompt
            run.prompts[e.seq] = prompt
        else:
            message = message_dict(e)
            if message is not None:
                run.held[e.seq] = message

    def _close(self, run: _LiveRun, span: Span, *, final: bool = False) -> None:
        close_call(span, self.tool_prices)
        if span.kind == "tool" and "arguments" not in span.attrs:
            span.attrs["arguments"] = run.requested.get(str(span.attrs.get("call_id")))
        if final and span.status == "running":
            span.status = "in_doubt" if span.kind == "tool" else "error"
            span.end = run.root.end
        ctx = self._context(run)
        run.root.input_tokens += span.input_tokens
        run.root.output_tokens += span.output_tokens
        run.root.cost_usd += span.cost_usd
        if span.kind == "model":
            seq = span.attrs.get("request_seq")
            prompt = run.prompts.pop(seq, None) if isinstance(seq, int) else None
            record = chat_span(span, ctx, include_content=self.include_content, prompt=prompt)
        else:
            record = tool_span(span, ctx, include_content=self.include_content)
        self._replayer.emit(record)

    def _finish(self, run: _LiveRun, status: RunStatus) -> None:
        for span_id, span in list(run.open.items()):
            self._close(run, span, final=True)
            # A call left open may still be settled if the run is resumed here.
            run.parked[span_id] = span.events
        run.open.clear()
        ctx = self._context(run)
        self._replayer.emit(run_span(run.root, ctx, include_content=self.include_content))
        run_id = run.root.run_id
        self._stopped.pop(run_id, None)
        if status.is_final:
            del self._runs[run_id]
            return
        # Failed, paused or needing attention: it may be resumed in this process.
        self._stopped[run_id] = None
        while len(self._stopped) > KEEP_STOPPED_RUNS:
            oldest = next(iter(self._stopped))
            del self._stopped[oldest]
            self._runs.pop(oldest, None)
