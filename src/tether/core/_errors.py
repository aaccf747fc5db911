"""Tether's errors: one tree, rooted at :class:`TetherError`.

::

    TetherError
    ├── UsageError                  the developer asked for something that cannot work
    │   ├── ConfigurationError      bad settings, model selection string, missing credential
    │   │   └── SealKeyError        the seal key is malformed, unreadable or open to others
    │   ├── AgentSpecError          an agent spec (MODULE:ATTR) that cannot be loaded
    │   ├── ToolDefinitionError     a function that cannot become a tool
    │   └── RunNotFoundError        no run with that id
    └── RunError                    something failed while a run was executing
        ├── ModelError              a model call failed (provider, model)
        │   ├── RateLimitError          retryable, honours ``retry_after``
        │   ├── TransientModelError     retryable: timeout, reset, 5xx, overloaded
        │   ├── FatalModelError         not retryable: auth, invalid request
        │   ├── ContextLengthError      the prompt does not fit: compact, then retry
        │   └── ModelBehaviorError      malformed, empty or truncated output; unknown tool
        ├── ToolError               a tool call failed (tool, call id)
        │   ├── ToolTimeoutError
        │   └── ToolUnavailableError    its circuit breaker is open
        ├── BudgetExceededError     a run budget (steps, tokens, cost, time) is spent
        ├── CallInDoubtError        a non-idempotent call may or may not have happened
        ├── SealedValueError        a journaled secret cannot be unsealed (no key, wrong key)
        └── StoreError              the journal could not be read or written
            ├── StoreLockedError        another process held the lock past the bound
            ├── StoreFullError          the disk (or the file size limit) is full
            ├── StoreReadOnlyError      the file, its directory or the store is read-only
            ├── StoreIOError            the operating system reported an I/O error
            ├── StoreNotFoundError      no database at the path a reader was given
            ├── StoreCorruptError
            ├── SchemaVersionError
            ├── ConcurrentWriteError    another writer appended to the same run
            ├── RunLeasedError          another process drives the run (a refusal)
            └── LeaseLostError          this process lost the run to another driver

Control signals are not failures and sit outside the tree: :class:`ModelRetry`
(a tool asks the model to try again with a message), :class:`ApprovalRequired` (a
call waits for a human's approval) and :class:`CallDeferred` (a call's result will
come from outside the run).

Every error says what happened (the message), where (``run_id``, ``step``, and
for models and tools their names), what the user can do (``hint``), and whether
trying again may help (``retryable``).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any


class TetherError(Exception):
    """Root of every error Tether raises."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        run_id: str | None = None,
        step: int | None = None,
        retryable: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.run_id = run_id
        self.step = step
        if retryable is not None:
            self.retryable = retryable
        #: Everything the journal recorded of this error, when it was read back from it.
        self.details: dict[str, Any] = {}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TetherError:
        """The error a journaled description (:meth:`to_dict`) stands for: of the class it
        names when that class is known, else a plain :class:`TetherError`; every field
        that was journaled stays in :attr:`details`."""
        target = _error_class(str(data.get("type") or "")) or TetherError
        message = str(data.get("message", ""))
        params = inspect.signature(target.__init__).parameters
        forwards = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        names = set(params) | ({"hint", "run_id", "step", "retryable"} if forwards else set())
        kwargs = {k: v for k, v in data.items() if k in names - {"self", "message"}}
        try:
            error = target(message, **kwargs)
        except TypeError:  # a class whose constructor needs more than was journaled
            error = TetherError(message, hint=data.get("hint"))
        error.details = dict(data)
        return error

    def __str__(self) -> str:
        where = []
        if self.run_id:
            where.append(f"run {self.run_id}")
        if self.step is not None:
            where.append(f"step {self.step}")
        text = self.message + (f" ({', '.join(where)})" if where else "")
        return text + (f"\n  hint: {self.hint}" if self.hint else "")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible description, as journaled in error events."""
        data: dict[str, Any] = {
            "type": type(self).__name__,
            "message": self.message,
            "retryable": self.retryable,
        }
        if self.hint:
            data["hint"] = self.hint
        return data


# --- developer misuse -------------------------------------------------------------


class UsageError(TetherError):
    """The developer asked for something that cannot work; fix the code or settings."""


class ConfigurationError(UsageError):
    """Settings, a model selection string or a credential are wrong or missing."""


class SealKeyError(ConfigurationError):
    """The key that seals redacted values is malformed, unreadable or open to others."""


class AgentSpecError(UsageError):
    """An agent spec such as ``examples.calculator:agent`` cannot be loaded."""


class ToolDefinitionError(UsageError):
    """A function cannot be turned into a tool."""


class RunNotFoundError(UsageError):
    """No run with this id exists in the store."""


# --- failures during a run --------------------------------------------------------


class RunError(TetherError):
    """Something failed while a run was executing."""


class ModelError(RunError):
    """A model call failed."""

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        status_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.provider = provider
        self.model = model
        self.status_code = status_code

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update(
            {k: v for k, v in (("provider", self.provider), ("model", self.model),
                               ("status_code", self.status_code)) if v is not None}
        )
        return data


class RateLimitError(ModelError):
    """The provider is rate-limiting us; ``retry_after`` seconds if it said so."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        return data


