"""Calling the model: the runtime's retries, timeouts, circuit breakers and fallbacks.

For each model of the chain (the agent's model, then its fallbacks): skip it while its
breaker is open; otherwise attempt the call, retrying retryable failures with backoff
until the error class's attempts are spent. A rate limit moves on to the next model
at once when there is one. Every retry, fallback and breaker transition is committed
to the journal before the runtime acts on it, so a crash cannot reset a count.

A model is known by its *endpoint* as well as its name (``model:<provider>:<base
URL>:<model>``): breakers, attempt counts and fallback records of two servers serving
the same model name are kept apart. Whatever a model raises is classified here, inside
the retry owner, and every call that ends in failure is journaled (``model.request``
and ``model.error``) with the ``run.failed`` that follows; a rejected answer that is
retried is journaled with its ``retry``.
"""

from __future__ import annotations

import asyncio
import urllib.parse
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core import (
    BudgetExceededError,
    ContextLengthError,
    Event,
    EventType,
    FatalModelError,
    ModelBehaviorError,
    ModelError,
    TetherError,
    TransientModelError,
)
from ..models import Model, ModelRequest, ModelResponse
from ..models._answer import TruncatedResponseError
from ._call import CallContext, commit_transition, failure_event
from ._compaction import compact
from ._policy import (
    AwaitProbe,
    GiveUp,
    MoveOn,
    Poll,
    after_model_failure,
    error_class,
    resume_wait,
    when_breaker_refuses,
)
from ._state import RunState


def _public_url(url: str) -> str:
    """``url`` without credentials (``user:password@``), for keys and journal records."""
    if "@" not in url:
        return url
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def model_label(model: Model) -> str:
    """``provider:base_url:model`` (``provider:model`` for a model without an endpoint)."""
    base = getattr(model, "base_url", None)
    if isinstance(base, str) and base:
        return f"{model.provider}:{_public_url(base)}:{model.model_name}"
    return f"{model.provider}:{model.model_name}"


def model_key(model: Model) -> str:
    """The breaker and attempt-count key of a model: ``model:`` and its label."""
    return f"model:{model_label(model)}"


def chain_keys(models: Sequence[Model]) -> list[str]:
    """The keys of a fallback chain. Two models without an endpoint and with the same
    name (two scripted models, say) are told apart by their place in the chain."""
    keys: list[str] = []
    for index, model in enumerate(models):
        key = model_key(model)
        keys.append(f"{key}#{index + 1}" if key in keys else key)
    return keys


class ChainExhaustedError(TransientModelError):
    """Every model of the chain failed or is unavailable."""


#: Characters of a rejected or failed answer kept in ``model.error``.
OUTPUT_KEPT = 20_000


@dataclass(slots=True)
class _Trace:
    """What one call tried: the model attempted last, and the models whose last
    attempt failed without a ``retry`` event (moved on from, or given up)."""

    model: Model
    final: set[str] = field(default_factory=set)

    def attempts(self, state: RunState, keys: Sequence[str]) -> dict[str, int]:
        counts = {k: state.model_attempts.get(k, 0) + (k in self.final) for k in keys}
        return {k: n for k, n in counts.items() if n}


def _error_events(
    ctx: CallContext, request: ModelRequest, model: Model, key: str, error: TetherError,
    attempts: dict[str, int],
) -> list[Event]:
    """``model.request`` and ``model.error`` for a call (or a rejected answer) that failed."""
    error.step = request.step
    payload: dict[str, Any] = {
        "provider": model.provider, "model": model.model_name, "model_key": key,
        "error": error.to_dict(), "error_class": error_class(error), "attempts": attempts,
    }
    output = getattr(error, "output", None)
    if isinstance(output, str) and output:
        payload["output"] = output[:OUTPUT_KEPT]
    span = f"s{request.step}.m"
    return [*ctx.model_request_events(request, model),
            ctx.journal.event(EventType.MODEL_ERROR, request.step, payload, span=span)]


#: Fits the prompt back into the context window (an agent with memory rebuilds it
#: under a lower budget); True if it did and the step may ask again.
Shrink = Callable[[int, ContextLengthError], Awaitable[bool]]


async def call_model(
    ctx: CallContext, chain: Sequence[Model], request: ModelRequest, *,
    shrink: Shrink | None = None,
) -> tuple[Model, ModelResponse, float] | None:
    """One answer to ``request`` from the first model of ``chain`` that gives one.

    Returns the model that answered, its response, and the latency of the successful
    attempt in milliseconds; or None when there is no answer this time: the context
    was shrunk (``shrink``) or compacted (ask again), or the call failed and the run's
    failure is committed (``model.request``, ``model.error`` and ``run.failed`` in one
    transaction).
    """
    keys = chain_keys(chain)
    trace = _Trace(model=chain[0])
    state = ctx.journal.state
    try:
        return await _call_chain(ctx, chain, request, keys, trace)
    except ContextLengthError as e:
        if shrink is not None:  # rebuild the prompt under a lower budget
            if await shrink(request.step, e):
                return None
        elif not state.compacted and await compact(ctx.journal, request.step, e):
            return None
        reason = "context_length_exceeded"
        error: TetherError = e
    except BudgetExceededError as e:
        reason, error = "budget_exceeded", e
    except TetherError as e:
        reason, error = "model_error", e
    key = keys[list(chain).index(trace.model)]
    attempts = trace.attempts(state, keys)
    events = _error_events(ctx, request, trace.model, key, error, attempts)
    await ctx.journal.commit([*events, failure_event(
        ctx.journal, error, reason, request.step,
        **({"tried": attempts} if reason == "model_error" and attempts else {}))])
    return None


