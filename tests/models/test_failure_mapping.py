"""Classification of provider failures, independent of any SDK."""

from __future__ import annotations

import email.utils

import pytest

from tether.core import (
    ContextLengthError,
    FatalModelError,
    RateLimitError,
    TransientModelError,
)
from tether.models._failures import parse_retry_after, status_error, stream_error


def test_retry_after_seconds() -> None:
    assert parse_retry_after({"Retry-After": "20"}) == 20.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5


def test_retry_after_ms_wins() -> None:
    assert parse_retry_after({"retry-after-ms": "398", "retry-after": "1"}) == pytest.approx(0.398)


def test_retry_after_http_date() -> None:
    now = 1_800_000_000.0
    later = email.utils.formatdate(now + 30, usegmt=True)
    assert parse_retry_after({"Retry-After": later}, now=now) == pytest.approx(30.0)
    earlier = email.utils.formatdate(now - 30, usegmt=True)
    assert parse_retry_after({"Retry-After": earlier}, now=now) == 0.0


def test_retry_after_absent_or_garbage() -> None:
    assert parse_retry_after({}) is None
    assert parse_retry_after({"Retry-After": "soon"}) is None


@pytest.mark.parametrize(
    ("status", "message", "code", "error_type", "expected"),
    [
        (429, "slow down", "rate_limit_exceeded", None, RateLimitError),
        (429, "quota", "insufficient_quota", None, FatalModelError),
        (529, "Overloaded", None, "overloaded_error", TransientModelError),
        (500, "boom", None, "api_error", TransientModelError),
        (502, "bad gateway", None, None, TransientModelError),
        (408, "timeout", None, None, TransientModelError),
        (409, "conflict", None, None, TransientModelError),
        (400, "prompt is too long: 212345 tokens > 200000 maximum", None, None, ContextLengthError),
        (400, "anything", "context_length_exceeded", None, ContextLengthError),
        (
            400,
            "This model's maximum context length is 2048 tokens. However, you requested 3000",
            None,
            None,
            ContextLengthError,
        ),
        (413, "request too large", None, "request_too_large", ContextLengthError),
        (400, "bad tool schema", None, "invalid_request_error", FatalModelError),
        (401, "invalid x-api-key", None, "authentication_error", FatalModelError),
        (403, "no access", None, "permission_error", FatalModelError),
        (404, "no such model", None, "not_found_error", FatalModelError),
        (402, "billing", None, "billing_error", FatalModelError),
    ],
)
def test_status_classification(
    status: int, message: str, code: str | None, error_type: str | None, expected: type
) -> None:
    error = status_error(
        provider="openai", model="m", status=status, message=message, headers={},
        code=code, error_type=error_type, credential_var="OPENAI_API_KEY",
    )  # fmt: skip
    assert type(error) is expected
    assert error.status_code == status
    assert (error.provider, error.model) == ("openai", "m")
    assert error.hint
    assert error.retryable == (expected in (RateLimitError, TransientModelError))


def test_auth_errors_name_the_variable() -> None:
    error = status_error(
        provider="anthropic", model="m", status=401, message="invalid x-api-key", headers={},
        credential_var="ANTHROPIC_API_KEY",
    )  # fmt: skip
    assert "ANTHROPIC_API_KEY" in str(error)


def test_stream_errors_keep_their_meaning() -> None:
    overloaded = stream_error(provider="anthropic", model="m", message="Overloaded",
                              error_type="overloaded_error")  # fmt: skip
    assert isinstance(overloaded, TransientModelError) and overloaded.status_code is None
    limited = stream_error(
        provider="anthropic", model="m", message="x", error_type="rate_limit_error"
    )
    assert isinstance(limited, RateLimitError)
    assert "HTTP" not in limited.message


def test_a_retry_after_date_is_counted_from_the_injected_clock() -> None:
    from tether.testing import FakeClock

    # a clock years away from the real time: the wait is from it, not from time.time()
    clock = FakeClock(start=2_000_000_000.0)
    later = email.utils.formatdate(2_000_000_045.0, usegmt=True)
    assert parse_retry_after({"Retry-After": later}, clock=clock) == pytest.approx(45.0)
    clock.advance(40.0)
    assert parse_retry_after({"Retry-After": later}, clock=clock) == pytest.approx(5.0)
    clock.advance(100.0)
    assert parse_retry_after({"Retry-After": later}, clock=clock) == 0.0
    # an explicit ``now`` wins over the clock
    assert parse_retry_after({"Retry-After": later}, now=2_000_000_000.0,
                             clock=clock) == pytest.approx(45.0)


def test_a_rate_limit_error_waits_by_the_injected_clock() -> None:
    from tether.core import RateLimitError
    from tether.models._failures import status_error
    from tether.testing import FakeClock

    clock = FakeClock(start=1_500_000_000.0)
    later = email.utils.formatdate(1_500_000_012.0, usegmt=True)
    error = status_error(provider="p", model="m", status=429, message="slow down",
                         headers={"Retry-After": later}, clock=clock)
    assert isinstance(error, RateLimitError)
    assert error.retry_after == pytest.approx(12.0)
