"""Calling the model: the runtime's retries, timeouts, circuit breakers and fallbacks.

For each model of the chain (the agent's model, then its fallbacks): skip it while its
breaker is open; otherwise attempt the call, retrying retryable failures with backoff
until the error class's attempts are spent. A rate limit moves on to the next model
at once when there is one. Every retry, fallback and breaker transition is committed
to the journal before the runtime acts on it, so a crash cannot reset a count.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ..core import (
    ContextLengthError,
    EventType,
    ModelError,
    RateLimitError,
    TransientModelError,
)
from ..models import Model, ModelRequest, ModelResponse
from ._policy import error_class

if TYPE_CHECKING:
    from ._execution import Execution


def model_key(model: Model) -> str:
    return f"model:{model.provider}:{model.model_name}"


def _name(model: Model) -> str:
    return f"{model.provider}:{model.model_name}"


class ChainExhaustedError(TransientModelError):
    """Every model of the chain failed or is unavailable."""


async def call_model(
    ex: Execution, request: ModelRequest
) -> tuple[Model, ModelResponse, float]:
    """One answer to ``request`` from the first model of the chain that gives one.

    Returns the model that answered, its response, and the latency of the successful
    attempt in milliseconds.

    Raises:
        ContextLengthError: the request does not fit (the caller compacts and retries).
        BudgetExceededError: the run's deadline passes while waiting to retry.
        ModelError: the last model's final error once every model is spent.
    """
    chain = ex.models
    last_error: ModelError | None = None
    for index, model in enumerate(chain):
        following = chain[index + 1] if index + 1 < len(chain) else None
        try:
            return await _call_with_retries(ex, model, request, has_fallback=following is not None)
        except _MoveOn as move:
            last_error = move.error
            if following is not None:
                await ex.commit([ex.event(EventType.FALLBACK, request.step, {
                    "from_model": _name(model), "to_model": _name(following),
                    "reason": move.reason, "error": move.error.to_dict(),
                })])
    assert last_error is not None
    raise last_error


class _MoveOn(Exception):  # noqa: N818 - internal control flow, never escapes
    def __init__(self, error: ModelError, reason: str) -> None:
        self.error = error
        self.reason = reason


#: How often a caller refused during another caller's half-open probe looks again.
PROBE_POLL_S = 0.05


async def _call_with_retries(
    ex: Execution, model: Model, request: ModelRequest, *, has_fallback: bool
) -> tuple[Model, ModelResponse, float]:
    key = model_key(model)
    breaker = ex.runner.breakers.get(key, ex.agent.policy.breaker)
    policy = ex.agent.policy
    clock = ex.runner.clock
    while True:
        allowed, transition = breaker.before_call(clock.monotonic())
        if transition:
            await ex.commit([ex.event(EventType.BREAKER, request.step, transition.payload())])
        if not allowed:
            wait = breaker.retry_in(clock.monotonic())
            error = ChainExhaustedError(
                f"{_name(model)} is not being called: its circuit breaker is open "
                f"(next probe in {wait:.1f} s)",
                hint="configure a fallback model, or wait for the provider to recover",
                provider=model.provider, model=model.model_name,
            )
            if has_fallback:
                raise _MoveOn(error, "circuit breaker open")
            if breaker.state == "half_open":
                # Another run is probing: wait for its verdict, which costs no attempt.
                ex.check_deadline(PROBE_POLL_S, error)
                await asyncio.sleep(PROBE_POLL_S)
            else:  # open: wait for the probe like any retry (it counts as an attempt)
                await _retry_or_raise(ex, model, request, error, key, minimum=wait)
            continue
        started = clock.monotonic()
        try:
            response = await _attempt(ex, model, request)
        except ContextLengthError:
            transition = breaker.on_success()  # the provider answered: it is up
            if transition:
                await ex.commit([ex.event(EventType.BREAKER, request.step,
                                          transition.payload())])
            raise
        except ModelError as error:
            transition = breaker.on_failure(clock.monotonic(), type(error).__name__)
            if transition:
                await ex.commit([ex.event(EventType.BREAKER, request.step,
                                          transition.payload())])
            attempt = ex.state.model_attempts.get(key, 0) + 1
            if isinstance(error, RateLimitError) and has_fallback:
                raise _MoveOn(error, "rate limited") from error
            if breaker.state == "open" and has_fallback:
                raise _MoveOn(error, "circuit breaker opened") from error
            if attempt >= policy.model_retry.attempts_for(error) and has_fallback:
                reason = "retries spent" if error.retryable else f"{error_class(error)} error"
                raise _MoveOn(error, reason) from error
            await _retry_or_raise(ex, model, request, error, key)
            continue
        except BaseException:
            breaker.release()  # deadline, cancellation: the probe ended undecided
            raise
        transition = breaker.on_success()
        if transition:
            await ex.commit([ex.event(EventType.BREAKER, request.step, transition.payload())])
        return model, response, (clock.monotonic() - started) * 1000


async def _retry_or_raise(
    ex: Execution, model: Model, request: ModelRequest, error: ModelError, key: str,
    *, minimum: float = 0.0,
) -> None:
    """Journal a retry and wait its backoff, or raise ``error`` if its attempts are spent."""
    policy = ex.agent.policy.model_retry
    attempt = ex.state.model_attempts.get(key, 0) + 1
    if attempt >= policy.attempts_for(error):
        raise error
    delay = max(minimum, policy.delay(attempt, error, ex.runner.rng))
    ex.check_deadline(delay, error)
    await ex.commit([ex.event(EventType.RETRY, request.step, {
        "target": "model", "model_key": key, "provider": model.provider,
        "model": model.model_name, "attempt": attempt, "error": error.to_dict(),
        "error_class": error_class(error), "delay_s": round(delay, 4),
    })])
    await asyncio.sleep(delay)


async def _attempt(ex: Execution, model: Model, request: ModelRequest) -> ModelResponse:
    """One attempt, bounded by the model timeout and the run's deadline."""
    timeout = ex.agent.policy.model_timeout_s
    remaining = ex.remaining_s()
    if remaining is not None:
        if remaining <= 0:
            raise ex.deadline_error()
        timeout = remaining if timeout is None else min(timeout, remaining)
    if timeout is None:
        return await model.complete(request)
    try:
        # asyncio.timeout, not wait_for: no extra task per call on the hot path.
        async with asyncio.timeout(timeout):
            return await model.complete(request)
    except TimeoutError as e:
        if remaining is not None and timeout >= remaining:
            raise ex.deadline_error() from e
        raise TransientModelError(
            f"{_name(model)} gave no answer within {timeout:g} s",
            hint="raise Policy.model_timeout_s if the model is slow but healthy",
            provider=model.provider, model=model.model_name,
        ) from e