async def _call_chain(
    ctx: CallContext, chain: Sequence[Model], request: ModelRequest, keys: list[str],
    trace: _Trace,
) -> tuple[Model, ModelResponse, float]:
    last_error: ModelError | None = None
    for index, model in enumerate(chain):
        following = chain[index + 1] if index + 1 < len(chain) else None
        try:
            return await _call_with_retries(ctx, model, keys[index], request, trace,
                                            has_fallback=following is not None)
        except _MoveOn as move:
            last_error = move.error
            if following is not None:
                await ctx.journal.commit([ctx.journal.event(EventType.FALLBACK, request.step, {
                    "from_model": model_label(model), "to_model": model_label(following),
                    "from_key": keys[index], "to_key": keys[index + 1],
                    "reason": move.reason, "error": move.error.to_dict(),
                })])
    if last_error is None:  # pragma: no cover - a chain always has a model
        raise FatalModelError("the agent has no model")
    raise last_error


class _MoveOn(Exception):  # noqa: N818 - internal control flow, never escapes
    def __init__(self, error: ModelError, reason: str) -> None:
        self.error = error
        self.reason = reason


async def _call_with_retries(
    ctx: CallContext, model: Model, key: str, request: ModelRequest, trace: _Trace,
    *, has_fallback: bool,
) -> tuple[Model, ModelResponse, float]:
    breaker = ctx.breakers.get(key, ctx.policy.breaker)
    clock, journal, step = ctx.clock, ctx.journal, request.step
    # After a crash in the middle of a retry's wait, wait out the rest first.
    wait = resume_wait(journal.state.model_not_before.get(key), clock.now())
    if wait > 0:
        ctx.check_deadline(wait, TransientModelError("waiting out a journaled retry"))
        await clock.sleep(wait)
    while True:
        allowed, transition = breaker.before_call(clock.monotonic())
        await commit_transition(journal, transition, step)
        if not allowed:
            wait = breaker.retry_in(clock.monotonic())
            error = ChainExhaustedError(
                f"{model_label(model)} is not being called: its circuit breaker is open "
                f"(next probe in {wait:.1f} s)",
                hint="configure a fallback model, or wait for the provider to recover",
                provider=model.provider, model=model.model_name,
            )
            refusal = when_breaker_refuses(has_fallback=has_fallback,
                                           half_open=breaker.state == "half_open",
                                           retry_in_s=wait)
            if isinstance(refusal, MoveOn):
                raise _MoveOn(error, refusal.reason)
            if isinstance(refusal, Poll):
                # Another run is probing: wait for its verdict, which costs no attempt.
                ctx.check_deadline(refusal.delay_s, error)
                await clock.sleep(refusal.delay_s)
            elif isinstance(refusal, AwaitProbe):  # like any retry (an attempt)
                await _decide(ctx, model, key, request, error, trace, has_fallback=False,
                              minimum=refusal.minimum_delay_s)
            continue
        trace.model = model
        started = clock.monotonic()
        try:
            response = await _attempt(ctx, model, request)
        except TruncatedResponseError as cut:
            # The model answered, at length: show it its answer and ask for a shorter
            # one (the repair path), rather than sending the same prompt again.
            response = cut.response
        except ContextLengthError:
            # The provider answered: it is up.
            await commit_transition(journal, breaker.on_success(), step)
            raise
        except ModelError as error:
            await commit_transition(
                journal, breaker.on_failure(clock.monotonic(), type(error).__name__), step)
            await _decide(ctx, model, key, request, error, trace, has_fallback=has_fallback,
                          breaker_open=breaker.state == "open")
            continue
        except BaseException:
            breaker.release()  # deadline, cancellation: the probe ended undecided
            raise
        await commit_transition(journal, breaker.on_success(), step)
        return model, response, (clock.monotonic() - started) * 1000


