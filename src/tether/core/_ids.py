"""Clocks and id sources, injected into the runtime so replay is exact."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Protocol

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"


class Clock(Protocol):
    """Where the runtime reads time and waits: injected, so tests skip time.

    ``now`` and ``monotonic`` advance together; ``sleep`` is the only way the step loop
    waits (retry backoff, an open breaker's probe, a journaled wait after a crash).
    ``tether.testing.FakeClock`` is one whose ``sleep`` returns at once.
    """

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
        """``time.time()``."""
        return time.time()

    def monotonic(self) -> float:
        """``time.monotonic()``."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """``asyncio.sleep(seconds)``."""
        await asyncio.sleep(seconds)


class IdSource(Protocol):
    """Where the runtime gets new ids (run ids): injected, so tests and replays can
    make them deterministic (``tether.testing.SequentialIds``)."""

    def new(self, prefix: str = "") -> str:
        """A new id, unique for this source, starting with ``prefix``."""
        ...


def _base32(value: int) -> str:
    chars = []
    for _ in range(26):
        value, rem = divmod(value, 32)
        chars.append(_CROCKFORD[rem])
    return "".join(reversed(chars))


class SystemIds:
    """Time-sortable unique ids: 48-bit milliseconds of ``clock`` plus 80 random bits,
    26 characters of Crockford base 32 (a ULID, lower case).

    Args:
        clock: Whose wall time orders the ids; default the real clock.
        entropy: ``n -> n random bytes``; default ``os.urandom``.
    """

    def __init__(self, clock: Clock | None = None,
                 entropy: Callable[[int], bytes] = os.urandom) -> None:
        self.clock = clock or SystemClock()
        self.entropy = entropy

    def new(self, prefix: str = "") -> str:
        """``prefix`` and a new time-sortable id."""
        millis = int(self.clock.now() * 1000) & ((1 << 48) - 1)
        return prefix + _base32((millis << 80) | int.from_bytes(self.entropy(10), "big"))


_SYSTEM_IDS = SystemIds()


def new_id(prefix: str = "", source: IdSource | None = None) -> str:
    """A new id from ``source`` (default :class:`SystemIds`: time-sortable, 48-bit
    milliseconds plus 80 random bits, base 32), after ``prefix``."""
    return (source or _SYSTEM_IDS).new(prefix)
