"""Anthropic's Messages API, on the official ``anthropic`` SDK.

This module owns the client and the credential; the wire format lives in
:mod:`._anthropic_wire`. The SDK's own retries are off (``max_retries=0``): the
runtime is the one retry owner, and every SDK error is translated here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..core import Clock, ConfigurationError, ModelBehaviorError, ModelError
from ._anthropic_wire import (
    DEFAULT_MAX_TOKENS,
    MessagesStreamDecoder,
    messages_request,
    messages_response,
)
from ._failures import connection_error, status_error, stream_error
from ._http import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ResponseTooLargeError,
    capped_client,
    not_a_completion,
    read_answer,
    snippet,
    too_large_error,
    too_large_in,
)
from ._loop_client import LoopBound
from ._protocol import ModelRequest, ModelResponse, StreamDelta

if TYPE_CHECKING:
    import anthropic

ANTHROPIC_BASE_URL = "https://api.anthropic.com"


def _import_anthropic() -> Any:
    try:
        import anthropic
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "the Anthropic provider needs the anthropic package, which is not installed",
            hint='pip install "tether[anthropic]"',
        ) from e
    return anthropic


class AnthropicModel:
    """A Claude model behind Anthropic's Messages API.

    Example::

        model = AnthropicModel("claude-sonnet-4-5", api_key=os.environ["ANTHROPIC_API_KEY"])

    Args:
        model: The model name, e.g. ``claude-sonnet-4-5``.
        api_key: The API key.
        base_url: The API root; Anthropic's by default.
        timeout_s: Seconds one attempt may take as a whole (connecting and reading the
            entire body), unless ``ModelSettings.timeout_s`` says otherwise.
        max_tokens: ``max_tokens`` sent when ``ModelSettings.max_tokens`` is not set (the
            API requires one).
        credential_var: The environment variable the key came from, named in errors.
        max_response_bytes: Largest response body read; a larger one is a
            ``ModelBehaviorError`` and is not read further.
        clock: Where a ``Retry-After`` HTTP date is counted from (inject the
            Runner's clock; default the real time).
    """

    provider = "anthropic"

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        timeout_s: float = 600.0,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        credential_var: str | None = "ANTHROPIC_API_KEY",
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Clock | None = None,
    ) -> None:
        self._anthropic = _import_anthropic()
        if not model:
            raise ConfigurationError("AnthropicModel needs a model name")
        self._model = model
        self._api_key = api_key
        self._base_url = base_url or ANTHROPIC_BASE_URL
        self._timeout_s = timeout_s
        self._max_tokens = max_tokens
        self._credential_var = credential_var
        self._clock = clock
        self._clients: LoopBound[anthropic.AsyncAnthropic] = LoopBound(
            lambda: self._anthropic.AsyncAnthropic(
                api_key=self._api_key, base_url=self._base_url, max_retries=0,
                timeout=self._timeout_s,
                http_client=capped_client(self._anthropic, max_response_bytes, self._timeout_s),
            )
        )

    @property
    def model_name(self) -> str:
        """The model name sent with each request."""
        return self._model

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._base_url

    def __repr__(self) -> str:
        return f"AnthropicModel({self._model!r}, base_url={self._base_url!r})"

    def _client(self) -> anthropic.AsyncAnthropic:
        return self._clients.get()

    async def aclose(self) -> None:
        """Close the HTTP connections this model holds."""
        await self._clients.aclose()

    async def __aenter__(self) -> AnthropicModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _options(self, request: ModelRequest) -> dict[str, Any]:
        body = messages_request(request, model=self._model, default_max_tokens=self._max_tokens)
        if request.settings.timeout_s is not None:
            body["timeout"] = request.settings.timeout_s
        return body

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Make one attempt at ``request``.

        Raises:
            RateLimitError, TransientModelError, FatalModelError, ContextLengthError,
            ModelBehaviorError: the provider's failure, translated.
        """
        body = self._options(request)
        client = self._client()
        timeout = request.settings.timeout_s or self._timeout_s
        provider, model = self.provider, self._model
        try:
            async with asyncio.timeout(timeout):
                message = await client.messages.create(**body)
        except TimeoutError as e:
            raise connection_error(
                provider=provider, model=model, base_url=self._base_url, timed_out=True,
                detail=f"no complete answer within {timeout:g} s",
            ) from e
        except ResponseTooLargeError as e:
            raise too_large_error(e, provider=provider, model=model) from e
        except self._anthropic.AnthropicError as e:
            raise self._translate(e) from e
        except ValueError as e:  # the body is not JSON: cut short, or not an answer
            raise not_a_completion(getattr(e, "doc", ""), provider=provider, model=model,
                                   base_url=self._base_url,
                                   detail=f"{type(e).__name__}: {e}") from e
        return read_answer(message, messages_response, provider=provider, model=model,
                           base_url=self._base_url, what="a message",
                           hint="check the base URL points at the Anthropic API")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta]:
        """Stream the answer to ``request``: text deltas, then the complete response.

        Raises:
            the same errors as :meth:`complete`, possibly after some deltas.
        """
        body = self._options(request)
        client = self._client()
        decoder = MessagesStreamDecoder(provider=self.provider, model=self._model)
        try:
            events = await client.messages.create(stream=True, **body)
            async with events:
                async for event in events:
                    text = decoder.feed(event)
                    if text:
                        yield StreamDelta(text=text)
        except self._anthropic.AnthropicError as e:
            raise self._translate(e) from e
        yield StreamDelta(response=decoder.response())

    def _translate(self, error: Exception) -> ModelError:
        """The Tether error for an ``anthropic`` SDK error."""
        sdk = self._anthropic
        provider, model = self.provider, self._model
        too_large = too_large_in(error)
        if too_large is not None:
            return too_large_error(too_large, provider=provider, model=model)
        if isinstance(error, sdk.APIConnectionError):  # includes APITimeoutError
            return connection_error(
                provider=provider,
                model=model,
                base_url=self._base_url,
                timed_out=isinstance(error, sdk.APITimeoutError),
                detail=str(error.__cause__ or error.message),
            )
        if isinstance(error, sdk.APIStatusError):
            message = snippet(error.api_message or error.message, 500)
            if error.status_code < 400:  # an ``error`` event inside a 200 stream
                return stream_error(
                    provider=provider,
                    model=model,
                    message=message,
                    code=error.error_code,
                    error_type=error.type,
                    credential_var=self._credential_var,
                )
            return status_error(
                provider=provider,
                model=model,
                status=error.status_code,
                message=message,
                headers=error.response.headers,
                code=error.error_code,
                error_type=error.type,
                credential_var=self._credential_var,
                clock=self._clock,
            )
        if isinstance(error, sdk.APIResponseValidationError):
            return ModelBehaviorError(
                f"{provider} model {model!r}: the response does not match the API's schema: "
                f"{error.message}",
                hint="check the base URL points at the Anthropic API",
                provider=provider,
                model=model,
            )
        return ModelBehaviorError(
            f"{provider} model {model!r}: {type(error).__name__}: {error}",
            provider=provider,
            model=model,
        )
