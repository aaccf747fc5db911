"""The retry, fallback and breaker decisions as pure functions: no Runner, no clock, no
network, no store. Each test attacks one rule with plain values."""

from __future__ import annotations

import asyncio
import random

import pytest

from tether.core import (
    ContextLengthError,
    FatalModelError,
    ModelBehaviorError,
    RateLimitError,
    TransientModelError,
)
from tether.models import FunctionModel, OpenAIModel, ScriptedModel
from tether.runtime import Breaker, BreakerSettings, RetryPolicy
from tether.runtime._model_call import chain_keys, classify, model_key, model_label
from tether.runtime._policy import (
    PROBE_POLL_S,
    AwaitProbe,
    GiveUp,
    MoveOn,
    Poll,
    Retry,
    after_model_failure,
    after_tool_failure,
    resume_wait,
    tool_fallback,
    truncation_note,
    when_breaker_refuses,
)

POLICY = RetryPolicy(max_attempts={"rate_limit": 6, "transient": 4, "misbehavior": 3},
                     base_delay_s=0.5, max_delay_s=30.0)
TRANSIENT = TransientModelError("503")
LIMITED = RateLimitError("429", retry_after=7.0)


def decide(error: Exception = TRANSIENT, **kwargs: object) -> object:
    options: dict[str, object] = {"attempt": 1, "retry": POLICY, "rng": random.Random(3),
                                  "has_fallback": False}
    options.update(kwargs)
    return after_model_failure(error, **options)  # type: ignore[arg-type]


def test_a_transient_failure_is_retried_with_jittered_exponential_backoff() -> None:
    for attempt in (1, 2, 3):
        decision = decide(attempt=attempt)
        assert isinstance(decision, Retry) and decision.attempt == attempt
        assert 0.0 <= decision.delay_s <= 0.5 * 2 ** (attempt - 1)
    assert decide(attempt=4) == GiveUp()  # four attempts in all


def test_the_same_rng_gives_the_same_delays() -> None:
    first = [decide(attempt=a, rng=random.Random(11)) for a in (1, 2, 3)]
    again = [decide(attempt=a, rng=random.Random(11)) for a in (1, 2, 3)]
    assert first == again


def test_retry_after_is_honoured_and_capped() -> None:
    assert decide(LIMITED) == Retry(attempt=1, delay_s=7.0)
    assert decide(RateLimitError("429", retry_after=600.0)) == Retry(attempt=1, delay_s=30.0)
    no_honour = RetryPolicy(honour_retry_after=False, base_delay_s=0.5)
    decision = decide(LIMITED, retry=no_honour)
    assert isinstance(decision, Retry) and decision.delay_s <= 0.5


def test_a_rate_limit_moves_on_at_once_when_there_is_a_fallback() -> None:
    assert decide(LIMITED, has_fallback=True) == MoveOn(reason="rate limited")


def test_an_open_breaker_moves_on_only_with_a_fallback() -> None:
    assert decide(breaker_open=True, has_fallback=True) == MoveOn(reason="circuit breaker opened")
    assert isinstance(decide(breaker_open=True), Retry)


@pytest.mark.parametrize(("error", "reason"), [
    (TRANSIENT, "retries spent"),
    (FatalModelError("401"), "fatal error"),
    (ContextLengthError("too long"), "context_length error"),
])
def test_spent_or_unretryable_errors_move_on_to_the_fallback(error: Exception,
                                                             reason: str) -> None:
    attempt = 4 if error is TRANSIENT else 1
    assert decide(error, attempt=attempt, has_fallback=True) == MoveOn(reason=reason)


def test_a_fatal_error_without_fallback_gives_up_at_once() -> None:
    assert decide(FatalModelError("401")) == GiveUp()


def test_a_wait_past_the_deadline_gives_up_on_the_deadline() -> None:
    assert decide(LIMITED, remaining_s=6.9) == GiveUp(deadline=True)
    assert decide(LIMITED, remaining_s=7.1) == Retry(attempt=1, delay_s=7.0)
    assert decide(remaining_s=0.0) == GiveUp(deadline=True)


def test_an_open_breakers_wait_is_a_minimum() -> None:
    assert decide(minimum_delay_s=12.0) == Retry(attempt=1, delay_s=12.0)