async def _decide(
    ctx: CallContext, model: Model, key: str, request: ModelRequest, error: ModelError,
    trace: _Trace, *, has_fallback: bool, breaker_open: bool = False, minimum: float = 0.0,
) -> None:
    """Act on :func:`after_model_failure`: journal a retry and wait, or raise."""
    attempt = ctx.journal.state.model_attempts.get(key, 0) + 1
    decision = after_model_failure(
        error, attempt=attempt, retry=ctx.policy.model_retry, rng=ctx.rng,
        has_fallback=has_fallback, breaker_open=breaker_open, remaining_s=ctx.remaining_s(),
        minimum_delay_s=minimum,
    )
    if isinstance(decision, MoveOn):
        trace.final.add(key)
        raise _MoveOn(error, decision.reason) from error
    if isinstance(decision, GiveUp):
        trace.final.add(key)
        if decision.deadline:
            raise ctx.deadline_error() from error
        raise error
    events: list[Event] = []
    if isinstance(error, ModelBehaviorError):  # a rejected answer: journal what it was
        events = _error_events(ctx, request, model, key, error, {key: attempt})
    events.append(ctx.journal.event(EventType.RETRY, request.step, {
        "target": "model", "model_key": key, "provider": model.provider,
        "model": model.model_name, "attempt": attempt, "error": error.to_dict(),
        "error_class": error_class(error), "delay_s": round(decision.delay_s, 4),
    }))
    await ctx.journal.commit(events)
    await ctx.clock.sleep(decision.delay_s)


_NEVER_CAUGHT = (KeyboardInterrupt, SystemExit, GeneratorExit)


def classify(model: Model, error: BaseException) -> TetherError | None:
    """The Tether error for whatever a model raised; None for what must propagate
    (interrupts, exits, and the cancellation of the task itself)."""
    if isinstance(error, _NEVER_CAUGHT):
        return None
    if isinstance(error, asyncio.CancelledError):
        task = asyncio.current_task()
        if task is None or task.cancelling():
            return None
    if isinstance(error, BaseExceptionGroup):
        leaves = list(_leaves(error))
        if any(isinstance(leaf, _NEVER_CAUGHT) for leaf in leaves):
            return None
        known = [leaf for leaf in leaves if isinstance(leaf, TetherError)]
        return classify(model, known[0] if known else leaves[0])
    if isinstance(error, TetherError):
        return error
    where = f"{model_label(model)} raised {type(error).__name__}: {str(error)[:500]}"
    if isinstance(error, TimeoutError | ConnectionError):
        return TransientModelError(where, hint="the runtime retries",
                                   provider=model.provider, model=model.model_name)
    return FatalModelError(
        where,
        hint="the model's code (or its provider) failed in a way retrying will not fix; "
             "the traceback is lost here: reproduce it by calling model.complete directly",
        provider=model.provider, model=model.model_name,
    )


def _leaves(group: BaseExceptionGroup[BaseException]) -> list[BaseException]:
    found: list[BaseException] = []
    for inner in group.exceptions:
        found.extend(_leaves(inner) if isinstance(inner, BaseExceptionGroup) else [inner])
    return found


async def _attempt(ctx: CallContext, model: Model, request: ModelRequest) -> ModelResponse:
    """One attempt, bounded as a whole by the model timeout (the policy's or the
    request's, whichever is shorter) and the run's deadline; whatever the model
    raises or returns comes out classified."""
    policy = ctx.policy
    limits = [t for t in (policy.model_timeout_s, request.settings.timeout_s) if t]
    timeout = min(limits) if limits else None
    remaining = ctx.remaining_s()
    if remaining is not None:
        if remaining <= 0:
            raise ctx.deadline_error()
        timeout = remaining if timeout is None else min(timeout, remaining)
    try:
        attempt = ctx.attempt
        if timeout is None:
            response = await (model.complete(request) if attempt is None
                              else attempt(model, request))
        else:
            # asyncio.timeout, not wait_for: no extra task per call on the hot path.
            async with asyncio.timeout(timeout):
                response = await (model.complete(request) if attempt is None
                                  else attempt(model, request))
    except TimeoutError as e:
        if remaining is not None and timeout is not None and timeout >= remaining:
            raise ctx.deadline_error() from e
        raise TransientModelError(
            f"{model_label(model)} gave no complete answer within {timeout:g} s",
            hint="raise Policy.model_timeout_s if the model is slow but healthy",
            provider=model.provider, model=model.model_name,
        ) from e
    except TruncatedResponseError as e:  # an answer all the same: the same size cap
        _checked(model, e.response, policy.max_response_chars)
        raise
    except BaseException as e:
        error = classify(model, e)
        if error is None or error is e:
            raise
        raise error from e
    return _checked(model, response, policy.max_response_chars)


def _checked(model: Model, response: object, limit: int) -> ModelResponse:
    """``response`` if it is a usable :class:`ModelResponse` within the size cap."""
    where = model_label(model)
    if not isinstance(response, ModelResponse):
        raise FatalModelError(
            f"{where} returned a {type(response).__name__}, not a ModelResponse",
            hint="a Model's complete() must return tether.models.ModelResponse",
            provider=model.provider, model=model.model_name,
        )
    message = response.message
    size = len(message.content or "") + sum(len(c.arguments) + len(c.name)
                                            for c in message.tool_calls)
    if size > limit:
        raise ModelBehaviorError(
            f"{where} answered with {size:,} characters; Policy.max_response_chars is "
            f"{limit:,}",
            hint="a runaway generation: lower ModelSettings.max_tokens, or raise "
                 "Policy.max_response_chars if answers this long are expected",
            provider=model.provider, model=model.model_name,
            output=(message.content or "")[:2000],
        )
    return response
