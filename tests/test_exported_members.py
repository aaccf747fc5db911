"""The public surface, pinned: a change to any package's ``__all__`` is a change on purpose."""

from __future__ import annotations

import importlib

import pytest

EXPORTS: dict[str, list[str]] = {
    "tether": [
        "NOT_APPLIED", "Agent", "Budget", "FunctionModel", "Message", "Policy", "Redactor",
        "RetryPolicy", "RunResult", "RunStatus", "Runner", "SQLiteStore", "ScriptedModel",
        "TetherError", "ToolCall", "ToolContext", "Usage", "open_store", "select_model", "tool",
    ],
    "tether.core": [
        "REDACTED_PREFIX", "SEALED_KEY", "STATUS_AFTER", "AgentSpecError", "BudgetExceededError",
        "CallInDoubtError", "Clock",
        "ConcurrentWriteError", "ConfigurationError", "ContextLengthError", "Event", "EventType",
        "FatalModelError", "IdSource", "LeaseLostError", "Message", "ModelBehaviorError",
        "ModelError",
        "ModelRetry", "RateLimitError", "Redactor", "Role", "RunError", "RunLeasedError",
        "RunNotFoundError", "RunStatus", "SchemaVersionError", "SealKey", "SealKeyError",
        "SealedValueError", "Sealer", "StoreCorruptError", "StoreError", "StoreFullError",
        "StoreIOError", "StoreLockedError", "StoreNotFoundError", "StoreReadOnlyError",
        "SystemClock", "SystemIds", "TetherError", "ToolCall", "ToolDefinitionError", "ToolError",
        "ToolResult", "ToolSpec", "ToolTimeoutError", "ToolUnavailableError",
        "TransientModelError", "Usage", "UsageError", "message_of", "new_id",
        "visible",
    ],
    "tether.store": [
        "BLOB_THRESHOLD", "DEFAULT_BUSY_TIMEOUT_MS", "DEFAULT_PATH", "SCHEMA_VERSION", "Lease",
        "LedgerEntry", "RunSummary", "SQLiteStore", "Store", "Synchronous", "enable_wal",
        "open_store",
    ],
    "tether.models": [
        "DEFAULT_PRICES", "MODEL_ENV", "PRICE_TABLE_VERSION", "AnthropicModel", "CostEstimate",
        "FunctionModel", "LocalModel", "Model", "ModelPrice", "ModelRequest", "ModelResponse",
        "ModelSettings", "ModelSpec", "OpenAIModel", "PriceTable", "ScriptExhaustedError",
        "ScriptItem", "ScriptedModel", "StreamDelta", "StreamingModel", "cost",
        "default_local_model_path", "parse_model_spec", "select_model", "step_of",
        "DEFAULT_COMPATIBLE_MAX_TOKENS", "DEFAULT_MAX_RESPONSE_BYTES", "TruncatedResponseError",
    ],
    "tether.orchestration": [
        "ARTIFACT_CHARS", "MAX_DEPTH", "MAX_REPEATS", "ArtifactRef", "Branch", "Brief", "Plan",
        "PlanResult", "Replanner", "Status", "SubagentResult", "Subtask", "api_caller",
        "as_tool", "child_run_id", "coder", "controller", "delegate", "diagnose_team",
        "fan_out", "formatter", "plan_tool", "retriever", "retry_with_error", "run_plan",
        "team_findings", "team_reviewer",
    ],
    "tether.tools": [
        "NOT_APPLIED", "Tool", "ToolContext", "serialize_result", "tool",
    ],
    "tether.sandbox": [
        "DENIED_SYSCALLS", "ExecResult", "FileRef", "Sandbox", "SandboxConfig", "SandboxError",
        "SandboxLimits", "SandboxUnavailableError", "python_tool", "result_payload",
        "seccomp_program", "shell_tool",
    ],
    "tether.net": [
        "IDEMPOTENT_METHODS", "METADATA_HOSTS", "METADATA_NETWORKS", "REDACTED_CREDENTIAL",
        "CheckedURL", "Credential", "GuardedHttp", "HttpPolicy", "HttpRequestError",
        "HttpResult", "HttpRetryLaterError", "PinningBackend", "Resolver", "URLRefusedError",
        "address_refusal", "embedded_ipv4", "host_matches", "http_tool", "parse_url",
        "system_resolver",
    ],
    "tether.memory": [
        "MIGRATION_SET", "BuiltContext", "ContextBudgetError", "ContextBuilder", "ContextPart",
        "Embedder", "EmbedderMismatchError", "EmbeddingError", "EstimateTokenCounter", "Hit",
        "LlamaTokenCounter", "Memory", "MemoryPolicy", "MemoryStore", "MemoryStoreError",
        "MiniLMEmbedder", "Namespace", "OpenAIEmbedder", "PreparedMemory", "Provenance",
        "SQLiteMemoryStore", "TokenCounter", "VectorExtensionError", "WriteOutcome",
        "default_counter", "load_vec", "memory_tools", "message_tokens", "normalise_text",
        "offload_large_results",
    ],
    "tether.runtime": [
        "Agent", "Breaker", "BreakerBoard", "BreakerSettings", "Budget", "MemoryConfig", "Observer",
        "OpenCall",
        "Policy", "RetryPolicy", "Reviewer", "RunResult", "RunState", "Runner", "Transition",
        "absolute_spec", "error_class", "fold", "list_threads", "load_agent", "parse_budget",
        "thread_runs",
    ],
    "tether.observe": [
        "CAPTURE_CONTENT_ENV", "GENAI_SEMCONV_VERSION", "SCHEMA_URL", "TERMINAL_STATUSES",
        "Divergence", "DoctorConfig", "Finding", "JsonlLog", "OtelObserver", "OtlpEvent",
        "OtlpSpan", "RunCost", "RunDiff", "RunTree", "RunView", "Span", "StepCost", "StepDiff",
        "StepView", "build_spans", "build_trace", "cost_of", "describe", "diagnose", "diff_runs",
        "event_lines", "export_events", "export_otlp_spans", "finding_payloads", "follow",
        "load_run_tree", "new_messages", "otlp_json", "otlp_json_chunks", "otlp_spans",
        "prompts", "read_events", "read_jsonl",
        "redact_tree", "root_run_id", "run_cost", "send_otlp", "span_id_for", "tool_cost",
        "trace_id_for", "tree_cost", "view_run",
    ],
    "tether.testing": [
        "FAULTS", "FakeClock", "Fault", "FaultServer", "Received", "SequentialIds", "closed_port",
        "counting_responder",
    ],
    "tether.cli": [
        "app", "main",
    ],
}


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_exports_are_pinned(package: str) -> None:
    module = importlib.import_module(package)
    assert sorted(module.__all__) == sorted(EXPORTS[package])
    assert len(set(module.__all__)) == len(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), f"{package}.{name}"