def test_a_misbehaving_model_gets_its_own_attempts() -> None:
    assert isinstance(decide(ModelBehaviorError("empty"), attempt=2), Retry)
    assert decide(ModelBehaviorError("empty"), attempt=3) == GiveUp()
    refused = ModelBehaviorError("refused", retryable=False)
    assert decide(refused) == GiveUp()


def test_resume_waits_out_what_is_left_of_a_journaled_retry() -> None:
    assert resume_wait(None, 100.0) == 0.0
    assert resume_wait(103.5, 100.0) == 3.5
    assert resume_wait(99.0, 100.0) == 0.0


def test_the_truncation_note_says_the_limit_when_known() -> None:
    assert "of 256 tokens after 256 tokens" in truncation_note(256, 256)
    assert "cut off" in truncation_note(0, None) and "tokens" not in truncation_note(0, None)


# --- breakers: a state machine over an injected clock ----------------------------------


def test_a_breaker_opens_after_the_threshold_then_lets_one_probe_through() -> None:
    breaker = Breaker("model:x", BreakerSettings(failure_threshold=3, reset_timeout_s=10))
    for now in (0.0, 1.0):
        assert breaker.before_call(now) == (True, None)
        assert breaker.on_failure(now, "TransientModelError") is None
    opened = breaker.on_failure(2.0, "TransientModelError")
    assert opened is not None and (opened.from_state, opened.to_state) == ("closed", "open")
    assert breaker.before_call(11.9) == (False, None)
    assert breaker.retry_in(11.9) == pytest.approx(0.1)
    allowed, half = breaker.before_call(12.0)
    assert allowed and half is not None and half.to_state == "half_open"
    assert breaker.before_call(12.0) == (False, None)  # one probe at a time
    reopened = breaker.on_failure(12.5, "TransientModelError")
    assert reopened is not None and reopened.to_state == "open"
    assert breaker.before_call(22.4) == (False, None)  # the reset timeout starts again
    assert breaker.before_call(22.5)[0]
    closed = breaker.on_success()
    assert closed is not None and closed.to_state == "closed" and breaker.failures == 0


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = Breaker("model:x", BreakerSettings(failure_threshold=2))
    breaker.on_failure(0.0, "e")
    breaker.on_success()
    assert breaker.on_failure(1.0, "e") is None and breaker.state == "closed"


def test_a_probe_that_ends_undecided_lets_the_next_caller_probe() -> None:
    breaker = Breaker("model:x", BreakerSettings(failure_threshold=1, reset_timeout_s=1))
    breaker.on_failure(0.0, "e")
    assert breaker.before_call(1.0)[0]
    breaker.release()
    assert breaker.before_call(1.0)[0]


# --- keys: a model is its endpoint and its name ------------------------------------------


def _compatible(url: str, name: str = "qwen") -> OpenAIModel:
    return OpenAIModel(name, api_key="k", base_url=url, provider="openai-compatible")


def test_two_servers_of_one_model_name_have_two_keys() -> None:
    one, two = _compatible("http://127.0.0.1:8001/v1"), _compatible("http://127.0.0.1:8002/v1")
    assert model_key(one) == "model:openai-compatible:http://127.0.0.1:8001/v1:qwen"
    assert chain_keys([one, two]) == [model_key(one), model_key(two)]


def test_credentials_in_a_base_url_never_reach_a_key() -> None:
    model = _compatible("https://user:s3cret@llm.example:8443/v1")
    assert model_label(model) == "openai-compatible:https://llm.example:8443/v1:qwen"


def test_models_without_an_endpoint_are_told_apart_by_their_place() -> None:
    a, b = ScriptedModel(["x"]), ScriptedModel(["y"])
    assert chain_keys([a, b]) == ["model:scripted:scripted", "model:scripted:scripted#2"]


# --- classification of whatever a model raises --------------------------------------------


MODEL = FunctionModel(lambda request: "x", model_name="f")


class Odd(BaseException):
    pass


@pytest.mark.parametrize(("raised", "expected"), [
    (Odd(), FatalModelError),
    (ValueError("x"), FatalModelError),
    (TimeoutError(), TransientModelError),
    (ConnectionRefusedError(), TransientModelError),
    (ExceptionGroup("g", [ValueError("a"), LIMITED]), RateLimitError),
    (BaseExceptionGroup("g", [Odd()]), FatalModelError),
])
def test_everything_a_model_raises_becomes_a_tether_error(raised: BaseException,
                                                          expected: type) -> None:
    error = classify(MODEL, raised)
    assert type(error) is expected
    assert error is not None and error.message


