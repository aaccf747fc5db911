"""What a guarded HTTP client may do: hosts, networks, methods, limits, credentials."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ._classify import IPAddress, IPNetwork

#: Methods safe to repeat (RFC 9110 9.2.2); others carry the idempotency key.
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})


@dataclass(frozen=True, kw_only=True)
class Credential:
    """A secret injected into requests to one host, read from the environment at request
    time. It never appears in tool arguments, results, the journal or logs.

    Args:
        host: The host (or ``*.domain`` pattern) it is sent to; never to another one,
            not even after a redirect.
        header: The header carrying it, e.g. ``Authorization`` or ``X-Api-Key``.
        env: The environment variable holding the secret.
        prefix: Put before the value, e.g. ``"Bearer "``.
    """

    host: str
    header: str
    env: str
    prefix: str = ""


@dataclass(frozen=True, kw_only=True)
class HttpPolicy:
    """The rules of a :class:`GuardedHttp` client.

    Args:
        allowed_hosts: When set, the only hosts that may be requested: exact names, IP
            literals, or ``*.example.com`` (any subdomain, not ``example.com`` itself).
            An IP literal listed here may be reached even if private or loopback
            (never a metadata address). ``None``: any public host.
        allowed_networks: Private, loopback or other non-public networks (CIDR) that
            names may resolve to. Metadata addresses stay refused.
        allowed_methods: HTTP methods the client may send.
        timeout_s: Connect, read and write timeout of each request.
        max_response_bytes: Bytes read of a response body; the rest is dropped.
        max_text_chars: Characters of a text body returned to the model.
        max_redirects: Redirects followed (each one checked like the first URL).
        credentials: Secrets injected per host.
        idempotency_header: Header carrying the call's idempotency key on
            non-idempotent methods (POST, PATCH, ...).
        breaker_threshold: Consecutive failures (connection errors, 5xx, 429) of a
            host after which it is not called for ``breaker_reset_s`` seconds.
        breaker_reset_s: How long a host's breaker stays open before one probe.
    """

    allowed_hosts: frozenset[str] | None = None
    allowed_networks: tuple[str, ...] = ()
    allowed_methods: frozenset[str] = frozenset({"GET", "HEAD"})
    timeout_s: float = 30.0
    max_response_bytes: int = 2 * 1024 * 1024
    max_text_chars: int = 20_000
    max_redirects: int = 5
    credentials: tuple[Credential, ...] = ()
    idempotency_header: str = "Idempotency-Key"
    breaker_threshold: int = 5
    breaker_reset_s: float = 30.0
    _networks: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        nets = tuple(ipaddress.ip_network(n, strict=False) for n in self.allowed_networks)
        object.__setattr__(self, "_networks", nets)
        if self.allowed_hosts is not None:
            object.__setattr__(self, "allowed_hosts",
                               frozenset(_normal_pattern(h) for h in self.allowed_hosts))
        object.__setattr__(self, "allowed_methods",
                           frozenset(m.upper() for m in self.allowed_methods))

    @property
    def networks(self) -> tuple[IPNetwork, ...]:
        """``allowed_networks``, parsed (host bits ignored, as ``10.0.0.1/8``)."""
        return self._networks

    def host_allowed(self, host: str) -> bool:
        """Whether ``host`` (normalised by ``parse_url``) passes the allowlist."""
        if self.allowed_hosts is None:
            return True
        return any(host_matches(host, pattern) for pattern in self.allowed_hosts)

    def listed_address(self, ip: IPAddress) -> bool:
        """Whether ``ip`` itself is on the allowlist (as an IP literal)."""
        return self.allowed_hosts is not None and str(ip) in self.allowed_hosts

    def credential_for(self, host: str) -> Credential | None:
        """The first credential whose host pattern matches ``host`` (normalised by
        ``parse_url``), to inject into a request to it; None: send none."""
        for credential in self.credentials:
            if host_matches(host, _normal_pattern(credential.host)):
                return credential
        return None


def _normal_pattern(pattern: str) -> str:
    pattern = pattern.strip().lower().rstrip(".")
    if pattern.startswith("[") and pattern.endswith("]"):
        pattern = pattern[1:-1]
    try:
        return str(ipaddress.ip_address(pattern))
    except ValueError:
        return pattern


def host_matches(host: str, pattern: str) -> bool:
    """Label-wise match: ``*.example.com`` matches ``a.example.com`` and
    ``a.b.example.com``, never ``example.com`` nor ``evilexample.com``."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    return host == pattern
