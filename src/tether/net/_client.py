"""``GuardedHttp``: an httpx client that only reaches what its policy allows."""

from __future__ import annotations

import asyncio
import email.utils
import hashlib
import ipaddress
import json
import logging
import os
import re
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..core import ToolUnavailableError
from ._classify import METADATA_HOSTS as _METADATA_HOSTS
from ._classify import CheckedURL, IPAddress, address_refusal, parse_url
from ._errors import HttpRequestError, HttpRetryLaterError, URLRefusedError
from ._pin import Pin, PinningBackend, current_pin, pinned_transport
from ._policy import IDEMPOTENT_METHODS, HttpPolicy

logger = logging.getLogger("tether.net")
#: ``resolve(host, port)`` returns the host's addresses.
Resolver = Callable[[str, int], Awaitable[list[str]]]
_REDIRECTS = {301, 302, 303, 307, 308}
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_FORBIDDEN_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "upgrade",
                      "te", "trailer", "keep-alive", "proxy-authorization", "proxy-connection"}
_TEXT_TYPES = re.compile(r"^(text/|application/(xml|javascript|x-www-form-urlencoded)|"
                         r"[^;]*\+xml)")
_JSON_TYPES = re.compile(r"^(application/json|[^;]*\+json)")
#: What replaces an injected credential wherever a response echoes it back to the model.
REDACTED_CREDENTIAL = "[credential redacted]"


