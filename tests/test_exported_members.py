"""The public surface, pinned: a change to any package's ``__all__`` is a change on purpose."""

from __future__ import annotations

import importlib
import inspect

import pytest

EXPORTS: dict[str, list[str]] = {
    "tether": [
        "NOT_APPLIED", "Agent", "Budget", "FunctionModel", "Message", "Policy", "Redactor",
        "RetryPolicy", "RunResult", "RunStatus", "Runner", "SQLiteStore", "ScriptedModel",
        "TetherError", "ToolCall", "ToolContext", "Usage", "open_store", "select_model", "tool",
    ],
    "tether.core": [
        "REDACTED_PREFIX", "SEALED_KEY", "STATUS_AFTER", "AgentSpecError", "BudgetExceededError",
        "ApprovalRequired", "Artifact", "CallDeferred",
        "CallInDoubtError", "Clock",
        "ConcurrentWriteError", "ConfigurationError", "ContextLengthError", "Event", "EventType",
        "FatalModelError", "IdSource", "LeaseLostError", "Message", "ModelBehaviorError",
        "ModelError",
        "ModelRetry", "QuarantinedError", "RateLimitError", "Redactor", "Role", "RunError",
        "RunLeasedError",
        "RunNotFoundError", "RunStatus", "SchemaVersionError", "SealKey", "SealKeyError",
        "SealedValueError", "Sealer", "StoreCorruptError", "StoreError", "StoreFullError",
        "StoreIOError", "StoreLockedError", "StoreNotFoundError", "StoreReadOnlyError",
        "SystemClock", "SystemIds", "TetherError", "ToolCall", "ToolDefinitionError", "ToolError",
        "ToolResult", "ToolSpec", "ToolTimeoutError", "ToolUnavailableError",
        "TransientModelError", "Usage", "UsageError", "message_of", "new_id",
        "visible",
        # Typed event payloads (core/_payloads.py).
        "JOURNAL_FORMAT", "PAYLOADS", "BreakerPayload", "BudgetPayload",
        "ContextBuiltPayload", "DecisionPayload", "FallbackPayload", "FindingPayload",
        "MemoryRecallPayload", "MemoryWorkingPayload", "MemoryWritePayload", "ModelErrorPayload",
        "ModelRequestPayload", "ModelResponsePayload", "Payload", "RetryPayload",
        "RunCompletedPayload", "RunFailedPayload", "RunNeedsAttentionPayload",
        "RunPausedPayload", "RunQuarantinedPayload", "RunResumedPayload",
        "RunStartedPayload", "SubrunCompletedPayload", "SubrunStartedPayload",
        "ToolErrorPayload", "ToolIntentPayload", "ToolResultPayload", "parse_payload",
        "payload_of",
    ],
    "tether.store": [
        "BLOB_THRESHOLD", "DEFAULT_BUSY_TIMEOUT_MS", "DEFAULT_PATH", "SCHEMA_VERSION", "Lease",
        "LedgerEntry", "RunSummary", "SQLiteStore", "Store", "Synchronous", "enable_wal",
        "open_store",
        # Named migration sets, the pure projections, the unit of work.
        "CORE_MIGRATIONS", "LedgerOutcome", "MigrationSet", "Rows", "Transaction", "Within",
        "applied_version", "apply_migrations", "check_synchronous", "project_ledger",
        "project_run",
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
        "ARTIFACT_CHARS", "MAX_DEPTH", "MAX_REPEATS", "ArtifactRef", "Branch", "Brief",
        "DelegationOverhead", "Plan", "PlanResult", "Replanner", "Status", "SubagentResult",
        "Subtask", "api_caller", "as_tool", "child_run_id", "coder", "controller", "delegate",
        "delegation_overhead", "diagnose_team", "fan_out", "formatter", "plan_tool",
        "register_documents", "retriever", "retry_with_error", "run_delegation_overhead",
        "run_plan", "team_findings", "team_reviewer",
    ],
    "tether.tools": [
        "NOT_APPLIED", "Tool", "ToolContext", "serialize_result", "tool",
        "ApprovalRequiredToolset", "BaseToolset", "FilteredToolset", "FunctionToolset",
        "PrefixedToolset", "RunHandle", "RunView", "RunnerView", "StepContext", "ToolDef",
        "Toolset", "WorkingMemory", "WrapperToolset", "as_result", "still_running",
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
        "OpenCall", "Delta", "EventStream", "Lagged", "StreamItem", "Subscription",
        "Policy", "RetryPolicy", "Reviewer", "RunResult", "RunState", "Runner", "Transition",
        "absolute_spec", "error_class", "fold", "list_threads", "load_agent", "parse_budget",
        "parse_thread_key", "thread_key", "thread_runs",
        # The registrable fold and the journal format check.
        "FoldHandler", "check_format", "register_fold",
    ],
    "tether.observe": [
        "CAPTURE_CONTENT_ENV", "GENAI_SEMCONV_VERSION", "SCHEMA_URL", "TERMINAL_STATUSES",
        "Divergence", "DoctorConfig", "Finding", "JsonlLog", "OtelObserver", "OtlpEvent",
        "OtlpSpan", "RunCost", "RunDiff", "RunTree", "RunView", "Span", "StepCost", "StepDiff",
        "StepView", "build_spans", "build_trace", "context_summary", "cost_of", "describe",
        "diagnose", "diff_runs",
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


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_no_public_name_outside_all(package: str) -> None:
    """A name a package shows without an underscore is either exported or a submodule:
    nothing becomes public by accident (an import left in ``__init__``)."""
    module = importlib.import_module(package)
    stray = [name for name in vars(module)
             if not name.startswith("_") and name not in module.__all__
             and name != "annotations" and not inspect.ismodule(getattr(module, name))]
    assert stray == [], f"{package} shows {stray} outside __all__: export or rename them"
