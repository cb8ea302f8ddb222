"""Rate limiters on call edges: five algorithms, per calling instance or shared by all of them.

``rate_limit`` on a call chooses an ``algorithm``:

``token_bucket`` (default)
    ``rate`` tokens a second, at most ``burst`` saved; an attempt takes one token or, when
    there is none, ends ``rejected`` (Envoy's local rate limit, Guava's RateLimiter without
    warm-up).
``leaky_bucket``
    The leaky bucket *as a queue* (Tanenbaum; NGINX ``limit_req`` with a ``burst``, without
    ``nodelay``): attempts leave the bucket at exactly ``rate`` a second, so the callee sees a
    smoothed stream. An attempt that cannot leave at once waits in the bucket, which holds at
    most ``capacity`` waiting attempts; one that finds it full, or whose wait would exceed
    ``max_wait``, ends ``rejected`` at once. The caller holds the waiting attempt (its wait
    is part of the latency); the edge's ``timeout`` bounds the attempt once it is sent, not
    this wait (``rate_limit`` wraps ``timeout``). ``capacity: 0`` is the leaky bucket *as a meter*
    (a policer: only attempts at least ``1 / rate`` after the previous passing one pass).
``fixed_window``
    At most ``limit`` attempts in each window ``[k window, (k + 1) window)`` counted from the
    start of the run (Redis ``INCR`` + ``EXPIRE``; Kong's ``fixed`` window type). Up to
    2 x ``limit`` can pass around a window boundary.
``sliding_window_log``
    Exact: an attempt passes when fewer than ``limit`` attempts passed in the trailing
    ``window`` (a passed attempt leaves the log ``window`` seconds later).
``sliding_window_counter``
    The two-window estimate of Cloudflare's and Kong's (``sliding`` window type) descriptions:
    with ``previous`` and ``current`` the attempts passed in the previous and the current fixed
    window and ``elapsed`` the time since the current one began, the estimate is
    ``previous x (window - elapsed) / window + current``; an attempt passes when it is below
    ``limit``.

Modelling choices
-----------------
- Only attempts that pass are counted (a rejected attempt costs the limiter nothing), for
  every algorithm; the limit applies to each attempt (retries are attempts).
- ``scope: instance`` (default): each calling instance has its own limiter, as a client
  library does. ``scope: global``: one limit shared by every calling instance of the edge (the
  same call of the same component or workload), as a central counter store synchronised
  periodically gives (Kong's ``cluster``/``redis`` policies); ``sync_interval: 0`` is a
  synchronous check on every attempt, as Envoy's global rate limit service makes.
  ``scope: target``: one limit shared by every caller of the target (all calling instances
  of every component and workload) whose ``rate_limit`` is the same, as a limit the target's
  gateway enforces per destination; callers with different limits keep different ones.
  Each instance decides with its own passes exactly and everybody else's as of the last
  synchronisation: syncs happen at the multiples of ``sync_interval`` from the start, and the
  sync at ``s`` carries every pass made before ``s`` (Kong's ``sync_rate``). So between syncs
  the instances cannot see each other and the global limit is overshot: by at most what the
  *other* instances passed since the last sync (one sync interval's worth of their attempts,
  and for the token bucket at most (instances - 1) x (``burst`` + ``rate`` x
  ``sync_interval``)). ``sync_interval: 0`` is one shared limiter, exact.
- Each algorithm is a small state machine free of SimPy (:class:`Meter`): ``decide(t)`` says
  whether an attempt at ``t`` may pass and after which wait, ``record(t)`` counts a pass. A
  view rebuilt from the synchronised passes is the same machine replaying them in time order
  (a token bucket replaying passes that no single bucket would have allowed goes into debt).
- No random draw anywhere: rate limiting is deterministic.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.distributions import Duration
from simulator.settings import refuse_ignored
from simulator.units import parse_rate

Algorithm = Literal["token_bucket", "leaky_bucket", "fixed_window", "sliding_window_log",
                    "sliding_window_counter"]
WINDOWED = ("fixed_window", "sliding_window_log", "sliding_window_counter")


class RateLimitPolicy(BaseModel):
    """A rate limit on a call edge (see :mod:`simulator.ratelimit`).

    Parameters
    ----------
    algorithm
        ``token_bucket``, ``leaky_bucket``, ``fixed_window``, ``sliding_window_log`` or
        ``sliding_window_counter``.
    rate
        Per second: tokens added (token bucket) or attempts let out (leaky bucket).
    burst
        Tokens saved at most (token bucket); the bucket starts full.
    capacity
        Attempts that may wait in a leaky bucket (0: a meter, nothing waits).
    max_wait
        Leaky bucket: an attempt that would wait longer is rejected at once.
    limit
        Attempts per ``window`` (window algorithms).
    window
        Length of the window (window algorithms), seconds.
    scope
        ``instance``: one limiter per calling instance; ``global``: one shared by every
        calling instance of the edge; ``target``: one shared by every caller of the target
        with the same limit; both synchronised every ``sync_interval``.
    sync_interval
        Seconds between synchronisations of a global limiter (0: exact, one shared limiter).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    algorithm: Algorithm = "token_bucket"
    rate: float | None = Field(None, gt=0, description="Per second.")
    burst: int = Field(1, ge=1, description="Tokens saved at most (token bucket).")
    capacity: int | None = Field(None, ge=0, description="Attempts that may wait (leaky "
                                                         "bucket).")
    max_wait: Duration | None = Field(None, ge=0, description="Longest wait in a leaky "
                                                              "bucket.")
    limit: int | None = Field(None, ge=1, description="Attempts per window.")
    window: Duration | None = Field(None, gt=0, description="Window length.")
    scope: Literal["instance", "global", "target"] = "instance"
    sync_interval: Duration = Field(0.0, ge=0, description="Seconds between syncs of a "
                                                           "global limiter.")

    @model_validator(mode="before")
    @classmethod
    def _rate(cls, data: object) -> object:
        if isinstance(data, dict) and "rate" in data and data["rate"] is not None:
            data = {**data, "rate": parse_rate(data["rate"])}
        return data

    @model_validator(mode="after")
    def _check(self) -> Self:
        a = self.algorithm
        windowed = a in WINDOWED
        needs = {"rate": not windowed, "limit": windowed, "window": windowed,
                 "capacity": a == "leaky_bucket"}
        for name, required in needs.items():
            if required and getattr(self, name) is None:
                raise ValueError(f"{name} is required with algorithm {a}")
        refuse_ignored(self, [
            ("rate", not windowed, f"by algorithm {a}; it applies to token_bucket and "
                                   "leaky_bucket (windows take limit and window)"),
            ("burst", a == "token_bucket", f"by algorithm {a}; it applies to token_bucket"),
            ("capacity", a == "leaky_bucket", f"by algorithm {a}; it applies to leaky_bucket"),
            ("max_wait", a == "leaky_bucket", f"by algorithm {a}; it applies to leaky_bucket"),
            ("limit", windowed, f"by algorithm {a}; it applies to the window algorithms"),
            ("window", windowed, f"by algorithm {a}; it applies to the window algorithms"),
            ("sync_interval", self.scope != "instance", "with scope instance; it applies to "
                                                        "scopes global and target"),
        ])
        return self

    def meter(self) -> Meter:
        """A fresh limiter of this policy's algorithm."""
        if self.algorithm == "token_bucket":
            return TokenBucket(float(self.rate or 0), self.burst)
        if self.algorithm == "leaky_bucket":
            return LeakyBucket(float(self.rate or 0), int(self.capacity or 0), self.max_wait)
        limit, window = int(self.limit or 0), float(self.window or 0)
        if self.algorithm == "fixed_window":
            return FixedWindow(limit, window)
        if self.algorithm == "sliding_window_log":
            return SlidingWindowLog(limit, window)
        return SlidingWindowCounter(limit, window)


