"""The HTTP layer under the SDKs: a cap on response bodies, and the bodies gateways send.

Both SDKs read a whole response into memory before handing it over, and their own
timeouts bound each socket read, not the request. So the providers give their SDK an
httpx client whose transport refuses bodies over a size cap (checked against
``Content-Length`` first, then counted as the body arrives), bound each attempt as a
whole with :func:`asyncio.timeout`, and classify what a gateway may send with a 200:
an HTML page, a cut body, JSON of the wrong shape.
"""

from __future__ import annotations

import functools
import html
import importlib
import re
import zlib
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from ..core import ModelBehaviorError, ModelError, TransientModelError

if TYPE_CHECKING:
    from ._protocol import ModelResponse

#: Default cap on one response body (bytes). A chat completion of 4,096 tokens is
#: about 20 kB; anything near the cap is a runaway generation or not an answer at all.
DEFAULT_MAX_RESPONSE_BYTES = 4 * 1024 * 1024

_TAGS = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_SPACES = re.compile(r"\s+")


class ResponseTooLargeError(Exception):
    """Raised inside the transport when a body passes the cap (never leaves ``models``)."""

    def __init__(self, size: int, limit: int, *, declared: bool, why: str = "") -> None:
        how = "declares" if declared else "passed"
        super().__init__(why or f"the response body {how} {size:,} bytes; the cap is "
                                 f"{limit:,} (inflated, if it was compressed)")
        self.size = size
        self.limit = limit


@functools.cache
def _capped_transport(hx: Any) -> Any:
    """A transport class capping response bodies, for the httpx module ``hx`` (an SDK
    may ship its own fork, such as ``httpx2``, and refuse the other's objects)."""

    class CappedStream(hx.AsyncByteStream):  # type: ignore[misc]
        def __init__(self, inner: Any, limit: int, encoding: str = "") -> None:
            self._inner = inner
            self._limit = limit
            self._encoding = encoding

        async def __aiter__(self) -> AsyncIterator[bytes]:
            seen = 0
            inflate = _inflater(self._encoding)
            inflated = 0
            async for chunk in self._inner:
                seen += len(chunk)
                if seen > self._limit:
                    raise ResponseTooLargeError(seen, self._limit, declared=False)
                if inflate is not None:  # the body the SDK will hold, counted as it inflates
                    try:
                        inflated += _inflated(inflate, chunk, self._limit - inflated)
                    except zlib.error:
                        if self._encoding == "deflate" and inflated == 0 and seen == len(chunk):
                            inflate = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate
                            inflated += _inflated(inflate, chunk, self._limit)
                        else:
                            inflate = None  # not decodable: httpx says so itself
                    if inflated > self._limit:
                        raise ResponseTooLargeError(inflated, self._limit, declared=False)
                yield chunk

        async def aclose(self) -> None:
            await self._inner.aclose()

    class CappedTransport(hx.AsyncBaseTransport):  # type: ignore[misc]
        def __init__(self, limit: int) -> None:
            self._limit = limit
            self._inner = hx.AsyncHTTPTransport(
                limits=hx.Limits(max_connections=1000, max_keepalive_connections=100))

        async def handle_async_request(self, request: Any) -> Any:
            request.headers["Accept-Encoding"] = "gzip, deflate"  # the ones counted
            response = await self._inner.handle_async_request(request)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > self._limit:
                await response.aclose()
                raise ResponseTooLargeError(int(declared), self._limit, declared=True)
            encoding = response.headers.get("content-encoding", "").strip().lower()
            if encoding not in ("", "identity", "gzip", "x-gzip", "deflate"):
                await response.aclose()  # br, zstd, chains: not counted, so not accepted
                raise ResponseTooLargeError(0, self._limit, declared=True, why=(
                    f"the response body is encoded {encoding!r}, which was not asked for "
                    f"and whose size cannot be capped (the cap is {self._limit:,} bytes)"))
            response.stream = CappedStream(response.stream, self._limit, encoding)
            return response

        async def aclose(self) -> None:
            await self._inner.aclose()

    return CappedTransport


