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
    RunCompletedPayload,
    RunStartedPayload,
    RunStatus,
    SubrunStartedPayload,
    TetherError,
)
from ._otlp import (
    SCHEMA_URL,
    SCOPE_NAME,
    STATUS_ERROR,
    OtlpSpan,
    PromptTracker,
    RunContext,
    SpanPrompt,
    capture_content_default,
    chat_span,
    doctor_span,
    resource_attributes,
    run_span,
    span_id_for,
    step_span,
    tether_version,
    tool_span,
    trace_id_for,
)
from ._spans import (
    MODEL_ERROR,
    TERMINAL_STATUSES,
    Span,
    SpanRouter,
    close_call,
    close_step,
    kind_of,
    requested_arguments,
)

#: Spans per OTLP request when exporting after the fact.
EXPORT_CHUNK = 2000
#: Stopped (not final) runs whose state the live observer keeps, in case they resume.
KEEP_STOPPED_RUNS = 1000
#: Ended runs whose ids (and findings) the live observer keeps, for the doctor's findings
#: that are committed after the run's last event.
KEEP_ENDED_RUNS = 1024


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
        spans: The spans to send (:func:`otlp_spans` builds them from a run tree).
        endpoint: The full traces URL (``http://host:4318/v1/traces``); default from
            ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or ``OTEL_EXPORTER_OTLP_ENDPOINT``.
        headers: Extra request headers (default ``OTEL_EXPORTER_OTLP_HEADERS``).
        timeout_s: Per request (default ``OTEL_EXPORTER_OTLP_TIMEOUT``, 10 s).
        exporter: Any SDK ``SpanExporter`` to use instead of OTLP/HTTP.
        service_name: ``service.name`` (default ``$OTEL_SERVICE_NAME`` or ``tether``).

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
    prompts: PromptTracker
    ctx: RunContext | None = None
    open: dict[str, Span] = field(default_factory=dict)
    #: What each open request's chat span carries, by request seq (content only).
    requests: dict[int, SpanPrompt] = field(default_factory=dict)
    router: SpanRouter = field(default_factory=SpanRouter)
    #: Arguments of the latest step's calls, for calls rejected before an intent.
    requested: dict[str, Any] = field(default_factory=dict)
    #: Events of calls still open when the run stopped (exported as in doubt).
    parked: dict[str, list[Event]] = field(default_factory=dict)
    #: Steps not exported yet, or exported when the run stopped and open again.
    steps: dict[int, Span] = field(default_factory=dict)
    findings: list[Event] = field(default_factory=list)


class OtelObserver:
    """A Runner observer that exports OpenTelemetry GenAI spans as the run goes.

    Use it as ``Runner(store, observers=[OtelObserver()])``. A ``chat`` span is
    exported when its model response (or failure) is committed, an ``execute_tool``
    span when the tool's outcome is, a ``step`` span when the next step begins or the
    run stops, the ``invoke_agent`` span when the run stops (completed, failed,
    paused, needs attention, quarantined), and a ``doctor`` span when the doctor's
    findings are committed. Ids and attributes are the ones
    ``tether export --format otlp`` produces for the same run. Once a run has ended
    (completed or quarantined) the observer keeps nothing of it but its ids and
    findings among the last 1,024 ended runs' (for findings committed after the end).
    Spans go through a ``BatchSpanProcessor`` to the OTLP/HTTP exporter configured by the standard
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
        full_prompts: Put each request's whole prompt in its chat span rather than
            the prompt's head and what the request adds (see ``export_otlp_spans``).
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
        full_prompts: bool = False,
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
        self.full_prompts = full_prompts
        self._runs: dict[str, _LiveRun] = {}
        self._started_by: dict[str, tuple[str, str]] = {}
        self._stopped: dict[str, None] = {}  # insertion-ordered
        self._ended: dict[str, tuple[RunContext, list[Event]]] = {}  # insertion-ordered
        self._lock = threading.Lock()

    def __call__(self, events: Sequence[Event]) -> None:
        """Take one committed batch; export the spans it closes."""
        with self._lock:
            findings: dict[str, None] = {}
            for event in events:
                if event.type == EventType.FINDING:
                    self._on_finding(self.redactor.redact_event(event))
                    findings[event.run_id] = None
                else:
                    self._on_event(self.redactor.redact_event(event))
            for run_id in findings:
                self._emit_findings(run_id)

    @property
    def runs_tracked(self) -> int:
        """How many runs the observer holds state for (running or stopped, not ended)."""
        return len(self._runs)

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
            run = self._runs[event.run_id] = _LiveRun(
                root=root, prompts=PromptTracker(full=self.full_prompts))
        return run

    def _trace_of(self, run_id: str) -> bytes:
        live = self._runs.get(run_id)
        if live is not None:
            return self._context(live).trace_id
        if run_id in self._ended:
            return self._ended[run_id][0].trace_id
        return trace_id_for(run_id)

    def _context(self, run: _LiveRun) -> RunContext:
        if run.ctx is None:
            run_id = run.root.run_id
            parent_run = run.root.attrs.get("parent_run_id")
            parent_span: bytes | None = None
            if parent_run:
                trace = self._trace_of(str(parent_run))
                owner_run, owner = self._started_by.pop(run_id, (parent_run, "run"))
                if kind_of(owner) not in ("model", "tool"):
                    owner = "run"
                parent_span = span_id_for(owner_run, owner)
            else:
                trace = trace_id_for(run_id)
            run.ctx = RunContext.of(run.root, trace, parent_span)
        return run.ctx

    def _on_finding(self, e: Event) -> None:
        run = self._runs.get(e.run_id)
        if run is not None:
            run.findings.append(e)
        elif e.run_id in self._ended:
            self._ended[e.run_id][1].append(e)
        else:  # a run this observer never saw: its own trace
            root = Span(run_id=e.run_id, span_id="run", parent_id=None, kind="run",
                        name="invoke_agent", step=0, start=e.ts)
            self._remember(RunContext.of(root, trace_id_for(e.run_id), None), [e])

    def _emit_findings(self, run_id: str) -> None:
        run = self._runs.get(run_id)
        if run is not None:
            ctx, findings = self._context(run), run.findings
        else:
            ctx, findings = self._ended[run_id]
        if findings:
            self._replayer.emit(doctor_span(findings, ctx))

    def _remember(self, ctx: RunContext, findings: list[Event]) -> None:
        self._ended.pop(ctx.run_id, None)
        self._ended[ctx.run_id] = (ctx, findings)
        while len(self._ended) > KEEP_ENDED_RUNS:
            del self._ended[next(iter(self._ended))]

    def _on_event(self, e: Event) -> None:
        run = self._run(e)
        root = run.root
        p = e.data
        root.attrs["steps"] = max(int(root.attrs.get("steps") or 0), e.step)
        if isinstance(p, RunStartedPayload):
            root.start = e.ts
            root.attrs.update(agent=p.agent, task=p.task, instructions=p.instructions,
                              provider=p.provider, model=p.model, tools=p.tools or [],
                              parent_run_id=p.parent_run_id, price_table=p.price_table)
        elif isinstance(p, SubrunStartedPayload):
            self._started_by[p.child_run_id] = (e.run_id, e.span_id or "run")
        if self.include_content:
            prompt = run.prompts.feed(e)
            if prompt is not None:
                run.requests[e.seq] = prompt
        if e.type == EventType.MODEL_RESPONSE:
            run.requested = requested_arguments(e)
        span_id = run.router.route(e) if e.type not in STATUS_AFTER else None
        kind = kind_of(span_id) if span_id else "run"
        if span_id and kind in ("model", "tool"):
            self._step(run, e.step)
            span = run.open.get(span_id)
            if span is None:
                span = run.open[span_id] = Span(
                    run_id=e.run_id, span_id=span_id, parent_id=f"s{e.step}",
                    kind=kind, name=kind, step=e.step, start=e.ts,
                    events=run.parked.pop(span_id, []))
            span.events.append(e)
            if e.type in (EventType.MODEL_RESPONSE, MODEL_ERROR, EventType.TOOL_RESULT,
                          EventType.TOOL_ERROR):
                self._close(run, run.open.pop(span_id))
        elif e.type not in STATUS_AFTER and (kind == "step" or (
                kind == "run" and e.step > 0)):
            self._step(run, e.step).events.append(e)
        elif e.type not in STATUS_AFTER or e.type in (EventType.RUN_RESUMED,
                                                      EventType.RUN_PAUSED):
            root.events.append(e)
        if e.type in STATUS_AFTER:
            status = STATUS_AFTER[e.type]
            root.status = str(status)
            error = getattr(p, "error", None) or p.extra("error")
            if isinstance(p, RunCompletedPayload):
                root.attrs["output"] = p.output
            elif error:
                root.attrs["error"] = error
            if status in TERMINAL_STATUSES:
                root.end = e.ts
                self._finish(run, status)

    def _step(self, run: _LiveRun, step: int) -> Span:
        """The step span an event of ``step`` belongs to; earlier steps are over and
        exported."""
        for earlier in [k for k in run.steps if k < step]:
            self._emit_step(run, run.steps.pop(earlier), final=False)
        found = run.steps.get(step)
        if found is None:
            found = run.steps[step] = Span(run_id=run.root.run_id, span_id=f"s{step}",
                                           parent_id="run", kind="step", name=f"step {step}",
                                           step=step, start=0.0)
        return found

    def _emit_step(self, run: _LiveRun, step: Span, *, final: bool) -> None:
        close_step(step, final=final)
        self._replayer.emit(step_span(step, self._context(run)))

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
        step = run.steps.get(span.step)
        if step is not None:  # a call settled again after a stop replaces its first end
            step.children = [c for c in step.children if c.span_id != span.span_id]
            step.children.append(span)
        if span.kind == "model":
            seq = span.attrs.get("request_seq")
            prompt = run.requests.pop(seq, None) if isinstance(seq, int) else None
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
        for step in run.steps.values():
            self._emit_step(run, step, final=True)
        self._replayer.emit(run_span(run.root, ctx, include_content=self.include_content))
        run_id = run.root.run_id
        self._stopped.pop(run_id, None)
        if status.is_final:
            del self._runs[run_id]
            self._remember(ctx, run.findings)
            return
        # Failed, paused or needing attention: it may be resumed in this process.
        self._stopped[run_id] = None
        while len(self._stopped) > KEEP_STOPPED_RUNS:
            oldest = next(iter(self._stopped))
            del self._stopped[oldest]
            self._runs.pop(oldest, None)
