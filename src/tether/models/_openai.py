"""OpenAI and OpenAI-compatible servers, on the official ``openai`` SDK.

This module owns the client and the credential; the wire format lives in
:mod:`._openai_wire`. The SDK's own retries are off (``max_retries=0``): the runtime
is the one retry owner, and every SDK error is translated here into a Tether error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from ..core import Clock, ConfigurationError, ModelBehaviorError, ModelError
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
from ._openai_wire import ChatStreamDecoder, chat_request, chat_response
from ._protocol import ModelRequest, ModelResponse, StreamDelta

if TYPE_CHECKING:
    import openai

OPENAI_BASE_URL = "https://api.openai.com/v1"
#: ``max_tokens`` sent to OpenAI-compatible servers when neither the request nor the
#: model sets one: without it llama.cpp and others generate until the context is full.
DEFAULT_COMPATIBLE_MAX_TOKENS = 4096


def _import_openai() -> Any:
    try:
        import openai
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ConfigurationError(
            "the OpenAI provider needs the openai package, which is not installed",
            hint='pip install "tether[openai]"',
        ) from e
    return openai


class OpenAIModel:
    """A model behind the OpenAI Chat Completions API: OpenAI itself or any compatible
    server (llama.cpp, vLLM, Ollama, LM Studio...) given its ``base_url``.

    Example::

        model = OpenAIModel("gpt-4.1-mini", api_key=os.environ["OPENAI_API_KEY"])

    Args:
        model: The model name sent with each request.
        api_key: The API key. Servers that need none accept any non-empty string.
        base_url: The API root, e.g. ``http://127.0.0.1:8080/v1``; OpenAI's by default.
        provider: The provider name reported in responses, errors and traces.
        compatible: Shape requests for OpenAI-compatible servers (see
            :func:`chat_request`); by default, true for any provider but ``openai``.
        timeout_s: Seconds one attempt may take as a whole (connecting and reading the
            entire body), unless ``ModelSettings.timeout_s`` says otherwise.
        credential_var: The environment variable the key came from, named in errors.
        max_tokens: ``max_tokens`` sent when ``ModelSettings.max_tokens`` is not set;
            by default :data:`DEFAULT_COMPATIBLE_MAX_TOKENS` for compatible servers and
            none for OpenAI (whose reasoning models need the room).
        max_response_bytes: Largest response body read; a larger one is a
            ``ModelBehaviorError`` and is not read further.
        clock: Where a ``Retry-After`` HTTP date is counted from (inject the
            Runner's clock; default the real time).
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str,
        base_url: str | None = None,
        provider: str = "openai",
        compatible: bool | None = None,
        timeout_s: float = 600.0,
        credential_var: str | None = "OPENAI_API_KEY",
        max_tokens: int | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        clock: Clock | None = None,
    ) -> None:
        self._openai = _import_openai()
        if not model:
            raise ConfigurationError("OpenAIModel needs a model name")
        self._model = model
        self._api_key = api_key
        self._base_url = base_url or OPENAI_BASE_URL
        self._provider = provider
        self._compatible = provider != "openai" if compatible is None else compatible
        self._timeout_s = timeout_s
        self._credential_var = credential_var
        self._clock = clock
        if max_tokens is None and self._compatible:
            max_tokens = DEFAULT_COMPATIBLE_MAX_TOKENS
        self._max_tokens = max_tokens
        self._max_response_bytes = max_response_bytes
        self._clients: LoopBound[openai.AsyncOpenAI] = LoopBound(
            lambda: self._openai.AsyncOpenAI(
                api_key=self._api_key, base_url=self._base_url, max_retries=0,
                timeout=self._timeout_s,
                http_client=capped_client(self._openai, self._max_response_bytes, self._timeout_s),
            )
        )

    @property
    def provider(self) -> str:
        """The provider name, ``openai`` or e.g. ``openai-compatible``."""
        return self._provider

    @property
    def model_name(self) -> str:
        """The model name sent with each request."""
        return self._model

    @property
    def base_url(self) -> str:
        """The API root requests go to."""
        return self._base_url

    def __repr__(self) -> str:
        return (
            f"OpenAIModel({self._model!r}, provider={self._provider!r}, "
            f"base_url={self._base_url!r})"
        )

    def _client(self) -> openai.AsyncOpenAI:
        return self._clients.get()

    async def aclose(self) -> None:
        """Close the HTTP connections this model holds."""
        await self._clients.aclose()

    async def __aenter__(self) -> OpenAIModel:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    @property
    def max_tokens(self) -> int | None:
        """``max_tokens`` sent when the request sets none."""
        return self._max_tokens

    def _timeout(self, request: ModelRequest) -> float:
        return request.settings.timeout_s or self._timeout_s

    def _options(self, request: ModelRequest) -> dict[str, Any]:
        if request.settings.max_tokens is None and self._max_tokens is not None:
            settings = request.settings.model_copy(update={"max_tokens": self._max_tokens})
            request = request.model_copy(update={"settings": settings})
        body = chat_request(request, model=self._model, compatible=self._compatible)
        body["timeout"] = self._timeout(request)
        return body

    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Make one attempt at ``request``, bounded as a whole by the timeout.

        Raises:
            RateLimitError, TransientModelError, FatalModelError, ContextLengthError,
            ModelBehaviorError: the provider's failure, translated; whatever the server
            sends (an HTML page, a cut or oversized body, a trickle) is one of these.
        """
        body = self._options(request)
        client = self._client()
        timeout = self._timeout(request)
        provider, model = self._provider, self._model
        try:
            async with asyncio.timeout(timeout):
                completion = await client.chat.completions.create(**body)
        except TimeoutError as e:
            raise connection_error(
                provider=provider, model=model, base_url=self._base_url, timed_out=True,
                detail=f"no complete answer within {timeout:g} s",
            ) from e
        except ResponseTooLargeError as e:
            raise too_large_error(e, provider=provider, model=model) from e
        except self._openai.OpenAIError as e:
            raise self._translate(e) from e
        except ValueError as e:  # the body is not JSON: cut short, or not an answer
            raise not_a_completion(
                getattr(e, "doc", ""), provider=provider, model=model,
                base_url=self._base_url, detail=f"{type(e).__name__}: {e}",
            ) from e
        return read_answer(completion, chat_response, provider=provider, model=model,
                           base_url=self._base_url, what="a chat completion",
                           hint="the server is not fully OpenAI-compatible, or a gateway "
                                "rewrote the answer; check the base URL")

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamDelta]:
        """Stream the answer to ``request``: text deltas, then the complete response.

        Raises:
            the same errors as :meth:`complete`, possibly after some deltas.
        """
        body = self._options(request)
        body["stream_options"] = {"include_usage": True}
        client = self._client()
        decoder = ChatStreamDecoder(provider=self._provider, model=self._model)
        try:
            chunks = await client.chat.completions.create(stream=True, **body)
            async with chunks:
                async for chunk in chunks:
                    text = decoder.feed(chunk)
                    if text:
                        yield StreamDelta(text=text)
        except self._openai.OpenAIError as e:
            raise self._translate(e) from e
        yield StreamDelta(response=decoder.response())

    def _translate(self, error: Exception) -> ModelError:
        """The Tether error for an ``openai`` SDK error."""
        sdk = self._openai
        provider, model = self._provider, self._model
        too_large = too_large_in(error)
        if too_large is not None:
            return too_large_error(too_large, provider=provider, model=model)
        if isinstance(error, sdk.APIConnectionError):  # includes APITimeoutError
            return connection_error(
                provider=provider,
                model=model,
                base_url=self._base_url,
                timed_out=isinstance(error, sdk.APITimeoutError),
                detail=str(error.__cause__ or error),
            )
        if isinstance(error, sdk.APIStatusError):
            return status_error(
                provider=provider,
                model=model,
                status=error.status_code,
                message=snippet(_error_message(error.body, _page(error)), 500),
                headers=error.response.headers,
                code=error.code,
                error_type=error.type,
                credential_var=self._credential_var,
                clock=self._clock,
            )
        if isinstance(error, sdk.APIResponseValidationError):
            return ModelBehaviorError(
                f"{provider} model {model!r}: the response does not match the API's schema: "
                f"{error.message}",
                hint="the server is not fully OpenAI-compatible, or returned garbage; "
                "check the base URL",
                provider=provider,
                model=model,
            )
        if isinstance(error, sdk.APIError):  # an error event inside a stream
            return stream_error(
                provider=provider,
                model=model,
                message=_error_message(error.body, error.message),
                code=error.code,
                error_type=error.type,
                credential_var=self._credential_var,
            )
        return ModelBehaviorError(
            f"{provider} model {model!r}: {type(error).__name__}: {error}",
            provider=provider,
            model=model,
        )


def _page(error: Any) -> str:
    """The body of an error response that is not JSON (a gateway's page), else the
    SDK's message."""
    try:
        text = str(error.response.text)
    except Exception:  # the body could not be read: the SDK's message will do
        return str(error.message)
    if (error.body is None or isinstance(error.body, str)) and text.strip():
        return text
    return str(error.message)


def _error_message(body: object, fallback: str) -> str:
    """The human message of an error body (``{"message": ...}`` or ``{"error": {...}}``)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    return fallback