def _inflater(encoding: str) -> Any:
    """A decompressor to count what a gzip or deflate body inflates to (None: plain)."""
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(zlib.MAX_WBITS | 16)
    if encoding == "deflate":
        return zlib.decompressobj(zlib.MAX_WBITS | 32)  # zlib-wrapped (or raw via header)
    return None


def _inflated(inflate: Any, data: bytes, room: int) -> int:
    """How many bytes ``data`` inflates to, stopping once past ``room``."""
    total = 0
    while data and total <= room:
        out = inflate.decompress(data, room - total + 1)
        total += len(out)
        data = inflate.unconsumed_tail
        if not out:
            break
    return total


def _httpx_of(sdk: Any) -> Any:
    """The httpx module an SDK is built on (from the bases of its default client)."""
    for cls in getattr(sdk, "DefaultAsyncHttpxClient", object).__mro__:
        top = str(getattr(cls, "__module__", "")).partition(".")[0]
        if top.startswith("httpx"):
            return importlib.import_module(top)
    return importlib.import_module("httpx")


def capped_client(sdk: Any, limit: int, timeout_s: float) -> Any:
    """An httpx client for ``sdk``: bodies over ``limit`` bytes refused, redirects
    followed, the SDK's timeout."""
    hx = _httpx_of(sdk)
    return hx.AsyncClient(transport=_capped_transport(hx)(limit), timeout=timeout_s,
                          follow_redirects=True)


def too_large_in(error: BaseException) -> ResponseTooLargeError | None:
    """The :class:`ResponseTooLargeError` behind an SDK error, if that is what it was."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, ResponseTooLargeError):
            return current
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def too_large_error(
    error: ResponseTooLargeError, *, provider: str, model: str
) -> ModelBehaviorError:
    return ModelBehaviorError(
        f"{provider} model {model!r}: {error}; the answer was not read",
        hint="a runaway generation or a server sending something else: lower "
        "ModelSettings.max_tokens, or raise the provider's max_response_bytes",
        provider=provider,
        model=model,
    )


def snippet(text: str, limit: int = 200) -> str:
    """A short, readable excerpt of a body: tags and scripts of an HTML page removed."""
    if "<" in text and ">" in text:
        text = html.unescape(_TAGS.sub(" ", text))
    text = _SPACES.sub(" ", text).strip()
    return text if len(text) <= limit else text[:limit] + "..."


def not_a_completion(
    body: Any, *, provider: str, model: str, base_url: str, detail: str = ""
) -> TransientModelError:
    """The error for a 200 whose body is not a usable answer (HTML page, cut body)."""
    shown = snippet(body) if isinstance(body, str) else type(body).__name__
    what = f" ({detail})" if detail else ""
    return TransientModelError(
        f"{provider} model {model!r}: {base_url} answered 200 with a body that is not a "
        f"completion{what}: {shown!r}",
        hint="a gateway or proxy in front of the model answered instead of it, or the body "
        "was cut; the runtime retries. If it persists, check the base URL",
        provider=provider,
        model=model,
    )


def read_answer(
    body: Any, parse: Callable[..., ModelResponse], *, provider: str, model: str,
    base_url: str, what: str, hint: str,
) -> ModelResponse:
    """``parse`` a 200's decoded body into a response; a body that is text (an HTML
    page) or JSON of another shape becomes a classified error, never a raw one."""
    if isinstance(body, str | bytes):
        text = body if isinstance(body, str) else repr(body)
        raise not_a_completion(text, provider=provider, model=model, base_url=base_url)
    try:
        return parse(body, provider=provider, model=model)
    except ModelError:
        raise
    except (AttributeError, TypeError, ValueError, KeyError) as e:
        raise ModelBehaviorError(
            f"{provider} model {model!r}: the response is JSON but not {what}: "
            f"{type(e).__name__}: {snippet(str(e))}",
            hint=hint, provider=provider, model=model,
        ) from e