class Meter:
    """One limiter's state. Times given to one meter never decrease."""

    def decide(self, t: float) -> float | None:
        """The wait before an attempt at ``t`` may go (0: at once), or None: rejected."""
        raise NotImplementedError

    def record(self, t: float) -> None:
        """Count an attempt passed at ``t`` (whatever ``decide`` would say: replays)."""
        raise NotImplementedError

    def copy(self) -> Self:
        """An independent copy of the state."""
        raise NotImplementedError

    def admit(self, t: float) -> float | None:
        """Decide on an attempt at ``t`` and count it if it passes."""
        wait = self.decide(t)
        if wait is not None:
            self.record(t)
        return wait


class TokenBucket(Meter):
    """``rate`` tokens a second, ``burst`` at most, starting full; a pass takes one."""

    def __init__(self, rate: float, burst: int) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = float(burst), 0.0

    def _level(self, t: float) -> float:
        return min(self.burst, self.tokens + (t - self.at) * self.rate)

    def decide(self, t: float) -> float | None:
        return 0.0 if self._level(t) >= 1.0 else None

    def record(self, t: float) -> None:
        self.tokens = self._level(t) - 1.0  # below zero: debt from passes seen late
        self.at = t

    def copy(self) -> Self:
        twin = type(self)(self.rate, self.burst)
        twin.tokens, twin.at = self.tokens, self.at
        return twin