@pytest.mark.parametrize("raised", [KeyboardInterrupt(), SystemExit(2), GeneratorExit(),
                                    BaseExceptionGroup("g", [KeyboardInterrupt()])])
def test_interrupts_and_exits_are_never_swallowed(raised: BaseException) -> None:
    assert classify(MODEL, raised) is None


async def test_a_cancellation_of_the_task_itself_propagates() -> None:
    async def cancelled() -> object:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await asyncio.sleep(1)
        except asyncio.CancelledError as e:
            return classify(MODEL, e)
        return "not cancelled"

    assert await asyncio.create_task(cancelled()) is None
    # a CancelledError a model raises without being cancelled is a fault of the model
    assert isinstance(classify(MODEL, asyncio.CancelledError()), FatalModelError)


# --- a tool's failure, and a model's breaker refusing -----------------------------------

TOOL_RETRY = RetryPolicy(max_attempts={"transient": 3}, base_delay_s=0.2)
REFUSED = ConnectionError("refused")


def tool_decision(error: BaseException = REFUSED,
                  **kwargs: object) -> object:
    options: dict[str, object] = {"attempt": 1, "retry": TOOL_RETRY, "rng": random.Random(3),
                                  "idempotent": True, "breaker_open": False,
                                  "remaining_s": None}
    options.update(kwargs)
    return after_tool_failure(error, **options)  # type: ignore[arg-type]


def test_only_an_idempotent_tool_is_retried_within_its_attempts() -> None:
    first = tool_decision()
    assert isinstance(first, Retry) and 0 <= first.delay_s <= 0.2
    assert tool_decision(idempotent=False) == GiveUp()
    assert isinstance(tool_decision(attempt=2), Retry)
    assert tool_decision(attempt=3) == GiveUp()
    assert tool_decision(ValueError("a bug")) == GiveUp()  # fatal: never retried


def test_a_tool_is_not_retried_through_an_open_breaker_or_past_the_deadline() -> None:
    assert tool_decision(breaker_open=True) == GiveUp()
    assert tool_decision(remaining_s=0.0) == GiveUp(deadline=True)
    slow = RetryPolicy(max_attempts={"transient": 3}, base_delay_s=0.0)
    assert tool_decision(retry=slow, remaining_s=0.001) == Retry(attempt=1, delay_s=0.0)


def test_the_jitter_is_drawn_whatever_is_decided() -> None:
    """A seeded run draws the same numbers whether a call was retried or not, so the
    delays after it do not depend on decisions before it."""
    rng = random.Random(5)
    tool_decision(idempotent=False, rng=rng)
    after = tool_decision(rng=rng)
    rng = random.Random(5)
    tool_decision(rng=rng)
    assert tool_decision(rng=rng) == after


def test_a_failed_call_falls_back_once_and_never_on_model_retry() -> None:
    tools = {"live", "cached"}
    assert tool_fallback("ConnectionError", fallback="cached", available=tools,
                         already_fallen_back=False) == "cached"
    assert tool_fallback("ModelRetry", fallback="cached", available=tools,
                         already_fallen_back=False) is None
    assert tool_fallback("ConnectionError", fallback="cached", available=tools,
                         already_fallen_back=True) is None
    assert tool_fallback("ConnectionError", fallback="gone", available=tools,
                         already_fallen_back=False) is None
    assert tool_fallback(None, fallback=None, available=tools,
                         already_fallen_back=False) is None


def test_a_refusing_breaker_moves_on_polls_a_probe_or_waits_for_its_own() -> None:
    assert when_breaker_refuses(has_fallback=True, half_open=True, retry_in_s=3) == \
        MoveOn(reason="circuit breaker open")
    assert when_breaker_refuses(has_fallback=False, half_open=True, retry_in_s=0) == \
        Poll(delay_s=PROBE_POLL_S)
    assert when_breaker_refuses(has_fallback=False, half_open=False, retry_in_s=12.5) == \
        AwaitProbe(minimum_delay_s=12.5)