class TransientModelError(ModelError):
    """A failure that may pass: timeout, connection reset, 5xx, overloaded."""

    retryable = True


class FatalModelError(ModelError):
    """A failure that will not pass by retrying: bad credentials, invalid request."""


class ContextLengthError(ModelError):
    """The request does not fit the model's context window."""


class ModelBehaviorError(ModelError):
    """The model's output cannot be used: malformed, empty, truncated, or an unknown tool."""

    retryable = True

    def __init__(self, message: str, *, output: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.output = output


class ToolError(RunError):
    """A tool call failed."""

    def __init__(
        self, message: str, *, tool: str | None = None, call_id: str | None = None, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.tool = tool
        self.call_id = call_id


class ToolTimeoutError(ToolError):
    """A tool call ran past its timeout and was cancelled."""

    retryable = True


class ToolUnavailableError(ToolError):
    """A tool's circuit breaker is open: it is not being called for now."""

    retryable = True


class BudgetExceededError(RunError):
    """A run budget is spent; resume with a raised budget to continue."""

    def __init__(
        self, message: str, *, limit: str, used: float, allowed: float, **kwargs: Any
    ) -> None:
        super().__init__(message, **kwargs)
        self.limit = limit
        self.used = used
        self.allowed = allowed

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update({"limit": self.limit, "used": self.used, "allowed": self.allowed})
        return data


class CallInDoubtError(RunError):
    """A non-idempotent tool call has an intent but no result: it may have happened."""


class QuarantinedError(RunError):
    """A run was resumed ``max_recoveries`` times in a row without making progress (a
    model response or a tool outcome): whatever it does on recovery crashes the
    process, so it is not resumed again until released (``resume --release``)."""

    def __init__(self, message: str, *, recoveries: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.recoveries = recoveries

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["recoveries"] = self.recoveries
        return data


class SealedValueError(RunError):
    """A journaled value was sealed (it was redacted) and cannot be unsealed: there is
    no seal key, it is another key, or the event was altered. A resume that needs it
    stops the run as ``needs_attention``."""


class StoreError(RunError):
    """The journal could not be read or written."""


class StoreLockedError(StoreError):
    """Another process holds the database lock for too long."""

    retryable = True


class StoreFullError(StoreError):
    """The disk is full (or the file hit a size limit); nothing of the failed commit was
    written, every earlier commit is intact."""

    retryable = True


class StoreReadOnlyError(StoreError):
    """The store cannot be written: opened read-only, or a read-only file or mount."""


class StoreIOError(StoreError):
    """The operating system reported an I/O error while reading or writing the file."""


class StoreNotFoundError(StoreError):
    """There is no Tether database at the path given to a reader."""


class StoreCorruptError(StoreError):
    """The database file is not a valid Tether store."""


class SchemaVersionError(StoreError):
    """The database was written by a newer (or unknown) schema version."""


class ConcurrentWriteError(StoreError):
    """Another writer appended to the same run: this writer's view is stale."""


class RunLeasedError(StoreError):
    """Another process holds the run's lease: it is driving the run. A refusal, not a
    loss: nothing was written, and the run is safe in the other process's hands."""

    retryable = True

    def __init__(self, message: str, *, owner: str, expires_at: float, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.owner = owner
        self.expires_at = expires_at

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data.update({"owner": self.owner, "expires_at": self.expires_at})
        return data


class LeaseLostError(StoreError):
    """This process's lease on a run was taken over by another driver (its token moved
    on); nothing it tried to write was committed. Stop driving the run."""


# --- control signals ---------------------------------------------------------------


class ModelRetry(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a tool to send ``message`` back to the model and let it try again."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApprovalRequired(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a tool (or an approval-required toolset) before it does anything: the
    call needs a human's approval. The run stops as ``needs_attention`` naming the
    call; ``tether approve RUN_ID CALL_ID`` (or ``--deny``) decides, and the resumed
    run runs an approved call once, with ``ToolContext.approved`` set."""

    def __init__(self, message: str = "this call needs a human's approval") -> None:
        super().__init__(message)
        self.message = message


class CallDeferred(Exception):  # noqa: N818 - a signal, not an error
    """Raised by a tool that handed its work to the outside world (a human, a queue, a
    batch job): the call's result will be given later. The run stops as
    ``needs_attention`` naming the call; ``tether resolve RUN_ID CALL_ID --result ...``
    records the result, and the resumed run goes on. The call never runs again."""

    def __init__(self, message: str = "the call's result will come from outside") -> None:
        super().__init__(message)
        self.message = message


def _error_class(name: str) -> type[TetherError] | None:
    """The subclass of :class:`TetherError` called ``name`` (any module's), if any."""
    pending: list[type[TetherError]] = [TetherError]
    while pending:
        cls = pending.pop()
        if cls.__name__ == name:
            return cls
        pending.extend(cls.__subclasses__())
    return None