class LeakyBucket(Meter):
    """Attempts leave at ``rate`` a second; at most ``capacity`` wait, each at most
    ``max_wait`` (None: only the capacity bounds the wait, by ``capacity / rate``)."""

    def __init__(self, rate: float, capacity: int, max_wait: float | None) -> None:
        self.rate, self.capacity, self.max_wait = rate, capacity, max_wait
        self.last = -math.inf  # when the latest passed attempt leaves (left) the bucket
        self.leaving: deque[float] = deque()  # departures still to come, in order

    def _departure(self, t: float) -> float:
        return max(t, self.last + 1.0 / self.rate)

    def decide(self, t: float) -> float | None:
        leaving = self.leaving
        while leaving and leaving[0] <= t:
            leaving.popleft()
        wait = self._departure(t) - t
        if wait > 0 and (len(leaving) >= self.capacity
                         or (self.max_wait is not None and wait > self.max_wait)):
            return None
        return wait

    def record(self, t: float) -> None:
        self.last = self._departure(t)
        if self.last > t:
            self.leaving.append(self.last)

    def copy(self) -> Self:
        twin = type(self)(self.rate, self.capacity, self.max_wait)
        twin.last, twin.leaving = self.last, deque(self.leaving)
        return twin


class FixedWindow(Meter):
    """At most ``limit`` passes in each ``[k window, (k + 1) window)``."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.index, self.count = 0, 0

    def _roll(self, t: float) -> None:
        k = math.floor(t / self.window)
        if k != self.index:
            self.index, self.count = k, 0

    def decide(self, t: float) -> float | None:
        self._roll(t)
        return 0.0 if self.count < self.limit else None

    def record(self, t: float) -> None:
        self._roll(t)
        self.count += 1

    def copy(self) -> Self:
        twin = type(self)(self.limit, self.window)
        twin.index, twin.count = self.index, self.count
        return twin


class SlidingWindowLog(Meter):
    """At most ``limit`` passes in any trailing ``window`` (a pass at ``s`` counts on
    ``[s, s + window)``)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.log: deque[float] = deque()

    def decide(self, t: float) -> float | None:
        horizon = t - self.window
        log = self.log
        while log and log[0] <= horizon:
            log.popleft()
        return 0.0 if len(log) < self.limit else None

    def record(self, t: float) -> None:
        self.log.append(t)

    def copy(self) -> Self:
        twin = type(self)(self.limit, self.window)
        twin.log = deque(self.log)
        return twin


class SlidingWindowCounter(Meter):
    """The weighted two-window estimate: ``previous x (window - elapsed) / window +
    current`` must be below ``limit``."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.index, self.previous, self.current = 0, 0, 0

    def _roll(self, t: float) -> None:
        k = math.floor(t / self.window)
        if k != self.index:
            self.previous = self.current if k == self.index + 1 else 0
            self.index, self.current = k, 0

    def estimate(self, t: float) -> float:
        """The estimated passes in the trailing window at ``t``."""
        self._roll(t)
        elapsed = t - self.index * self.window
        return self.previous * (self.window - elapsed) / self.window + self.current

    def decide(self, t: float) -> float | None:
        return 0.0 if self.estimate(t) < self.limit else None

    def record(self, t: float) -> None:
        self._roll(t)
        self.current += 1

    def copy(self) -> Self:
        twin = type(self)(self.limit, self.window)
        twin.index, twin.previous, twin.current = self.index, self.previous, self.current
        return twin


class GlobalLimiter:
    """One limit shared by several calling instances, synchronised every ``sync_interval``.

    Instance ``who`` deciding at ``t`` in sync period ``k = floor(t / sync_interval)`` sees a
    view: the passes of every instance made before ``k x sync_interval`` (replayed in time
    order into one meter) plus its own since. ``sync_interval`` 0: one meter, seen by all at
    once.
    """

    def __init__(self, policy: RateLimitPolicy) -> None:
        self.interval = float(policy.sync_interval)
        self.base = policy.meter()  # every pass up to the latest sync taken
        self.pending: deque[float] = deque()  # passes after it, in time order
        self.views: dict[str, tuple[int, Meter]] = {}

    def _period(self, t: float) -> int:
        return math.floor(t / self.interval)

    def admit(self, t: float, who: str) -> float | None:
        """The wait of ``who``'s attempt at ``t`` (counted as passed), or None: rejected."""
        if self.interval <= 0:
            wait = self.base.decide(t)
            if wait is not None:
                self.base.record(t)
            return wait
        k = self._period(t)
        seen = self.views.get(who)
        if seen is None or seen[0] != k:
            while self.pending and self._period(self.pending[0]) < k:
                self.base.record(self.pending.popleft())
            seen = (k, self.base.copy())
            self.views[who] = seen
        view = seen[1]
        wait = view.decide(t)
        if wait is not None:
            view.record(t)
            self.pending.append(t)
        return wait
