"""A circuit breaker per provider: stop calling a provider that keeps failing, probe it later.

Without one, every request to a provider that is down waits for its timeouts and retries, and
all of them together keep hammering it (a retry storm). The breaker counts consecutive failures;
after ``failures_to_open`` it opens and calls fail at once with ``CircuitOpen`` without touching
the provider, so the router moves straight to the fallback. After ``cooldown_s`` exactly one
call, the probe, is let through (the others still fail fast while it is in flight): its success
closes the breaker, its failure opens it for another cool-down.

What counts as a failure is the caller's decision (``Permit.failure``): the router reports
throttling, 5xx and timeouts, not a request the provider rejected (that proves it is up).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum

from aws_lambda_powertools import Logger

from docket.errors import ProviderError

logger = Logger(service="docket", child=True)


class CircuitOpen(ProviderError):
    """The provider's breaker is open: the call was not made.

    Not ``retryable`` inside the call (a retry would meet the same open breaker); not permanent
    either: the breaker half-opens after its cool-down.
    """

    code = "circuit_open"
    retryable = False
    status: int | None = None

    def __init__(self, name: str, retry_after_s: float) -> None:
        super().__init__(f"{name}: circuit open, next probe in {max(0.0, retry_after_s):.1f}s")
        self.breaker = name
        self.retry_after_s = max(0.0, retry_after_s)


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class Permit:
    """Leave to make one call; report how it went exactly once (later reports are ignored).

    ``release`` reports no verdict (the call proved nothing about the provider's health, e.g. it
    was abandoned or hit a bug on our side); a released probe lets the next caller probe.
    """

    __slots__ = ("_breaker", "_done", "probe")

    def __init__(self, breaker: CircuitBreaker, probe: bool) -> None:
        self._breaker = breaker
        self._done = False
        self.probe = probe

    def success(self) -> None:
        if self._finish():
            self._breaker._on_success(self)

    def failure(self) -> None:
        if self._finish():
            self._breaker._on_failure(self)

    def release(self) -> None:
        if self._finish():
            self._breaker._on_release(self)

    def _finish(self) -> bool:
        with self._breaker._lock:
            if self._done:
                return False
            self._done = True
            return True


class CircuitBreaker:
    """closed → open after ``failures_to_open`` consecutive failures → half-open after
    ``cooldown_s`` (one probe) → closed on its success, open again on its failure. Thread-safe."""

    def __init__(
        self,
        name: str,
        failures_to_open: int,
        cooldown_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failures_to_open < 1:
            raise ValueError("failures_to_open must be at least 1")
        if cooldown_s <= 0:
            raise ValueError("cooldown_s must be positive")
        self.name = name
        self.failures_to_open = failures_to_open
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.RLock()
        self._state = BreakerState.CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> BreakerState:
        """The state as a caller would meet it now (open turns half-open once cooled down)."""
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down():
                return BreakerState.HALF_OPEN
            return self._state

    @property
    def consecutive_failures(self) -> int:
        with self._lock:
            return self._failures

    def acquire(self) -> Permit:
        """A permit for one call, or ``CircuitOpen`` when the call must not be made."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return Permit(self, probe=False)
            if self._state is BreakerState.OPEN and self._cooled_down():
                self._state = BreakerState.HALF_OPEN
                self._probe_in_flight = False
            if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
                self._probe_in_flight = True
                logger.info("circuit half-open: probing", breaker=self.name)
                return Permit(self, probe=True)
            remaining = self._opened_at + self.cooldown_s - self._clock()
            raise CircuitOpen(self.name, remaining)

    def reset(self) -> None:
        """Closed, no failures counted (tests; an operator's override)."""
        with self._lock:
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probe_in_flight = False

    # --- reports from permits ---------------------------------------------------------------------

    def _on_success(self, permit: Permit) -> None:
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                logger.info("circuit closed", breaker=self.name)
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probe_in_flight = False

    def _on_failure(self, permit: Permit) -> None:
        with self._lock:
            self._failures += 1
            if self._state is BreakerState.HALF_OPEN:
                if permit.probe:
                    self._open("probe failed")
                return  # a call from before the breaker opened: the probe decides
            if self._state is BreakerState.CLOSED and self._failures >= self.failures_to_open:
                self._open("consecutive failures")

    def _on_release(self, permit: Permit) -> None:
        with self._lock:
            if permit.probe and self._state is BreakerState.HALF_OPEN:
                self._probe_in_flight = False

    def _open(self, reason: str) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self._clock()
        self._probe_in_flight = False
        logger.warning(
            "circuit opened",
            breaker=self.name,
            reason=reason,
            failures=self._failures,
            cooldown_s=self.cooldown_s,
        )

    def _cooled_down(self) -> bool:
        return self._clock() - self._opened_at >= self.cooldown_s


# --- one breaker per provider and model, per process ------------------------------------------------

_registry_lock = threading.Lock()
_breakers: dict[str, CircuitBreaker] = {}


def shared_breaker(name: str, failures_to_open: int, cooldown_s: float) -> CircuitBreaker:
    """The process's breaker for ``name`` ("provider:model"): every router that calls the same
    model shares its health, whichever task type it serves. The first caller's limits stick."""
    with _registry_lock:
        breaker = _breakers.get(name)
        if breaker is None:
            breaker = CircuitBreaker(name, failures_to_open, cooldown_s)
            _breakers[name] = breaker
        return breaker


def reset_breakers() -> None:
    """Forget every shared breaker (tests, or after changing settings)."""
    with _registry_lock:
        _breakers.clear()


__all__ = [
    "BreakerState",
    "CircuitBreaker",
    "CircuitOpen",
    "Permit",
    "reset_breakers",
    "shared_breaker",
]
