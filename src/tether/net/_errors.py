"""The guarded HTTP client's errors, placed in Tether's tree (see ``tether.core``)."""

from __future__ import annotations

from typing import Any

from ..core import ToolError


class URLRefusedError(ToolError):
    """A URL or the address it resolves to is not allowed: nothing was sent.

    ``reason`` names the rule (``"loopback"``, ``"metadata"``, ``"not_allowlisted"``,
    ``"ambiguous_url"``, ...). Not retryable: the same request would be refused again.
    """

    def __init__(self, message: str, *, reason: str, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.reason = reason

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["reason"] = self.reason
        return data


class HttpRequestError(ToolError):
    """The request failed: connection refused or reset, timeout, response too large.

    Retryable when trying again may help (connection errors and timeouts).
    """


class HttpRetryLaterError(HttpRequestError):
    """The server answered 429 or 503: retry later, after ``retry_after`` seconds if it
    said (``Retry-After``). Retryable: the runtime's retry owner decides."""

    retryable = True

    def __init__(self, message: str, *, status_code: int, retry_after: float | None = None,
                 **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.status_code = status_code
        self.retry_after = retry_after

    def to_dict(self) -> dict[str, Any]:
        data = super().to_dict()
        data["status_code"] = self.status_code
        if self.retry_after is not None:
            data["retry_after"] = self.retry_after
        return data
