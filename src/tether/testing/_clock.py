"""Time that tests skip, and ids that tests can predict.

Both implement the runtime's injected protocols (``tether.core.Clock`` and
``tether.core.IdSource``) by shape, so this package imports nothing of Tether's::

    runner = Runner(store, clock=FakeClock(), ids=SequentialIds(), rng=random.Random(0))
"""

from __future__ import annotations

import asyncio

_CROCKFORD = "0123456789abcdefghjkmnpqrstvwxyz"

#: 2026-01-01T00:00:00Z: where a FakeClock's wall time starts unless told otherwise.
DEFAULT_START = 1_767_225_600.0


class FakeClock:
    """A clock whose time moves only when the code under test waits on it.

    ``sleep(s)`` advances wall and monotonic time together by ``s`` and returns at once
    (after one pass of the event loop, so it stays a point where a task can be
    cancelled: a cancelled wait takes no time); ``advance(s)`` moves time from the
    test itself. Timeouts the runtime bounds with the event loop (a model attempt, a
    tool call) still take real time: only what the runtime *waits* for (backoff,
    breaker probes, a journaled wait after a crash, the run's deadline) is skipped.

    Args:
        start: The wall time it starts at (seconds since the epoch).
        monotonic_start: The monotonic time it starts at.
    """

    def __init__(self, start: float = DEFAULT_START, monotonic_start: float = 1_000.0) -> None:
        self._wall = float(start)
        self._mono = float(monotonic_start)
        #: Every wait it completed, in order (what the code would have slept).
        self.sleeps: list[float] = []

    def now(self) -> float:
        """Wall time: the start plus everything slept or advanced."""
        return self._wall

    def monotonic(self) -> float:
        """Monotonic time; it moves exactly as :meth:`now` does."""
        return self._mono

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds`` at once."""
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"time only moves forward, not by {seconds!r} s")
        self._wall += seconds
        self._mono += seconds

    async def sleep(self, seconds: float) -> None:
        """Yield once, then advance time by ``seconds`` (a negative wait is none) and
        record the wait. A wait cancelled at that yield takes no time and is not
        recorded, like a real sleep cancelled at once."""
        await asyncio.sleep(0)
        self.advance(max(0.0, seconds))
        self.sleeps.append(seconds)

    @property
    def slept(self) -> float:
        """Seconds slept in all."""
        return sum(max(0.0, s) for s in self.sleeps)


class SequentialIds:
    """Deterministic ids: ``prefix`` and a counter, 26 characters of base 32 like the
    real ones (so they sort in the order they were made and fit the same columns).

    Args:
        first: The first counter value.
    """

    def __init__(self, first: int = 1) -> None:
        self._next = first

    def new(self, prefix: str = "") -> str:
        """``prefix`` and the next counter value, zero-padded to 26 characters."""
        value, self._next = self._next, self._next + 1
        chars = []
        for _ in range(26):
            value, rem = divmod(value, 32)
            chars.append(_CROCKFORD[rem])
        return prefix + "".join(reversed(chars))
