"""Clocks and id sources, injected into the runtime so replay is exact."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Protocol

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class Clock(Protocol):
    """Where the runtime reads time and waits: injected, so tests skip time."""

    def now(self) -> float:
        """Wall-clock UTC seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Seconds on a monotonic clock, for durations."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (retry backoff, breaker waits)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def new_id(prefix: str = "") -> str:
    """A time-sortable unique id (48-bit milliseconds plus 80 random bits, base 32)."""
    value = (int(time.time() * 1000) << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_CROCKFORD[rem])
    return prefix + "".join(reversed(chars))
