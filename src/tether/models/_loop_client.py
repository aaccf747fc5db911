"""One SDK client per event loop: an httpx connection pool belongs to the loop it was
made on, and a model object may outlive the loop (``Runner.run_sync`` makes a new one
each call)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class _Closable(Protocol):
    async def close(self) -> None: ...


C = TypeVar("C", bound=_Closable)


class LoopBound(Generic[C]):
    """Makes a client with ``factory`` on first use in each event loop."""

    def __init__(self, factory: Callable[[], C]) -> None:
        self._factory = factory
        self._client: C | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def get(self) -> C:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop:
            self._client, self._loop = self._factory(), loop
        return self._client

    async def aclose(self) -> None:
        """Close the current client's connections (a later call makes a new client)."""
        client, self._client, self._loop = self._client, None, None
        if client is not None:
            await client.close()
