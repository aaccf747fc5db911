"""Connecting only to the address that was checked.

The check resolves a host once; the connection must go to that address, not to
whatever a second resolution returns (DNS rebinding). :class:`PinningBackend` is the
network backend of the client's connection pool: it reads the pin set for the
current request (a context variable, set around ``send``) and connects to the pinned
IP, refusing any connection it has no pin for. The URL keeps the host name, so TLS
still sends it as SNI and verifies the certificate against it.
"""

from __future__ import annotations

import contextvars
import ssl
import typing
from collections.abc import Iterable
from dataclasses import dataclass

import httpcore
import httpx

from ._errors import URLRefusedError


@dataclass(frozen=True, kw_only=True)
class Pin:
    host: str
    port: int
    ip: str


current_pin: contextvars.ContextVar[Pin | None] = contextvars.ContextVar(
    "tether_net_pin", default=None)


class PinningBackend(httpcore.AsyncNetworkBackend):
    """Connects to the pinned address of the current request, and nowhere else."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()
        #: Every address connected to, for tests and audits: (host, port, ip).
        self.connections: list[tuple[str, int, str]] = []

    async def connect_tcp(
        self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Connect to the address the current request was checked and pinned to,
        whatever ``host`` resolves to now (no second lookup to rebind).

        Raises:
            URLRefusedError: No pin for ``host:port`` (a connection nobody checked).
        """
        pin = current_pin.get()
        if pin is None or pin.host != host or pin.port != port:
            raise URLRefusedError(
                f"refused a connection to {host}:{port} that was not checked first",
                reason="unpinned")
        self.connections.append((host, port, pin.ip))
        return await self._inner.connect_tcp(pin.ip, port, timeout=timeout,
                                             local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None,  # noqa: ASYNC109
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Always refused (``URLRefusedError``): no request reaches a unix socket."""
        raise URLRefusedError("unix sockets are not reachable", reason="unix_socket")

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on the event loop (httpcore's backend interface)."""
        await self._inner.sleep(seconds)


def pinned_transport(backend: PinningBackend, *, verify: ssl.SSLContext | bool = True
                     ) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose pool connects through ``backend``; no proxies.

    httpx does not expose a network backend option, so the transport's pool is
    replaced by one built with the same settings and ``backend``.
    """
    transport = httpx.AsyncHTTPTransport(verify=verify, trust_env=False, retries=0)
    context = verify if isinstance(verify, ssl.SSLContext) else httpx.create_ssl_context(
        verify=verify, trust_env=False)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context, max_connections=100, max_keepalive_connections=20,
        keepalive_expiry=5.0, http1=True, http2=False, retries=0, network_backend=backend)
    return transport
