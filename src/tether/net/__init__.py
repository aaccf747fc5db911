"""Guarded HTTP for agents: SSRF-safe URL checks, pinned connections, injected credentials."""

from ._classify import (
    METADATA_HOSTS,
    METADATA_NETWORKS,
    CheckedURL,
    address_refusal,
    embedded_ipv4,
    parse_url,
)
from ._client import REDACTED_CREDENTIAL, GuardedHttp, HttpResult, Resolver, system_resolver
from ._errors import HttpRequestError, HttpRetryLaterError, URLRefusedError
from ._pin import PinningBackend
from ._policy import IDEMPOTENT_METHODS, Credential, HttpPolicy, host_matches
from ._tools import http_tool

__all__ = [
    "IDEMPOTENT_METHODS",
    "METADATA_HOSTS",
    "METADATA_NETWORKS",
    "REDACTED_CREDENTIAL",
    "CheckedURL",
    "Credential",
    "GuardedHttp",
    "HttpPolicy",
    "HttpRequestError",
    "HttpResult",
    "HttpRetryLaterError",
    "PinningBackend",
    "Resolver",
    "URLRefusedError",
    "address_refusal",
    "embedded_ipv4",
    "host_matches",
    "http_tool",
    "parse_url",
    "system_resolver",
]
