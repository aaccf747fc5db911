"""The public surface, pinned: a change to any package's ``__all__`` is a change on purpose."""

from __future__ import annotations

import ast
import dataclasses
import enum
import functools
import importlib
import inspect
from pathlib import Path
from typing import Protocol

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "tether"

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


# --- docstrings on every public name ------------------------------------------------------
# ruff's D1xx rules count a name in a private module (``_x.py``) as private, and every
# public name here is defined in one and re-exported: they would check nothing, so this
# test walks what the packages export instead.


def _own_class_doc(cls: type) -> str:
    """The docstring a class wrote itself: not inherited, not the ``Name(a, b)`` signature
    ``dataclasses`` and ``NamedTuple`` generate when it wrote none."""
    doc = vars(cls).get("__doc__") or ""
    if doc.startswith(f"{cls.__name__}("):
        return ""
    return doc.strip()


def _member_function(attr: object) -> object | None:
    """The function behind a class attribute a caller can use: a method, a static or class
    method, a property; ``None`` for data (fields, enum members, constants)."""
    if isinstance(attr, staticmethod | classmethod):
        return attr.__func__
    if isinstance(attr, property):
        return attr.fget
    if isinstance(attr, functools.cached_property):
        return attr.func
    return attr if inspect.isfunction(attr) else None


def _public_members(cls: type) -> list[tuple[str, str]]:
    """``(qualified name, name)`` of each public method and property a caller reaches on
    ``cls``: those defined on it and on its bases inside Tether (a private base's methods
    are as public as the class's own)."""
    members = []
    for klass in cls.__mro__:
        if not klass.__module__.startswith("tether."):
            continue
        for name, attr in vars(klass).items():
            if not name.startswith("_") and _member_function(attr) is not None:
                members.append((f"{klass.__module__}.{klass.__qualname__}.{name}", name))
    return members


def _member_doc(cls: type, name: str) -> str:
    """The docstring of ``cls.name``, its own or, for a method implementing one of a base
    the class declares (a protocol, an ABC), the first found along the MRO."""
    for klass in cls.__mro__:
        function = _member_function(vars(klass).get(name))
        if function is not None and (getattr(function, "__doc__", None) or "").strip():
            return str(function.__doc__).strip()
    return ""


def _undocumented(package: str) -> list[str]:
    module = importlib.import_module(package)
    missing = []
    for name in module.__all__:
        value = getattr(module, name)
        if inspect.isclass(value):
            if not _own_class_doc(value):
                missing.append(f"{package}.{name}")
            missing += [qualified for qualified, member in _public_members(value)
                        if not _member_doc(value, member)]
        elif inspect.isroutine(function := inspect.unwrap(value)):
            if not (function.__doc__ or "").strip():
                missing.append(f"{package}.{name}")
        elif name not in _commented_names():
            # A constant or a type alias (``Callable[...]``, ``Literal[...]``) cannot
            # carry a docstring: a ``#:`` comment above its definition is its doc.
            missing.append(f"{package}.{name}")
    return missing


def _commented(text: str) -> set[str]:
    """Names a module's source assigns at top level with a ``#:`` comment on the line
    above (the form Sphinx's autodoc reads as a constant's docstring)."""
    found = set()
    lines = text.splitlines()
    for node in ast.parse(text).body:
        targets = (node.targets if isinstance(node, ast.Assign)
                   else [node.target] if isinstance(node, ast.AnnAssign) else [])
        above = lines[node.lineno - 2].lstrip() if node.lineno > 1 else ""
        if above.startswith("#:"):
            found |= {t.id for t in targets if isinstance(t, ast.Name)}
    return found


@functools.cache
def _commented_names() -> frozenset[str]:
    """Every name some module of ``src/tether`` defines with a ``#:`` comment."""
    return frozenset(name for path in SRC.rglob("*.py") for name in _commented(path.read_text()))


@pytest.mark.parametrize("package", sorted(EXPORTS))
def test_every_public_name_has_a_docstring(package: str) -> None:
    missing = sorted(set(_undocumented(package)))
    assert missing == [], f"{len(missing)} public names without a docstring: {missing}"


def test_the_docstring_check_sees_what_is_missing() -> None:
    """The check above would pass on a package that exports nothing it can read: here it
    must catch a dataclass with only its generated signature, an enum without its own
    docstring, a method without one, and accept a method inheriting its protocol's."""

    class Documented(Protocol):
        def call(self) -> None:
            """Call it."""

    @dataclasses.dataclass
    class Bare:
        field: int = 0

        def method(self) -> None:
            pass

    class Colour(enum.Enum):
        RED = "red"

    class Implements(Documented):
        """Implements ``Documented``."""

        def call(self) -> None:
            pass

    Bare.__module__ = Colour.__module__ = Implements.__module__ = "tether.fake"
    assert _own_class_doc(Bare) == "" and _own_class_doc(Colour) == ""
    assert [name for _, name in _public_members(Bare)] == ["method"]
    assert _member_doc(Bare, "method") == ""
    assert _member_doc(Implements, "call") == "Call it."
    assert _member_doc(Documented, "call") == "Call it."
    assert _commented("#: Said.\nA = 1\n# not a doc\nB = 2\nC: int = 3\n#: Also.\n"
                      "D: int = 4\n\n#: Not above E.\n\nE = 5\n") == {"A", "D"}
