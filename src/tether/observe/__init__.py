"""Readers of the journal: descriptions, logs, traces, cost, exports, diff, the doctor."""

from ._cost import RunCost, StepCost, cost_of, run_cost, tool_cost, tree_cost
from ._describe import describe
from ._diff import Divergence, RunDiff, RunView, StepDiff, StepView, diff_runs, view_run
from ._doctor import DoctorConfig, diagnose, finding_payloads
from ._export import export_events, export_otlp_spans, redact_tree
from ._finding import Finding
from ._jsonl import JsonlLog, event_lines, read_jsonl
from ._load import RunTree, load_run_tree, read_events, root_run_id
from ._memory_view import context_summary
from ._otel import OtelObserver, send_otlp
from ._otlp import (
    CAPTURE_CONTENT_ENV,
    GENAI_SEMCONV_VERSION,
    SCHEMA_URL,
    OtlpEvent,
    OtlpSpan,
    otlp_json,
    otlp_json_chunks,
    otlp_spans,
    span_id_for,
    trace_id_for,
)
from ._prompts import new_messages, prompts
from ._spans import TERMINAL_STATUSES, Span, build_spans, build_trace
from ._tail import follow

__all__ = [
    "CAPTURE_CONTENT_ENV",
    "GENAI_SEMCONV_VERSION",
    "SCHEMA_URL",
    "TERMINAL_STATUSES",
    "Divergence",
    "DoctorConfig",
    "Finding",
    "JsonlLog",
    "OtelObserver",
    "OtlpEvent",
    "OtlpSpan",
    "RunCost",
    "RunDiff",
    "RunTree",
    "RunView",
    "Span",
    "StepCost",
    "StepDiff",
    "StepView",
    "build_spans",
    "build_trace",
    "context_summary",
    "cost_of",
    "describe",
    "diagnose",
    "diff_runs",
    "event_lines",
    "export_events",
    "export_otlp_spans",
    "finding_payloads",
    "follow",
    "load_run_tree",
    "new_messages",
    "otlp_json",
    "otlp_json_chunks",
    "otlp_spans",
    "prompts",
    "read_jsonl",
    "read_events",
    "redact_tree",
    "root_run_id",
    "run_cost",
    "send_otlp",
    "span_id_for",
    "tool_cost",
    "trace_id_for",
    "tree_cost",
    "view_run",
]
