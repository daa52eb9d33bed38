"""The circuit breaker: opens after N consecutive failures, fails fast, lets one probe through."""

from __future__ import annotations

import threading

import pytest

from docket.errors import ProviderError
from docket.providers.breaker import (
    BreakerState,
    CircuitBreaker,
    CircuitOpen,
    reset_breakers,
    shared_breaker,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def fail(breaker: CircuitBreaker, times: int) -> None:
    for _ in range(times):
        breaker.acquire().failure()


def test_opens_after_n_consecutive_failures_and_then_fails_fast() -> None:
    # Given a breaker that opens after three failures
    clock = Clock()
    breaker = CircuitBreaker("anthropic:m", failures_to_open=3, cooldown_s=30, clock=clock)
    # When two calls fail, it stays closed
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 2
    # And the third failure opens it
    fail(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    # Then a call is refused at once, saying when the next probe may go
    clock.now += 10
    with pytest.raises(CircuitOpen) as raised:
        breaker.acquire()
    assert raised.value.retry_after_s == pytest.approx(20)
    assert isinstance(raised.value, ProviderError) and raised.value.retryable is False
    assert raised.value.status is None and not raised.value.permanent


def test_a_success_resets_the_count_of_consecutive_failures() -> None:
    breaker = CircuitBreaker("m", failures_to_open=3, cooldown_s=30, clock=Clock())
    fail(breaker, 2)
    breaker.acquire().success()
    fail(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


def test_a_released_permit_is_no_verdict_and_reports_count_once() -> None:
    breaker = CircuitBreaker("m", failures_to_open=2, cooldown_s=30, clock=Clock())
    permit = breaker.acquire()
    permit.release()
    permit.failure()  # ignored: the permit already reported
    assert breaker.consecutive_failures == 0
    one = breaker.acquire()
    one.failure()
    one.failure()  # counted once
    assert breaker.state is BreakerState.CLOSED and breaker.consecutive_failures == 1


def test_after_the_cooldown_one_probe_closes_it_on_success() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures_to_open=1, cooldown_s=30, clock=clock)
    fail(breaker, 1)
    # When the cool-down has passed
    clock.now += 30
    assert breaker.state is BreakerState.HALF_OPEN
    probe = breaker.acquire()
    assert probe.probe
    # Then others still fail fast while the probe is in flight
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    # And the probe's success closes the breaker for everyone
    probe.success()
    assert breaker.state is BreakerState.CLOSED
    assert not breaker.acquire().probe


def test_a_failed_probe_reopens_for_another_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures_to_open=2, cooldown_s=30, clock=clock)
    fail(breaker, 2)
    clock.now += 31
    breaker.acquire().failure()
    # Then it is open again, counted from the probe's failure
    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    with pytest.raises(CircuitOpen):
        breaker.acquire()
    clock.now += 1
    assert breaker.acquire().probe


def test_a_released_probe_lets_the_next_caller_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures_to_open=1, cooldown_s=5, clock=clock)
    fail(breaker, 1)
    clock.now += 5
    breaker.acquire().release()  # e.g. the consumer abandoned the stream
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.acquire().probe


def test_a_late_failure_from_before_the_opening_does_not_end_the_probe() -> None:
    clock = Clock()
    breaker = CircuitBreaker("m", failures_to_open=1, cooldown_s=5, clock=clock)
    straggler = breaker.acquire()  # in flight while the breaker opens
    fail(breaker, 1)
    clock.now += 5
    probe = breaker.acquire()
    straggler.failure()
    with pytest.raises(CircuitOpen):  # the probe is still the only call let through
        breaker.acquire()
    probe.success()
    assert breaker.state is BreakerState.CLOSED


def test_exactly_one_probe_goes_through_under_concurrent_callers() -> None:
    # Given an open breaker whose cool-down has passed
    clock = Clock()
    breaker = CircuitBreaker("m", failures_to_open=1, cooldown_s=1, clock=clock)
    fail(breaker, 1)
    clock.now += 1
    start = threading.Barrier(32)
    admitted: list[bool] = []
    refused: list[CircuitOpen] = []
    lock = threading.Lock()

    def caller() -> None:
        start.wait()
        try:
            permit = breaker.acquire()
        except CircuitOpen as exc:
            with lock:
                refused.append(exc)
            return
        with lock:
            admitted.append(permit.probe)

    # When 32 threads call at once
    threads = [threading.Thread(target=caller) for _ in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then exactly one of them is the probe; the rest failed fast
    assert admitted == [True]
    assert len(refused) == 31


def test_rejects_nonsense_limits() -> None:
    with pytest.raises(ValueError):
        CircuitBreaker("m", failures_to_open=0, cooldown_s=1)
    with pytest.raises(ValueError):
        CircuitBreaker("m", failures_to_open=1, cooldown_s=0)


def test_shared_breakers_are_one_per_name() -> None:
    reset_breakers()
    try:
        first = shared_breaker("openai:gpt", 5, 30)
        assert shared_breaker("openai:gpt", 9, 99) is first
        assert shared_breaker("anthropic:claude", 5, 30) is not first
    finally:
        reset_breakers()
