"""Shared pieces of the fast hand-written SimPy baselines (``fast_cachedb.py``, ``fast_mmc.py``).

These are the tricks an expert SimPy user reaches for when a model must run fast, all on the
public SimPy API plus one three-line :class:`simpy.Event` subclass:

* **No Process per request or per hop.** Servers are long-lived worker processes pulling
  requests from a hand-written FIFO (a :class:`collections.deque`); one process generates
  all arrivals.
* **One event per wait, and none for the wake-up.** A worker that finds its queue empty
  parks on a :class:`Handoff` event. The arrival that finds a parked worker draws the
  service time and schedules that event to fire *when the service ends* (as a
  :class:`simpy.Timeout` would), so serving a request that found an idle worker costs one
  event, the same as serving one that queued. A database connection is handed to the next
  waiter the same way.
* **Batched draws.** Variates come from numpy in blocks of :data:`BATCH`, turned into
  Python floats once (``tolist``) and served by :func:`itertools.chain` iterators, so a
  draw is one C-level ``next`` call.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import simpy
from simpy.events import NORMAL

BATCH = 4096
"""Number of random variates drawn from numpy per refill."""


class Handoff(simpy.Event):
    """An event a parked process waits on, fired later by whoever hands it work.

    :meth:`fire_after` is what :class:`simpy.Timeout`'s constructor does: mark the event
    successful with ``value`` and schedule it ``delay`` seconds from now. The process parked
    on it therefore resumes once the work it was handed is done, with no intermediate
    wake-up event.
    """

    def fire_after(self, delay: float, value: Any = None) -> None:
        """Succeed with ``value``, processed ``delay`` simulated seconds from now."""
        self._ok = True
        self._value = value
        self.env.schedule(self, NORMAL, delay)


class CountingEnvironment(simpy.Environment):
    """A :class:`simpy.Environment` that counts the events it processes (untimed runs only)."""

    def __init__(self, initial_time: float = 0) -> None:
        super().__init__(initial_time)
        self.events_processed = 0

    def step(self) -> None:
        """Process the next event and increment :attr:`events_processed`."""
        self.events_processed += 1
        super().step()


def stream(draw: Callable[[int], np.ndarray], size: int = BATCH) -> Iterator[Any]:
    """Values one at a time from arrays ``draw(size)`` produced on demand."""
    return itertools.chain.from_iterable(draw(size).tolist() for _ in itertools.count())


def pairs(rng: np.random.Generator, n: int, size: int = BATCH) -> Iterator[tuple[int, int]]:
    """Ordered pairs of distinct integers drawn uniformly from ``range(n)``."""

    def block() -> Iterator[tuple[int, int]]:
        first = rng.integers(0, n, size)
        second = rng.integers(0, n - 1, size)
        second += second >= first  # skip ``first``: uniform over the other n - 1
        return zip(first.tolist(), second.tolist(), strict=True)

    return itertools.chain.from_iterable(block() for _ in itertools.count())


def summary(starts: list[float], ends: list[float], warmup: float) -> dict[str, float | int]:
    """Requests, mean and p99 latency of all completed requests, and the count and mean
    latency of those that arrived at or after ``warmup`` (seconds)."""
    start = np.asarray(starts)
    latency = np.asarray(ends) - start
    steady = latency[start >= warmup]
    nan = float("nan")
    return {
        "requests": len(latency),
        "mean_latency": float(latency.mean()) if len(latency) else nan,
        "p99_latency": float(np.percentile(latency, 99)) if len(latency) else nan,
        "steady_requests": len(steady),
        "steady_mean_latency": float(steady.mean()) if len(steady) else nan,
    }
