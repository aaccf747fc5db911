"""Provider failures mapped onto Tether's error tree, shared by the HTTP providers.

Each provider catches its SDK's exceptions and hands status, body code and headers to
:func:`status_error`, so every provider classifies the same failure the same way:

===========================================  =========================================
what the provider said                        Tether error
===========================================  =========================================
429 (rate limit)                              :class:`RateLimitError` with ``retry_after``
429 with an out-of-credit code                :class:`FatalModelError`
408, 409, 425, 5xx, 529, "overloaded"         :class:`TransientModelError`
400/413/422 about the context window          :class:`ContextLengthError`
400, 401, 402, 403, 404, 422 and other 4xx    :class:`FatalModelError`
timeout, connection refused or reset          :class:`TransientModelError`
===========================================  =========================================
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Mapping

from ..core import (
    Clock,
    ContextLengthError,
    FatalModelError,
    ModelError,
    RateLimitError,
    SystemClock,
    TransientModelError,
)

_SYSTEM_CLOCK = SystemClock()

_CONTEXT_OVERFLOW = re.compile(
    r"context[ _-]?(length|window)|prompt is too long|too many tokens|maximum context"
    r"|exceeds? (the )?(model'?s? )?(context|max(imum)? (input|prompt))|input is too long",
    re.IGNORECASE,
)
_CONTEXT_CODES = frozenset({"context_length_exceeded", "string_above_max_length"})
_QUOTA_CODES = frozenset({"insufficient_quota", "billing_hard_limit_reached", "billing_error"})
_TRANSIENT_TYPES = frozenset(
    {"overloaded_error", "api_error", "timeout_error", "server_error", "service_unavailable"}
)


def parse_retry_after(headers: Mapping[str, str], *, now: float | None = None,
                      clock: Clock | None = None) -> float | None:
    """Seconds to wait before retrying, from ``retry-after-ms`` or ``Retry-After``.

    ``Retry-After`` may be a number of seconds or an HTTP date (RFC 9110); a date in
    the past gives ``0.0``. Returns ``None`` when neither header is usable.

    Args:
        headers: Response headers; looked up case-insensitively.
        now: Current UTC time in seconds since the epoch (for HTTP dates).
        clock: Where to read the current time when ``now`` is not given (the
            Runner's injected clock); default the real time.
    """
    lowered = {k.lower(): v for k, v in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            return max(0.0, float(millis) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        return None
    current = now if now is not None else (clock or _SYSTEM_CLOCK).now()
    return max(0.0, when.timestamp() - current)


def is_context_overflow(message: str, code: str | None = None) -> bool:
    """Whether an error says the prompt does not fit the model's context window."""
    return (code is not None and code in _CONTEXT_CODES) or bool(_CONTEXT_OVERFLOW.search(message))


def status_error(
    *,
    provider: str,
    model: str,
    status: int,
    message: str,
    headers: Mapping[str, str],
    code: str | None = None,
    error_type: str | None = None,
    credential_var: str | None = None,
    clock: Clock | None = None,
) -> ModelError:
    """The Tether error for an error response from a provider's HTTP API.

    Args:
        provider: Provider name, for the message.
        model: Model name, for the message.
        status: HTTP status code (for errors inside a stream, the stream's status).
        message: The provider's error message.
        headers: Response headers (for ``Retry-After``).
        code: The machine-readable error code from the body, if any.
        error_type: The error type from the body, if any (``overloaded_error``...).
        credential_var: The environment variable holding this provider's key.
        clock: Where to read the time a ``Retry-After`` date is counted from.
    """
    where = f"{provider} model {model!r}"
    text = f"{where}: HTTP {status}: {message}" if message else f"{where}: HTTP {status}"
    key_hint = f"check {credential_var}" if credential_var else "check the API key"
    kinds = {k for k in (code, error_type) if k}
    if kinds & _QUOTA_CODES or status == 402:
        return FatalModelError(
            text,
            hint=f"the account behind {credential_var or 'the API key'} is out of credit "
            "or over its spending limit; add credit or raise the limit",
            provider=provider,
            model=model,
            status_code=status,
        )
    if status == 429 or kinds & {"rate_limit_error", "rate_limit_exceeded"}:
        retry_after = parse_retry_after(headers, clock=clock)
        wait = f" (provider asked to wait {retry_after:g}s)" if retry_after is not None else ""
        return RateLimitError(
            text + wait,
            retry_after=retry_after,
            hint="the runtime retries after the delay; if this persists, lower concurrency "
            "or ask the provider for a higher rate limit",
            provider=provider,
            model=model,
            status_code=status,
        )
    if status in (400, 413, 422) and (status == 413 or is_context_overflow(message, code)):
        return ContextLengthError(
            text,
            hint="the prompt does not fit the model's context window: compact the history, "
            "trim tool results, or choose a model with a larger window",
            provider=provider,
            model=model,
            status_code=status,
        )
    if status in (408, 409, 425) or status >= 500 or kinds & _TRANSIENT_TYPES:
        busy = "overloaded" if (status == 529 or "overloaded_error" in kinds) else "unavailable"
        return TransientModelError(
            text,
            hint=f"the provider is temporarily {busy}; the runtime retries with backoff",
            provider=provider,
            model=model,
            status_code=status,
        )
    if status == 401:
        hint = f"the API key was rejected: {key_hint}"
    elif status == 403:
        hint = f"the API key is not allowed to use this model or endpoint: {key_hint}"
    elif status == 404:
        hint = "no such model or endpoint for this key: check the model name and base URL"
    else:
        hint = "the provider rejected the request; the message above says why"
    return FatalModelError(text, hint=hint, provider=provider, model=model, status_code=status)


def connection_error(
    *, provider: str, model: str, base_url: str, timed_out: bool, detail: str
) -> TransientModelError:
    """The Tether error for a request that got no response at all."""
    what = "timed out" if timed_out else "could not connect"
    hint = (
        "the runtime retries; raise ModelSettings.timeout_s if calls are legitimately slow"
        if timed_out
        else f"check that {base_url} is reachable (server running, URL and proxy settings right)"
    )
    return TransientModelError(
        f"{provider} model {model!r}: request to {base_url} {what}: {detail}",
        hint=hint,
        provider=provider,
        model=model,
    )


def stream_error(
    *,
    provider: str,
    model: str,
    message: str,
    code: str | None = None,
    error_type: str | None = None,
    credential_var: str | None = None,
) -> ModelError:
    """The Tether error for an error event inside a stream that began with HTTP 200.

    The body's type or code decides: rate limits and context overflows keep their
    meaning, anything else (``overloaded_error``, ``api_error``...) is transient.
    """
    kinds = {k for k in (code, error_type) if k}
    if kinds & {"rate_limit_error", "rate_limit_exceeded"}:
        status = 429
    elif kinds & {"overloaded_error"}:
        status = 529
    elif is_context_overflow(message, code):
        status = 400
    elif kinds & {"invalid_request_error", "authentication_error", "permission_error"}:
        status = 400
    else:
        status = 500
    error = status_error(
        provider=provider,
        model=model,
        status=status,
        message=message,
        headers={},
        code=code,
        error_type=error_type,
        credential_var=credential_var,
    )
    error.message = error.message.replace(f"HTTP {status}", "error event in the stream", 1)
    error.args = (error.message,)
    error.status_code = None
    return error