async def system_resolver(host: str, port: int) -> list[str]:
    """Resolve with the system's resolver (``getaddrinfo``)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True, kw_only=True)
class HttpResult:
    """A response as the model sees it.

    Exactly one of ``json``, ``text`` or ``body_ref`` holds the body (none for an
    empty one). ``body_ref`` is ``sha256:...`` of a binary body stored at ``stored_at``.
    """

    status: int
    url: str
    content_type: str | None
    json: Any = None
    text: str | None = None
    body_ref: str | None = None
    stored_at: str | None = None
    size: int = 0
    truncated: bool = False
    redirects: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def payload(self) -> dict[str, Any]:
        """What the model reads (the tool's result): status, final URL, content type,
        size, the one body field that is set, and the redirects and notes when any."""
        data: dict[str, Any] = {"status": self.status, "url": self.url,
                                "content_type": self.content_type, "size": self.size}
        for key in ("json", "text", "body_ref", "stored_at"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.redirects:
            data["redirects"] = list(self.redirects)
        if self.notes:
            data["notes"] = list(self.notes)
        return data


@dataclass
class _HostBreaker:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


@dataclass
class _Hop:
    checked: CheckedURL
    ip: str
    redirects: list[str] = field(default_factory=list)


class GuardedHttp:
    """An HTTP client for agents: every URL and every redirect is checked, connections
    go only to the address checked, credentials are injected per host, responses are
    capped. Use :meth:`request` directly or :func:`http_tool` to hand it to a model.

    Args:
        policy: What may be requested.
        resolver: Resolves host names; default: the system resolver. Tests inject one.
        store_dir: Where binary bodies are stored by content hash; default: not stored
            (only their hash and size are returned).
        verify: TLS verification (an ``ssl.SSLContext`` for a private CA).
        clock: Monotonic seconds, for the per-host circuit breaker.
    """

    def __init__(self, policy: HttpPolicy | None = None, *, resolver: Resolver | None = None,
                 store_dir: Path | None = None, verify: Any = True,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy or HttpPolicy()
        self.resolver = resolver or system_resolver
        self.store_dir = store_dir
        self.backend = PinningBackend()
        self._client = httpx.AsyncClient(transport=pinned_transport(self.backend, verify=verify),
                                         follow_redirects=False, trust_env=False,
                                         timeout=httpx.Timeout(self.policy.timeout_s))
        self._clock = clock
        self._breakers: dict[str, _HostBreaker] = {}

    async def __aenter__(self) -> GuardedHttp:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the client's connection pool; it cannot send afterwards."""
        await self._client.aclose()

    # --- checks (no I/O but the resolver) -----------------------------------------

    async def check(self, url: str) -> tuple[CheckedURL, str]:
        """Check ``url`` and resolve it once: returns it normalised and the address to
        connect to.

        Raises:
            URLRefusedError: the URL, its host or one of its addresses is not allowed.
        """
        checked = parse_url(url)
        host = checked.host
        if host in _METADATA_HOSTS or host.endswith(".internal") and "metadata" in host:
            raise URLRefusedError(f"refused {url[:200]!r}: {host} is a cloud metadata service",
                                  reason="metadata")
        if not self.policy.host_allowed(host):
            raise URLRefusedError(
                f"refused {url[:200]!r}: host {host} is not on this agent's allowlist",
                reason="not_allowlisted", hint="ask for one of the allowed hosts")
        if checked.ip is not None:
            addresses: list[IPAddress] = [checked.ip]
        else:
            if host == "localhost" or host.endswith(".localhost"):
                addresses = [ipaddress.ip_address("127.0.0.1")]
            else:
                addresses = await self._resolve(url, host, checked.port)
        for ip in addresses:
            networks = self.policy.networks
            if self.policy.listed_address(ip):
                networks = (*networks, ipaddress.ip_network(ip))
            why = address_refusal(ip, allowed_networks=networks)
            if why is not None:
                raise URLRefusedError(
                    f"refused {url[:200]!r}: {host} resolves to {ip}, a {why} address",
                    reason=why.split(" ")[0],
                    hint="only public addresses are reachable unless the policy allows "
                         "a network")
        return checked, str(addresses[0])

    async def _resolve(self, url: str, host: str, port: int) -> list[IPAddress]:
        try:
            found = await self.resolver(host, port)
        except OSError as e:
            raise HttpRequestError(f"cannot resolve {host}: {e}", retryable=True) from e
        addresses = []
        for text in found:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            addresses.append(ip)
        if not addresses:
            raise HttpRequestError(f"{host} has no address", retryable=True)
        return addresses

    # --- requests -----------------------------------------------------------------

    async def request(self, method: str, url: str, *, headers: dict[str, str] | None = None,
                      body: str | bytes | None = None, json_body: Any = None,
                      idempotency_key: str | None = None) -> HttpResult:
        """Send a request, following redirects only to allowed places.

        Raises:
            URLRefusedError: the URL, a redirect or a header is not allowed (nothing
                was sent to it).
            HttpRetryLaterError: 429 or 503 (retryable, with ``retry_after``).
            HttpRequestError: connection failure, timeout (retryable) or too many
                redirects.
            ToolUnavailableError: the host's circuit breaker is open.
        """
        method = method.upper()
        if method not in self.policy.allowed_methods:
            raise URLRefusedError(
                f"method {method} is not allowed (allowed: "
                f"{', '.join(sorted(self.policy.allowed_methods))})", reason="method")
        extra = self._clean_headers(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            extra.setdefault("content-type", "application/json")
        if method not in IDEMPOTENT_METHODS and idempotency_key:
            extra[self.policy.idempotency_header.lower()] = idempotency_key
        checked, ip = await self.check(url)
        redirects: list[str] = []
        secrets_used: list[str] = []
        while True:
            response = await self._send(method, checked, ip, extra, body, secrets_used)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECTS or location is None:
                break
            await response.aclose()
            if len(redirects) >= self.policy.max_redirects:
                raise HttpRequestError(f"more than {self.policy.max_redirects} redirects "
                                       f"from {url[:200]!r}")
            target = str(httpx.URL(checked.url).join(location))
            new_checked, ip = await self.check(target)  # refused before any connection
            if (new_checked.host, new_checked.port) != (checked.host, checked.port):
                for name in ("authorization", "cookie"):
                    extra.pop(name, None)
            if response.status_code == 303 or (response.status_code in (301, 302)
                                               and method == "POST"):
                method, body = "GET", None
                extra.pop("content-type", None)
            redirects.append(new_checked.url)
            checked = new_checked
        try:
            return await self._read(response, checked, redirects, secrets_used)
        finally:
            await response.aclose()

    def _clean_headers(self, headers: dict[str, str]) -> dict[str, str]:
        clean: dict[str, str] = {}
        injected = {c.header.lower() for c in self.policy.credentials}
        for name, value in headers.items():
            lower = name.lower()
            if not _TOKEN.match(name) or any(ord(c) < 0x20 and c != "\t" or ord(c) == 0x7F
                                             for c in value):
                raise URLRefusedError(f"header {name[:50]!r} has an invalid name or value",
                                      reason="header")
            if lower in _FORBIDDEN_HEADERS:
                raise URLRefusedError(f"header {name!r} may not be set", reason="header")
            if lower in injected:
                continue  # set by configuration only
            clean[lower] = value
        return clean

    async def _send(self, method: str, checked: CheckedURL, ip: str, extra: dict[str, str],
                    body: str | bytes | None, secrets_used: list[str]) -> httpx.Response:
        headers = dict(extra)
        credential = self.policy.credential_for(checked.host)
        if credential is not None:
            secret = os.environ.get(credential.env)
            if not secret:
                raise HttpRequestError(
                    f"the credential for {checked.host} is not set",
                    hint=f"set the environment variable {credential.env}")
            headers[credential.header.lower()] = credential.prefix + secret
            secrets_used.append(secret)
        self._before_call(checked.host)
        logger.debug("%s %s (pinned to %s)", method, checked.url, ip)
        request = self._client.build_request(method, checked.url, headers=headers,
                                             content=body)
        token = current_pin.set(Pin(host=request.url.raw_host.decode("ascii"), port=checked.port,
                                    ip=ip))
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException as e:
            self._failed(checked.host)
            raise HttpRequestError(f"{method} {checked.url} timed out", retryable=True) from e
        except httpx.TransportError as e:
            self._failed(checked.host)
            raise HttpRequestError(f"{method} {checked.url} failed: {type(e).__name__}",
                                   retryable=True) from e
        finally:
            current_pin.reset(token)
        if response.status_code in (429, 503):
            self._failed(checked.host)
            retry_after = _retry_after(response.headers.get("retry-after"))
            await response.aclose()
            raise HttpRetryLaterError(
                f"{checked.host} answered {response.status_code}"
                + (f"; retry after {retry_after:g} s" if retry_after is not None else ""),
                status_code=response.status_code, retry_after=retry_after)
        if response.status_code >= 500:
            self._failed(checked.host)
        else:
            self._succeeded(checked.host)
        return response

    async def _read(self, response: httpx.Response, checked: CheckedURL,
                    redirects: list[str], secrets_used: list[str]) -> HttpResult:
        cap = self.policy.max_response_bytes
        data = bytearray()
        truncated = False
        async for chunk in response.aiter_bytes():
            data += chunk
            if len(data) > cap:
                truncated = True
                del data[cap:]
                break
        ctype = response.headers.get("content-type")
        kind = (ctype or "").split(";")[0].strip().lower()
        notes = []
        if truncated:
            notes.append(f"body cut at {cap} bytes")
        fields: dict[str, Any] = {}
        raw = bytes(data)
        if raw and (_JSON_TYPES.match(kind) or _TEXT_TYPES.match(kind)
                    or not kind and _looks_like_text(raw)):
            text = raw.decode(response.encoding or "utf-8", errors="replace")
            for secret in secrets_used:
                if secret in text:
                    text = text.replace(secret, REDACTED_CREDENTIAL)
                    notes.append("the response echoed a credential; it was redacted")
            parsed = False
            if _JSON_TYPES.match(kind) and not truncated:
                try:
                    fields["json"] = json.loads(text)
                    parsed = True
                except ValueError:
                    notes.append("the body is not valid JSON; returned as text")
            if not parsed:
                limit = self.policy.max_text_chars
                if len(text) > limit:
                    notes.append(f"text cut to {limit} of {len(text)} characters")
                    text = text[:limit]
                fields["text"] = text
        elif raw:
            digest = hashlib.sha256(raw).hexdigest()
            fields["body_ref"] = f"sha256:{digest}"
            if self.store_dir is not None:
                self.store_dir.mkdir(parents=True, exist_ok=True)
                path = self.store_dir / digest
                path.write_bytes(raw)
                fields["stored_at"] = str(path)
            notes.append("binary body returned by reference")
        return HttpResult(status=response.status_code, url=checked.url, content_type=ctype,
                          size=len(raw), truncated=truncated, redirects=tuple(redirects),
                          notes=tuple(notes), **fields)

    # --- per-host circuit breaker -------------------------------------------------

    def _before_call(self, host: str) -> None:
        breaker = self._breakers.setdefault(host, _HostBreaker())
        if breaker.opened_at is None:
            return
        waited = self._clock() - breaker.opened_at
        if waited < self.policy.breaker_reset_s or breaker.probing:
            raise ToolUnavailableError(
                f"{host} failed {breaker.failures} times in a row; not calling it for "
                f"{max(0.0, self.policy.breaker_reset_s - waited):.0f} s more",
                hint="do without this host for now")
        breaker.probing = True

    def _failed(self, host: str) -> None:
        breaker = self._breakers.setdefault(host, _HostBreaker())
        breaker.failures += 1
        breaker.probing = False
        if breaker.failures >= self.policy.breaker_threshold:
            breaker.opened_at = self._clock()

    def _succeeded(self, host: str) -> None:
        self._breakers[host] = _HostBreaker()


def _looks_like_text(data: bytes) -> bool:
    """A body without a content type is text when it is NUL-free UTF-8."""
    if b"\x00" in data:
        return False
    try:
        data.decode()
    except UnicodeDecodeError:
        return False
    return True


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
