"""Hedged requests computed without the simulator: the order statistic of a hedge without
queueing (exact), and a direct Monte-Carlo of hedging over a fleet of M/M/1 servers.

References
----------
Dean and Barroso, "The tail at scale", CACM 56(2), 2013 (hedge after the p95 to another
replica); the HEDGE-A case of ``tests/data/reference/cases.json``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import integrate, optimize

Sf = Callable[[float], float]


def hedged_sf(sf: Sf, d: float) -> Sf:
    """Survival function of ``H = min(X1, d + X2)``, ``X1, X2`` independent with survival
    ``sf``: the reply time of a call hedged after ``d`` to an independent replica, when nothing
    queues. ``P(H > t) = P(X > t)`` for ``t < d`` (only the original is out), and
    ``P(X > t) P(X > t - d)`` for ``t >= d``."""
    return lambda t: sf(t) * (sf(t - d) if t >= d else 1.0)


def mean_of(sf: Sf, breaks: tuple[float, ...] = ()) -> float:
    """``E[T] = integral of P(T > t) dt`` over ``t >= 0`` (``breaks``: kinks of ``sf``)."""
    points = sorted({0.0, *breaks})
    total = sum(integrate.quad(sf, a, b, limit=200)[0] for a, b in itertools.pairwise(points))
    return total + integrate.quad(sf, points[-1], math.inf, limit=200)[0]


def quantile_of(sf: Sf, p: float, high: float) -> float:
    """The ``p`` quantile: the ``t`` with ``P(T > t) = 1 - p`` (``sf`` continuous, ``high``
    beyond it)."""
    return float(optimize.brentq(lambda t: sf(t) - (1.0 - p), 0.0, high, xtol=1e-12))


def hedge_win_probability(sf: Sf, density: Callable[[float], float], d: float) -> float:
    """``P(d + X2 < X1)``: the hedged copy answers first. ``integral f(x) P(X > x + d) dx``."""
    return float(integrate.quad(lambda x: density(x) * sf(x + d), 0.0, math.inf,
                                limit=400)[0])


MS = 0.001


def hedge_a_sf(t: float) -> float:
    """Survival function of HEDGE-A's service time (seconds): 5 ms + Exp(mean 5 ms) with
    probability 0.97, 5 ms + Exp(mean 200 ms) with probability 0.03."""
    if t < 5 * MS:
        return 1.0
    x = t - 5 * MS
    return 0.97 * math.exp(-x / (5 * MS)) + 0.03 * math.exp(-x / (200 * MS))


def hedge_a_density(t: float) -> float:
    """Density of HEDGE-A's service time (per second)."""
    if t < 5 * MS:
        return 0.0
    x = t - 5 * MS
    return (0.97 / (5 * MS) * math.exp(-x / (5 * MS))
            + 0.03 / (200 * MS) * math.exp(-x / (200 * MS)))


@dataclass(frozen=True)
class HedgedFleet:
    """Hedging over ``servers`` identical FIFO single-worker servers with exponential service.

    Requests arrive as a Poisson process of rate ``rate`` and go to a server drawn uniformly
    at random; if no reply after ``delay``, one copy goes to a server drawn uniformly among
    the others (``distinct``) or among all; the first reply wins, and a copy still queued when
    the other has answered is dropped when its turn comes, without work (``cancel``).
    """

    servers: int
    rate: float
    mean_service: float
    delay: float
    distinct: bool = True

    def latencies(self, requests: int, seed: int) -> np.ndarray:
        """Reply time of each of ``requests`` requests, in arrival order."""
        rng = np.random.default_rng(seed)
        n = self.servers
        arrivals = np.cumsum(rng.exponential(1.0 / self.rate, requests))
        first = rng.integers(0, n, requests)
        other = rng.integers(0, n - 1 if self.distinct else n, requests)
        work = rng.exponential(self.mean_service, 2 * requests)
        done = np.full(requests, math.nan)
        queue: list[deque[int]] = [deque() for _ in range(n)]
        busy = [False] * n
        # (time, kind, job, server); job 2i is request i's original, 2i + 1 its hedged copy
        events: list[tuple[float, int, int, int]] = []
        arrive, hedge, finish = 0, 1, 2
        for i, t in enumerate(arrivals):
            events.append((float(t), arrive, 2 * i, 0))
        heapq.heapify(events)

        def offer(server: int, job: int, now: float) -> None:
            if busy[server]:
                queue[server].append(job)
            else:
                busy[server] = True
                heapq.heappush(events, (now + work[job], finish, job, server))

        while events:
            now, kind, job, server = heapq.heappop(events)
            i = job // 2
            if kind == arrive:
                offer(int(first[i]), 2 * i, now)
                heapq.heappush(events, (now + self.delay, hedge, 2 * i, 0))
            elif kind == hedge:
                if math.isnan(done[i]):
                    j = int(other[i])
                    if self.distinct:
                        j += j >= first[i]
                    offer(j, 2 * i + 1, now)
            else:
                if math.isnan(done[i]):
                    done[i] = now
                busy[server] = False
                waiting = queue[server]
                while waiting:
                    nxt = waiting.popleft()
                    if math.isnan(done[nxt // 2]):
                        offer(server, nxt, now)
                        break
        return done - arrivals
