"""Hedged requests against computations that do not use the simulator (``tests/hedging.py``).

* HEDGE-A (no queueing): the reply time is the order statistic ``H = min(X1, d + X2)``;
  checked on both sides of the hedge delay (``t < d``: only the original can have answered;
  ``t >= d``: the product of the two survival functions) and on which copy answers first.
* A fleet of M/M/1 servers behind ``random``, hedged to a distinct server: the tail
  ``P(T > t)`` against a direct Monte-Carlo of the same system (queues interact through the
  hedges, so there is no closed form).

Tolerances are fixed before running: 4 standard errors (requests are independent without
queueing, so binomial; with queueing, from 40 batch means of each run).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.conftest import run
from tests.hedging import (
    MS,
    HedgedFleet,
    hedge_a_density,
    hedge_a_sf,
    hedge_win_probability,
    hedged_sf,
)

Z = 4.0


def test_hedge_a_both_halves_match_the_order_statistic() -> None:
    """``P(H > t) = P(X > t)`` before the hedge (t < d), ``P(X > t) P(X > t - d)`` after it,
    and the hedged copy answers first with probability ``P(d + X2 < X1)``."""
    d = 23.78 * MS
    requests = 200_000
    r = run({
        "duration": requests / 2000, "drain": 10,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 2000},
                            "target": {"to": "s", "hedge": {"delay": d}}}},
        "components": {"s": {"kind": "service", "replicas": 2, "workers": 100_000,
                             "service_time": {"dist": "mixture", "components": [
                                 {"weight": 0.97, "of": {"dist": "exponential", "mean": "5ms",
                                                         "shift": "5ms"}},
                                 {"weight": 0.03, "of": {"dist": "exponential",
                                                         "mean": "200ms",
                                                         "shift": "5ms"}}]}}},
    }, seed=3)
    lat = r.requests["latency"].to_numpy()
    n = len(lat)
    assert n > 0.98 * requests
    sf = hedged_sf(hedge_a_sf, d)
    for t in (8 * MS, 15 * MS, 20 * MS, 30 * MS, 50 * MS, 100 * MS):
        p = sf(t)
        got = float((lat > t).mean())
        assert abs(got - p) <= Z * math.sqrt(p * (1 - p) / n), (t, got, p)
    # which copy answered: the hedged one (sent at arrival + d) ends before the original
    spans = r.spans.sort_values(["request_id", "arrival"])
    ends = spans.groupby("request_id")["end"]
    first_end, last_end = ends.first(), ends.last()
    copies = spans.groupby("request_id").size()
    hedge_won = float(((copies == 2) & (last_end < first_end)).sum()) / n
    p_win = hedge_win_probability(hedge_a_sf, hedge_a_density, d)
    assert abs(hedge_won - p_win) <= Z * math.sqrt(p_win * (1 - p_win) / n)
    p_sent = hedge_a_sf(d)  # a copy is sent when the original has not answered by d
    sent = float((copies == 2).mean())
    assert abs(sent - p_sent) <= Z * math.sqrt(p_sent * (1 - p_sent) / n)
    # the two halves are different: a hedge wins in less than half the hedged calls
    assert 0.2 < p_win / p_sent < 0.8


SERVERS, RATE, SERVICE, DELAY = 10, 300.0, 10 * MS, 20 * MS
TAIL_AT = (2 * DELAY, 2.5 * DELAY)


def _tail(lat: np.ndarray, t: float, batches: int = 40) -> tuple[float, float]:
    """``P(T > t)`` and its standard error from ``batches`` batch means (in arrival order)."""
    x = (lat > t).astype(float)
    x = x[: len(x) // batches * batches].reshape(batches, -1).mean(axis=1)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(batches))


@pytest.mark.slow
def test_hedged_tail_over_mm1_fleet_matches_a_direct_monte_carlo() -> None:
    """10 M/M/1 servers (10 ms) behind ``random`` at 30% load, hedged after 20 ms to a distinct
    server: ``P(T > 40 ms)`` and ``P(T > 50 ms)`` within 4 standard errors of a Monte-Carlo of
    the same system (``tests/hedging.py:HedgedFleet``)."""
    requests = 200_000
    r = run({
        "duration": requests / RATE, "drain": 30, "metrics": {"spans": False, "interval": 100},
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": RATE},
                            "target": {"to": "lb", "hedge": {"delay": DELAY}}}},
        "components": {"lb": {"kind": "load_balancer", "backends": ["s"], "strategy": "random"},
                       "s": {"kind": "service", "replicas": SERVERS, "workers": 1,
                             "service_time": {"dist": "exponential", "mean": SERVICE}}},
    }, seed=11)
    sim = r.requests.sort_values("request_id")["latency"].to_numpy()
    warm = len(sim) // 50  # both start empty; drop the first 2% of each
    sim = sim[warm:]
    fleet = HedgedFleet(SERVERS, RATE, SERVICE, DELAY, distinct=True)
    mc = fleet.latencies(2 * requests, seed=12)[2 * warm:]
    same = HedgedFleet(SERVERS, RATE, SERVICE, DELAY, distinct=False).latencies(
        2 * requests, seed=12)[2 * warm:]
    for t in TAIL_AT:
        p_sim, se_sim = _tail(sim, t)
        p_mc, se_mc = _tail(mc, t)
        tolerance = Z * math.hypot(se_sim, se_mc)
        assert abs(p_sim - p_mc) <= tolerance, (t, p_sim, p_mc, tolerance)
        # the tolerance is tight enough to tell a distinct server from any server: hedging to
        # any server (one copy in ten behind its original) would fall outside it
        p_same, _ = _tail(same, t)
        assert p_same - p_mc > tolerance, (t, p_same, p_mc, tolerance)
