"""Circuit breakers: stop hammering a dependency that keeps failing.

One breaker per model endpoint (provider, base URL and model name: two servers
serving the same model name are two dependencies) and per tool, shared by every run a
Runner drives. ``closed`` lets calls through and counts consecutive failures; at the
threshold it turns ``open`` and refuses calls; after the reset timeout it turns
``half_open`` and lets one probe through, whose outcome closes or re-opens it. Each
transition is returned to the caller, which journals it as a ``breaker`` event.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._policy import BreakerSettings


@dataclass(frozen=True, slots=True, kw_only=True)
class Transition:
    name: str
    from_state: str
    to_state: str
    reason: str

    def payload(self) -> dict[str, str]:
        return {"name": self.name, "from_state": self.from_state, "to_state": self.to_state,
                "reason": self.reason}


class Breaker:
    def __init__(self, name: str, settings: BreakerSettings) -> None:
        self.name = name
        self.settings = settings
        self.state = "closed"
        self.failures = 0
        self.opened_at = 0.0
        self.probing = False

    def _move(self, to_state: str, reason: str) -> Transition:
        transition = Transition(name=self.name, from_state=self.state, to_state=to_state,
                                reason=reason)
        self.state = to_state
        return transition

    def before_call(self, now: float) -> tuple[bool, Transition | None]:
        """Whether a call may go through now, and the transition this caused, if any."""
        if self.state == "open":
            # ``now < opened_at + reset``, not ``now - opened_at < reset``: the same sum
            # as retry_in's, so a clock advanced by exactly the reset time lets the probe
            # through (the difference can round below it).
            if now < self.opened_at + self.settings.reset_timeout_s:
                return False, None
            self.probing = True
            return True, self._move("half_open", f"{self.settings.reset_timeout_s} s passed "
                                    "since it opened; one probe call goes through")
        if self.state == "half_open":
            if self.probing:
                return False, None
            self.probing = True
        return True, None

    def retry_in(self, now: float) -> float:
        """Seconds until an open breaker lets a probe through."""
        return max(0.0, self.opened_at + self.settings.reset_timeout_s - now)

    def release(self) -> None:
        """A call ended without telling whether the dependency works (cancelled, the
        run's deadline): let the next caller probe."""
        self.probing = False

    def on_success(self) -> Transition | None:
        self.failures = 0
        self.probing = False
        if self.state != "closed":
            return self._move("closed", "the probe call succeeded")
        return None

    def on_failure(self, now: float, error: str) -> Transition | None:
        self.probing = False
        if self.state == "half_open":
            self.opened_at = now
            return self._move("open", f"the probe call failed: {error}")
        self.failures += 1
        if self.state == "closed" and self.failures >= self.settings.failure_threshold:
            self.opened_at = now
            return self._move("open", f"{self.failures} consecutive failures, last: {error}")
        return None


class BreakerBoard:
    """The breakers of one Runner, created on first use.

    Breakers are keyed by name *and* settings: two agents that configure the same
    dependency differently get separate breakers (the second one's name says its
    settings), rather than one silently using the other's thresholds.
    """

    def __init__(self, settings: BreakerSettings | None = None) -> None:
        self.settings = settings or BreakerSettings()
        self._breakers: dict[tuple[str, BreakerSettings], Breaker] = {}
        self._first: dict[str, BreakerSettings] = {}

    def get(self, name: str, settings: BreakerSettings | None = None) -> Breaker:
        chosen = settings or self.settings
        breaker = self._breakers.get((name, chosen))
        if breaker is None:
            first = self._first.setdefault(name, chosen)
            label = name if first == chosen else (
                f"{name} (failure_threshold={chosen.failure_threshold}, "
                f"reset_timeout_s={chosen.reset_timeout_s:g})")
            breaker = self._breakers[(name, chosen)] = Breaker(label, chosen)
        return breaker

    def states(self) -> dict[str, str]:
        return {b.name: b.state for b in self._breakers.values()}
