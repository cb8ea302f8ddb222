"""The circuit breaker against its specification, driven by arbitrary call sequences."""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from simulator.policies import BreakerPolicy

LEGAL = {(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, OPEN), (HALF_OPEN, CLOSED)}


class Spec:
    """The specification, written as plainly as possible (no shared code with the breaker)."""

    def __init__(self, p: BreakerPolicy) -> None:
        self.p = p
        self.state = CLOSED
        self.calls: list[tuple[float, bool, bool]] = []  # outcomes recorded while closed
        self.open_at = 0.0
        self.half_at = 0.0
        self.permits = 0
        self.trial: list[tuple[bool, bool]] = []

    def tick(self, now: float) -> None:
        p = self.p
        while True:
            if self.state == OPEN and now >= self.open_at + p.wait_duration_in_open_state:
                self.half_at = self.open_at + p.wait_duration_in_open_state
                self.state, self.permits, self.trial = HALF_OPEN, \
                    p.permitted_number_of_calls_in_half_open_state, []
            elif (self.state == HALF_OPEN and p.max_wait_duration_in_half_open_state > 0
                  and now >= self.half_at + p.max_wait_duration_in_half_open_state):
                self.open_at = self.half_at + p.max_wait_duration_in_half_open_state
                self.state = OPEN
            else:
                return

    def allow(self, now: float) -> bool:
        self.tick(now)
        if self.state == HALF_OPEN and self.permits > 0:
            self.permits -= 1
            return True
        return self.state == CLOSED

    def record(self, now: float, failed: bool, duration: float) -> None:
        p = self.p
        slow = duration >= p.slow_call_duration_threshold
        self.tick(now)
        if self.state == HALF_OPEN:
            self.trial.append((failed, slow))
            if len(self.trial) == p.permitted_number_of_calls_in_half_open_state:
                f = sum(x for x, _ in self.trial) / len(self.trial) * 100
                s = sum(y for _, y in self.trial) / len(self.trial) * 100
                bad = (f > 0 if p.consecutive_failures else
                       f >= p.failure_rate_threshold or s >= p.slow_call_rate_threshold)
                if bad:
                    self.state, self.open_at = OPEN, now
                else:
                    self.state, self.calls = CLOSED, []
            return
        if self.state != CLOSED:
            return
        self.calls.append((now, failed, slow))
        if p.sliding_window_type == "count_based":
            window = self.calls[-p.sliding_window_size:]
            needed = min(p.minimum_number_of_calls, p.sliding_window_size)
        else:
            window = [c for c in self.calls if c[0] > now - p.sliding_window_size]
            needed = p.minimum_number_of_calls
        streak = 0
        for _, f, _ in reversed(self.calls):
            if not f:
                break
            streak += 1
        trip = p.consecutive_failures is not None and streak >= p.consecutive_failures
        if len(window) >= needed:
            f = sum(c[1] for c in window) / len(window) * 100
            s = sum(c[2] for c in window) / len(window) * 100
            trip = trip or f >= p.failure_rate_threshold or s >= p.slow_call_rate_threshold
        if trip:
            self.state, self.open_at, self.calls = OPEN, now, []


policies = st.builds(
    BreakerPolicy,
    failure_rate_threshold=st.sampled_from([20.0, 50.0, 100.0]),
    slow_call_rate_threshold=st.sampled_from([50.0, 100.0]),
    slow_call_duration_threshold=st.sampled_from([0.5, 2.0]),
    sliding_window_type=st.sampled_from(["count_based", "time_based"]),
    sliding_window_size=st.integers(1, 8),
    minimum_number_of_calls=st.integers(1, 6),
    wait_duration_in_open_state=st.sampled_from([0.5, 1.0, 3.0]),
    permitted_number_of_calls_in_half_open_state=st.integers(1, 3),
    max_wait_duration_in_half_open_state=st.sampled_from([0.0, 2.0]),
    consecutive_failures=st.one_of(st.none(), st.integers(1, 4)),
)
steps = st.lists(st.tuples(st.floats(0, 1.5), st.booleans(), st.floats(0, 3)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(policy=policies, calls=steps)
def test_breaker_follows_its_specification(policy: BreakerPolicy,
                                           calls: list[tuple[float, bool, float]]) -> None:
    transitions: list[tuple[float, str, str]] = []
    breaker = CircuitBreaker(policy, lambda t, a, b: transitions.append((t, a, b)))
    spec = Spec(policy)
    now = 0.0
    for gap, failed, duration in calls:
        now += gap
        allowed = breaker.allow(now)
        assert allowed == spec.allow(now)
        assert breaker.state == spec.state
        if allowed:  # the outcome arrives at once; ``duration`` only says whether it was slow
            breaker.record(now, failed, duration)
            spec.record(now, failed, duration)
            assert breaker.state == spec.state
    times = [t for t, _, _ in transitions]
    assert times == sorted(times)
    assert all((a, b) in LEGAL for _, a, b in transitions)
    for (_, _, b), (_, a, _) in itertools.pairwise(transitions):
        assert b == a  # each transition starts where the last one ended


@given(calls=st.lists(st.booleans(), max_size=60))
def test_consecutive_failures_open_exactly_at_the_streak(calls: list[bool]) -> None:
    policy = BreakerPolicy(consecutive_failures=3, failure_rate_threshold=100,
                           minimum_number_of_calls=1000, sliding_window_size=1000)
    breaker = CircuitBreaker(policy)
    streak = 0
    for i, failed in enumerate(calls):
        assert breaker.allow(float(i))
        breaker.record(float(i), failed, 0.0)
        streak = streak + 1 if failed else 0
        if streak == 3:
            assert breaker.state == OPEN
            return
        assert breaker.state == CLOSED


def test_open_breaker_short_circuits_until_the_wait_ends() -> None:
    breaker = CircuitBreaker(BreakerPolicy(consecutive_failures=1,
                                           wait_duration_in_open_state=5))
    breaker.record(1.0, True, 0.0)
    assert not breaker.allow(5.99)
    assert breaker.allow(6.0) and breaker.state == HALF_OPEN
    extra: Any = breaker.allow(6.0)
    assert extra  # 10 permits by default
