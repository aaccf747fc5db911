"""The guarded HTTP client as a Tether tool."""

from __future__ import annotations

from typing import Any

from ..tools import Tool, ToolContext, tool
from ._client import GuardedHttp
from ._policy import IDEMPOTENT_METHODS


def http_tool(client: GuardedHttp, *, name: str = "http_request",
              idempotent: bool | None = None, timeout_s: float | None = None) -> Tool:
    """A tool that sends HTTP requests through ``client``.

    Args:
        client: The guarded client (its policy decides hosts, methods and credentials).
        name: The tool's name for the model.
        idempotent: Whether the runtime may run a call again (after a crash or a
            retryable failure). Default: only when every allowed method is idempotent.
            Non-idempotent methods carry the call's idempotency key either way; say
            ``True`` when the servers honour it.
        timeout_s: The tool's timeout for the runtime.
    """
    if idempotent is None:
        idempotent = client.policy.allowed_methods <= IDEMPOTENT_METHODS
    methods = ", ".join(sorted(client.policy.allowed_methods))

    async def http_request(url: str, ctx: ToolContext, method: str = "GET",
                           headers: dict[str, str] | None = None, body: str | None = None,
                           json_body: Any = None) -> dict[str, Any]:
        """Send an HTTP request and return the status and the body (JSON parsed, text
        possibly cut, binary by reference).

        Args:
            url: An absolute http(s) URL.
            method: The HTTP method.
            headers: Extra request headers (credentials are added automatically).
            body: A raw request body.
            json_body: A JSON request body (instead of ``body``).
            ctx: The call's context (not shown to the model).
        """
        result = await client.request(method, url, headers=headers, body=body,
                                      json_body=json_body, idempotency_key=ctx.idempotency_key)
        return result.payload()

    http_request.__doc__ = (http_request.__doc__ or "").replace(
        "Send an HTTP request", f"Send an HTTP request (methods: {methods})")
    return tool(name=name, idempotent=idempotent, timeout_s=timeout_s)(http_request)
