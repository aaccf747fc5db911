"""Failure policies: retry with backoff, timeouts, repair budgets, breaker settings.

The runtime is the single retry owner: providers make one attempt per call (their
SDKs' retries are off) and every attempt the runtime makes is journaled.

What to do after a failed model attempt is decided here by a pure function,
:func:`after_model_failure`, of plain values (the error, the attempt number folded
from the journal, whether a fallback follows, the breaker's state, the time left):
it answers :class:`Retry` (commit a ``retry`` event, sleep ``delay_s``),
:class:`MoveOn` (commit a ``fallback`` event, try the next model) or :class:`GiveUp`.
The caller does the I/O.
"""

from __future__ import annotations

import random
from collections.abc import Container, Mapping
from dataclasses import dataclass, field

from ..core import (
    ContextLengthError,
    ModelBehaviorError,
    ModelError,
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
        honour_retry_after: Wait what an error's ``Retry-After`` asks (a rate limit, a
            tool's 429 or 503; capped by
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
        # A rate limit, or any retryable error that says when (a tool's 429/503).
        retry_after = getattr(error, "retry_after", None)
        if self.honour_retry_after and isinstance(retry_after, int | float):
            return min(max(0.0, float(retry_after)), self.max_delay_s)
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
        max_response_chars: Longest answer (text and tool-call arguments, in
            characters) taken from any model; a longer one is a ``ModelBehaviorError``
            (``misbehavior``), never the run's output.
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
    max_response_chars: int = 1_000_000


# --- decisions after a failed model attempt (pure: no clock, no I/O) -----------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Retry:
    """Commit a ``retry`` event for ``attempt``, then sleep ``delay_s`` and try again."""

    attempt: int
    delay_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class MoveOn:
    """Commit a ``fallback`` event and try the next model of the chain."""

    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GiveUp:
    """The call fails with the error; ``deadline``: because the run's deadline would
    pass before the next attempt (the run fails with ``budget_exceeded``)."""

    deadline: bool = False


Decision = Retry | MoveOn | GiveUp


def after_model_failure(
    error: ModelError,
    *,
    attempt: int,
    retry: RetryPolicy,
    rng: random.Random,
    has_fallback: bool,
    breaker_open: bool = False,
    remaining_s: float | None = None,
    minimum_delay_s: float = 0.0,
) -> Decision:
    """What to do after failed attempt number ``attempt`` (1-based, counted from the
    journal) of one model.

    Args:
        error: The classified failure.
        attempt: This attempt's number for this model in the current call.
        retry: The retry policy.
        rng: Source of jitter.
        has_fallback: Whether another model follows in the chain.
        breaker_open: Whether this model's breaker is open now (after this failure).
        remaining_s: Seconds before the run's deadline (None: no deadline).
        minimum_delay_s: Wait at least this long (an open breaker's time to its probe).
    """
    if isinstance(error, RateLimitError) and has_fallback:
        return MoveOn(reason="rate limited")
    if breaker_open and has_fallback:
        return MoveOn(reason="circuit breaker opened")
    if not error.retryable or attempt >= retry.attempts_for(error):  # a refusal is final
        if has_fallback:
            reason = "retries spent" if error.retryable else f"{error_class(error)} error"
            return MoveOn(reason=reason)
        return GiveUp()
    delay = max(minimum_delay_s, retry.delay(attempt, error, rng))
    if remaining_s is not None and delay >= remaining_s:
        return GiveUp(deadline=True)
    return Retry(attempt=attempt, delay_s=delay)


# --- decisions around a model's circuit breaker and a tool's failure (pure) ----------


@dataclass(frozen=True, slots=True, kw_only=True)
class Poll:
    """Another caller is probing the half-open breaker: sleep ``delay_s`` and look again
    (no attempt is spent, nothing is journaled)."""

    delay_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class AwaitProbe:
    """The breaker is open and no model follows: wait for its probe like any retry
    (an attempt, decided by :func:`after_model_failure` with this minimum delay)."""

    minimum_delay_s: float


#: How often a caller refused during another caller's half-open probe looks again.
PROBE_POLL_S = 0.05


def when_breaker_refuses(
    *, has_fallback: bool, half_open: bool, retry_in_s: float,
) -> MoveOn | Poll | AwaitProbe:
    """What to do when a model's breaker refuses a call.

    Args:
        has_fallback: Whether another model follows in the chain.
        half_open: Whether the breaker is half-open (another caller's probe is out).
        retry_in_s: Seconds until the open breaker lets a probe through.
    """
    if has_fallback:
        return MoveOn(reason="circuit breaker open")
    if half_open:
        return Poll(delay_s=PROBE_POLL_S)
    return AwaitProbe(minimum_delay_s=retry_in_s)


def after_tool_failure(
    error: BaseException,
    *,
    attempt: int,
    retry: RetryPolicy,
    rng: random.Random,
    idempotent: bool,
    breaker_open: bool,
    remaining_s: float | None,
) -> Retry | GiveUp:
    """What to do after failed attempt number ``attempt`` (1-based, counted from the
    journal) of a tool call: retry it after a delay, or report the failure.

    Only an idempotent tool is retried (a second attempt at another call could repeat
    its effect), within its class's attempts, while its breaker is not open and the
    wait ends before the run's deadline. The jitter is drawn in every case, so a seeded
    ``rng`` gives the same delays whatever was decided before.
    """
    delay = retry.delay(attempt, error, rng)
    if not idempotent or attempt >= retry.attempts_for(error) or breaker_open:
        return GiveUp()
    if remaining_s is not None and delay >= remaining_s:
        return GiveUp(deadline=True)
    return Retry(attempt=attempt, delay_s=delay)


def tool_fallback(
    error_type: str | None, *, fallback: str | None, available: Container[str],
    already_fallen_back: bool,
) -> str | None:
    """The tool a failed call falls back to, or None.

    Args:
        error_type: The ``type`` of the call's error (``ModelRetry`` is not a failure:
            the tool worked and asks the model to change its request).
        fallback: The failed tool's ``fallback``.
        available: The names of the agent's tools.
        already_fallen_back: Whether the failed tool is itself a fallback (one hop only).
    """
    if already_fallen_back or fallback is None or fallback not in available:
        return None
    return None if error_type == "ModelRetry" else fallback


def resume_wait(not_before: float | None, now: float) -> float:
    """Seconds still to wait before the next attempt of a model whose last ``retry``
    event asked to wait until ``not_before`` (its ``ts`` plus ``delay_s``, wall clock):
    after a crash in the middle of a wait, the resumed run waits out the rest."""
    return 0.0 if not_before is None else max(0.0, not_before - now)


def truncation_note(output_tokens: int, max_tokens: int | None) -> str:
    """What the model is told after an answer that stopped at the token limit."""
    limit = f" of {max_tokens} tokens" if max_tokens else ""
    written = f" after {output_tokens} tokens" if output_tokens else ""
    return (f"[Your previous answer was cut off at the output limit{limit}{written} and "
            "was not delivered. Answer again, much more briefly: give only what is asked, "
            "or call a tool if you need one.]")
