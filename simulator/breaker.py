"""The circuit-breaker state machine, free of SimPy so it can be driven and tested directly."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from simulator.policies import BreakerPolicy

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATE_CODES = {CLOSED: 0, OPEN: 1, HALF_OPEN: 2}


class CircuitBreaker:
    """One breaker: decides whether a call may proceed and learns from outcomes.

    Parameters
    ----------
    policy
        The breaker's settings.
    on_transition
        Called as ``on_transition(time, old_state, new_state)`` at every state change.

    Notes
    -----
    Transitions out of OPEN and out of a timed-out HALF_OPEN happen at the instant they become
    due (``open_until``, ``half_open_until``), which is reported as their time, even though the
    breaker notices them at the next call.
    """

    def __init__(
        self, policy: BreakerPolicy,
        on_transition: Callable[[float, str, str], None] | None = None,
    ) -> None:
        self.p = policy
        self.state = CLOSED
        self._notify = on_transition or (lambda t, a, b: None)
        count_based = policy.sliding_window_type == "count_based"
        self._window: deque[tuple[float, bool, bool]] = deque(
            maxlen=policy.sliding_window_size if count_based else None)
        self._time_based = not count_based
        self._streak = 0
        self.open_until = 0.0
        self.half_open_until = float("inf")
        self._permits = 0
        self._trial: list[tuple[bool, bool]] = []
        self.state_since = 0.0

    # ---- decisions ----------------------------------------------------------------------
    def allow(self, now: float) -> bool:
        """Whether a call starting at ``now`` may proceed (and take a half-open permit)."""
        self._advance(now)
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return False
        if self._permits > 0:
            self._permits -= 1
            return True
        return False

    def record(self, now: float, failed: bool, duration: float) -> None:
        """Learn the outcome of a call that was allowed."""
        slow = duration >= self.p.slow_call_duration_threshold
        self._advance(now)
        if self.state == HALF_OPEN:
            self._trial.append((failed, slow))
            if len(self._trial) >= self.p.permitted_number_of_calls_in_half_open_state:
                self._decide_half_open(now)
            return
        if self.state == OPEN:
            return  # a call allowed before the breaker opened: its outcome no longer counts
        self._streak = self._streak + 1 if failed else 0
        self._window.append((now, failed, slow))
        if self._time_based:
            horizon = now - self.p.sliding_window_size
            while self._window and self._window[0][0] <= horizon:
                self._window.popleft()
        if self._should_open():
            self._transition(now, OPEN)

    def state_at(self, now: float) -> str:
        """The state at ``now``, applying transitions that have become due."""
        self._advance(now)
        return self.state

    # ---- internals ----------------------------------------------------------------------
    def _should_open(self) -> bool:
        p = self.p
        if p.consecutive_failures is not None and self._streak >= p.consecutive_failures:
            return True
        n = len(self._window)
        needed = p.minimum_number_of_calls
        if not self._time_based:
            needed = min(needed, p.sliding_window_size)
        if n < needed or n == 0:
            return False
        failures = sum(1 for _, f, _ in self._window if f)
        slow = sum(1 for _, _, s in self._window if s)
        return (100.0 * failures / n >= p.failure_rate_threshold
                or 100.0 * slow / n >= p.slow_call_rate_threshold)

    def _decide_half_open(self, now: float) -> None:
        p = self.p
        n = len(self._trial)
        failures = sum(1 for f, _ in self._trial if f)
        slow = sum(1 for _, s in self._trial if s)
        if p.consecutive_failures is not None:
            reopen = failures > 0
        else:
            reopen = (100.0 * failures / n >= p.failure_rate_threshold
                      or 100.0 * slow / n >= p.slow_call_rate_threshold)
        self._transition(now, OPEN if reopen else CLOSED)

    def _advance(self, now: float) -> None:
        while True:
            if self.state == OPEN and now >= self.open_until:
                self._transition(self.open_until, HALF_OPEN)
            elif self.state == HALF_OPEN and now >= self.half_open_until:
                self._transition(self.half_open_until, OPEN)
            else:
                return

    def _transition(self, at: float, new: str) -> None:
        old = self.state
        self.state = new
        self.state_since = at
        if new == OPEN:
            self.open_until = at + self.p.wait_duration_in_open_state
        elif new == HALF_OPEN:
            self._permits = self.p.permitted_number_of_calls_in_half_open_state
            self._trial = []
            wait = self.p.max_wait_duration_in_half_open_state
            self.half_open_until = at + wait if wait > 0 else float("inf")
        else:
            self._window.clear()
            self._streak = 0
        self._notify(at, old, new)
