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
    """A breaker changed state: what the caller journals as one ``breaker`` event.

    Args:
        name: The breaker's name (the model endpoint or tool, with its settings when
            another agent configured the same dependency differently).
        from_state: ``closed``, ``open`` or ``half_open``, before.
        to_state: The state after.
        reason: Why, for a human reading the journal (the failure that opened it).
    """

    name: str
    from_state: str
    to_state: str
    reason: str

    def payload(self) -> dict[str, str]:
        """The ``breaker`` event's payload (a ``BreakerPayload``'s fields)."""
        return {"name": self.name, "from_state": self.from_state, "to_state": self.to_state,
                "reason": self.reason}


class Breaker:
    """One dependency's circuit breaker (see the module's docstring for its states).

    Not thread-safe and not journaled itself: a caller asks :meth:`before_call`, reports
    the outcome with :meth:`on_success`, :meth:`on_failure` or :meth:`release`, and
    journals every :class:`Transition` these return. Times are seconds on the runtime's
    clock (``Clock.now``).

    Args:
        name: What the breaker guards, as journaled.
        settings: Its threshold and reset timeout.
    """

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
        """A call went through and the dependency answered: reset the failure count
        and close the breaker; the transition, if it was not closed, else None."""
        self.failures = 0
        self.probing = False
        if self.state != "closed":
            return self._move("closed", "the probe call succeeded")
        return None

    def on_failure(self, now: float, error: str) -> Transition | None:
        """A call failed at ``now`` (seconds, the runtime's clock) with ``error`` (its
        message, kept in the transition's reason): count it; the transition to
        ``open`` at the threshold or after a failed probe, else None."""
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
        """The breaker for ``name`` with ``settings`` (None: the board's default),
        created closed on first use and shared by every later caller asking the same."""
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
        """Each breaker's state by its name (``closed``, ``open``, ``half_open``)."""
        return {b.name: b.state for b in self._breakers.values()}
