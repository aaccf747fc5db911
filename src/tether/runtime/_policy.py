"""Failure policies: retry with backoff, timeouts, repair budgets, breaker settings.

The runtime is the single retry owner: providers make one attempt per call (their
SDKs' retries are off) and every attempt the runtime makes is journaled.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..core import (
    ContextLengthError,
    ModelBehaviorError,
    RateLimitError,
    StoreLockedError,
    TetherError,
    ToolTimeoutError,
    TransientModelError,
)


def error_class(error: BaseException) -> str:
    """The taxonomy class of an error, as journaled and as keys of per-class settings:
    ``rate_limit``, ``transient``, ``context_length``, ``misbehavior``, ``fatal``."""
    if isinstance(error, RateLimitError):
        return "rate_limit"
    if isinstance(error, TransientModelError | ToolTimeoutError | StoreLockedError):
        return "transient"
    if isinstance(error, ContextLengthError):
        return "context_length"
    if isinstance(error, ModelBehaviorError):
        return "misbehavior"
    if isinstance(error, TetherError) and error.retryable:
        return "transient"
    if isinstance(error, ConnectionError | TimeoutError):
        return "transient"
    return "fatal"


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped, with a number of attempts per class.

    Args:
        max_attempts: Attempts in all (the first one included) for each error class
            that is retried; a class missing here is not retried.
        base_delay_s: The first backoff ceiling; each retry doubles it.
        max_delay_s: The ceiling of any one backoff.
        honour_retry_after: Wait what a rate limit's ``Retry-After`` asks (capped by
            ``max_delay_s`` and the run's deadline) instead of the jittered backoff.
    """

    max_attempts: Mapping[str, int] = field(
        default_factory=lambda: {"rate_limit": 6, "transient": 4, "misbehavior": 3}
    )
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    honour_retry_after: bool = True

    def attempts_for(self, error: BaseException) -> int:
        """How many attempts in all an error of this class allows (1: no retry)."""
        return max(1, self.max_attempts.get(error_class(error), 1))

    def delay(self, attempt: int, error: BaseException, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if (self.honour_retry_after and isinstance(error, RateLimitError)
                and error.retry_after is not None):
            return min(max(0.0, error.retry_after), self.max_delay_s)
        ceiling = min(self.max_delay_s, self.base_delay_s * 2 ** (attempt - 1))
        return rng.uniform(0.0, ceiling)


@dataclass(frozen=True, kw_only=True)
class BreakerSettings:
    """When a circuit breaker opens and when it lets a probe through.

    Args:
        failure_threshold: Consecutive failures that open the breaker.
        reset_timeout_s: Seconds an open breaker waits before a half-open probe.
    """

    failure_threshold: int = 5
    reset_timeout_s: float = 30.0


@dataclass(frozen=True, kw_only=True)
class Policy:
    """How a run reacts to failure.

    Args:
        model_retry: Retries of model calls.
        tool_retry: Retries of idempotent tools' calls (non-idempotent ones are never
            retried automatically: a second attempt could repeat a side effect).
        model_timeout_s: Seconds one model attempt may take.
        tool_timeout_s: Seconds one tool call may take, unless the tool sets its own.
        tool_stop_grace_s: Seconds a call the run gives up on (timed out, interrupted)
            has to stop after its ``cancel_event`` is set. One that ends by then has a
            known outcome; one still running (or an async one cancelled mid-call) is
            *in doubt* and follows its tool's policy.
        max_consecutive_repairs: Model responses in a row that may be malformed
            (bad JSON, unknown tool, schema violation, empty or truncated output).
        max_repairs: Malformed responses allowed in the whole run; never reset.
        breaker: Settings of the circuit breakers of models and tools.
    """

    model_retry: RetryPolicy = field(default_factory=RetryPolicy)
    tool_retry: RetryPolicy = field(
        default_factory=lambda: RetryPolicy(max_attempts={"transient": 3}, base_delay_s=0.2)
    )
    model_timeout_s: float | None = 120.0
    tool_timeout_s: float | None = None
    tool_stop_grace_s: float = 2.0
    max_consecutive_repairs: int = 3
    max_repairs: int = 10
    breaker: BreakerSettings = field(default_factory=BreakerSettings)
