"""Rate limiters on call edges: each algorithm passes exactly the requests a hand computation
says, the sliding-window counter is its two-window formula, and a global limit shared by
several callers behaves as one limiter when synchronised at once and overshoots by no more
than its bound when synchronised every ``sync_interval``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import simulator
from simulator.ratelimit import GlobalLimiter, RateLimitPolicy, SlidingWindowCounter
from tests.conftest import run


def limited(rate_limit: dict[str, Any], rate: float = 8, duration: float = 2.99,
            replicas: int = 0) -> simulator.Results:
    """Constant arrivals at ``rate`` (the n-th at n / rate) through the edge's limiter into a
    service answering at once; with ``replicas``, into that many calling instances behind a
    round-robin balancer, each calling ``s`` through the (shared) limit."""
    s = {"kind": "service", "workers": 10_000, "service_time": 0}
    if not replicas:
        return run({"duration": duration, "drain": 30,
                    "workloads": {"w": {"arrivals": {"process": "constant", "rate": rate},
                                        "target": {"to": "s", "rate_limit": rate_limit}}},
                    "components": {"s": s}})
    return run({"duration": duration, "drain": 30, "metrics": {"spans": False},
                "workloads": {"w": {"arrivals": {"process": "constant", "rate": rate},
                                    "target": "lb"}},
                "components": {
                    "lb": {"kind": "load_balancer", "backends": ["api"],
                           "strategy": "round_robin"},
                    "api": {"kind": "service", "replicas": replicas, "workers": 10_000,
                            "service_time": 0,
                            "calls": {"*": [{"to": "s", "rate_limit": rate_limit}]}},
                    "s": s}})


def passed(r: simulator.Results) -> list[int]:
    """Numbers (from 1, in arrival order) of the requests that were let through."""
    req = r.requests.sort_values("start")
    status = req["status"].astype(str).to_numpy()
    assert set(status) <= {"ok", "rejected"}
    return [int(i) + 1 for i in np.flatnonzero(status == "ok")]


# ---- each algorithm, constant arrivals every 1/8 s (n = 1..23), exact ---------------------

# Hand computations, request n arriving at n/8 s:
# token bucket 2/s, burst 3: 3 tokens spent by n = 1..3, then one token every 0.5 s = 4 arrivals.
# leaky bucket 2/s, capacity 2: n = 1 leaves at once, n = 2 and 3 wait (departures 0.625,
# 1.125), n = 4 finds two waiting; each departure frees a place for the next arrival (n = 5 at
# 0.625, then every 4th), the admissions of a token bucket of burst capacity + 1.
# with max_wait 0.8 s: n = 5 would wait 1.0 s and n = 6 0.875 s, n = 7 waits 0.75 s; then
# every 4th. capacity 0 is the meter: only arrivals 0.5 s after the last pass.
# fixed window 3 per 1 s: the first three of [0, 1), [1, 2), [2, 3) (n = 8 is at 1.0 exactly).
# sliding log 3 per 1 s: n = 1..3, then once each leaves, 1 s later: n = 9, 10, 11, 17...
# sliding counter 3 per 1 s: window 1 starts with previous = 3: the estimate 3 (1 - e) + cur
# is below 3 at e = 0.125 (2.625, n = 9), 0.375 (2.875, n = 11), 0.75 (2.75, n = 14), and
# window 2 repeats it (previous = 3 again).
CASES: dict[str, tuple[dict[str, Any], list[int]]] = {
    "token_bucket": ({"rate": "2/s", "burst": 3}, [1, 2, 3, 5, 9, 13, 17, 21]),
    "leaky_bucket": ({"algorithm": "leaky_bucket", "rate": 2, "capacity": 2},
                     [1, 2, 3, 5, 9, 13, 17, 21]),
    "leaky_bucket_max_wait": ({"algorithm": "leaky_bucket", "rate": 2, "capacity": 2,
                               "max_wait": 0.8}, [1, 2, 3, 7, 11, 15, 19, 23]),
    "leaky_bucket_meter": ({"algorithm": "leaky_bucket", "rate": 2, "capacity": 0},
                           [1, 5, 9, 13, 17, 21]),
    "fixed_window": ({"algorithm": "fixed_window", "limit": 3, "window": "1s"},
                     [1, 2, 3, 8, 9, 10, 16, 17, 18]),
    "sliding_window_log": ({"algorithm": "sliding_window_log", "limit": 3, "window": 1},
                           [1, 2, 3, 9, 10, 11, 17, 18, 19]),
    "sliding_window_counter": ({"algorithm": "sliding_window_counter", "limit": 3,
                                "window": 1}, [1, 2, 3, 9, 11, 14, 17, 19, 22]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_algorithm_passes_exactly_the_hand_computed_requests(case: str) -> None:
    policy, expected = CASES[case]
    r = limited(policy)
    assert len(r.requests) == 23
    assert passed(r) == expected
    # the callee never sees a rejected attempt
    assert len(r.spans) == len(expected)


def test_leaky_bucket_smooths_to_its_rate_and_waits_exactly() -> None:
    """Capacity 2 at 2/s: the passes leave at 0.125 (at once), 0.625, 1.125, 1.625... exactly
    0.5 s apart, each after waiting departure - arrival (0, 0.375, 0.75, then 1.0)."""
    r = limited(CASES["leaky_bucket"][0])
    ok = r.requests[r.requests["status"] == "ok"].sort_values("start")
    departures = 0.125 + 0.5 * np.arange(len(ok))
    assert np.allclose(np.sort(r.spans["arrival"].to_numpy()), departures, atol=1e-12)
    assert np.allclose(ok["latency"], [0, 0.375, 0.75] + [1.0] * (len(ok) - 3), atol=1e-12)
    rejected = r.requests[r.requests["status"] == "rejected"]
    assert np.allclose(rejected["latency"], 0)  # a full bucket refuses at once


def test_existing_spelling_is_the_token_bucket() -> None:
    assert RateLimitPolicy.model_validate({"rate": "10/s", "burst": 5}) == RateLimitPolicy(
        algorithm="token_bucket", rate=10, burst=5)


# ---- the sliding-window counter is its formula; the log is exact ---------------------------

times = st.lists(st.floats(0, 0.7, allow_nan=False), min_size=1, max_size=80).map(
    lambda gaps: list(np.cumsum(gaps)))


@settings(max_examples=60, deadline=None)
@given(times, st.integers(1, 6), st.sampled_from([0.25, 0.5, 1.0, 3.0]))
def test_sliding_window_counter_is_the_weighted_two_window_estimate(
        arrivals: list[float], limit: int, window: float) -> None:
    """Brute force: previous and current are the passes counted in the fixed windows
    ``floor(t / window) - 1`` and ``floor(t / window)``; estimate = previous x (window -
    elapsed) / window + current; a request passes iff the estimate is below the limit."""
    meter = SlidingWindowCounter(limit, window)
    passes: list[float] = []
    for t in arrivals:
        k = math.floor(t / window)
        prev = sum(1 for s in passes if math.floor(s / window) == k - 1)
        cur = sum(1 for s in passes if math.floor(s / window) == k)
        estimate = prev * (window - (t - k * window)) / window + cur
        assert abs(meter.estimate(t) - estimate) < 1e-9
        ok = meter.admit(t) is not None
        if abs(estimate - limit) > 1e-9:  # away from an exact tie the decision is the formula's
            assert ok == (estimate < limit)
        if ok:
            passes.append(t)


@settings(max_examples=60, deadline=None)
@given(times, st.integers(1, 6), st.sampled_from([0.25, 0.5, 1.0, 3.0]))
def test_sliding_window_log_is_exact(arrivals: list[float], limit: int, window: float) -> None:
    meter = RateLimitPolicy(algorithm="sliding_window_log", limit=limit, window=window).meter()
    passes: list[float] = []
    for t in arrivals:
        recent = sum(1 for s in passes if s > t - window)
        ok = meter.admit(t) is not None
        assert ok == (recent < limit)
        if ok:
            passes.append(t)


# ---- a global limit ---------------------------------------------------------------------------

POLICIES: dict[str, dict[str, Any]] = {
    "token_bucket": {"rate": 20, "burst": 3},
    "leaky_bucket": {"algorithm": "leaky_bucket", "rate": 20, "capacity": 3},
    "fixed_window": {"algorithm": "fixed_window", "limit": 5, "window": 0.25},
    "sliding_window_log": {"algorithm": "sliding_window_log", "limit": 5, "window": 0.25},
    "sliding_window_counter": {"algorithm": "sliding_window_counter", "limit": 5,
                               "window": 0.25},
}

#: arrivals of several instances on a 1/1024 s grid (exact in binary, distinct)
streams = st.lists(st.tuples(st.integers(0, 4), st.integers(1, 2048)), min_size=1,
                   max_size=150, unique_by=lambda x: x[1]).map(
    lambda xs: sorted(((slot / 1024, f"api[{who}]") for who, slot in xs)))


@settings(max_examples=40, deadline=None)
@given(streams, st.sampled_from(sorted(POLICIES)))
def test_global_limit_synchronised_at_once_is_one_shared_limiter(
        arrivals: list[tuple[float, str]], algorithm: str) -> None:
    """sync_interval 0, and any sync_interval shorter than the gap between arrivals (here
    1/4096 s < 1/1024 s), decide as one limiter fed the merged stream does."""
    one = RateLimitPolicy.model_validate(POLICIES[algorithm]).meter()
    exact = GlobalLimiter(RateLimitPolicy.model_validate(
        {**POLICIES[algorithm], "scope": "global"}))
    fine = GlobalLimiter(RateLimitPolicy.model_validate(
        {**POLICIES[algorithm], "scope": "global", "sync_interval": 1 / 4096}))
    for t, who in arrivals:
        expected = one.admit(t)
        assert exact.admit(t, who) == expected
        assert fine.admit(t, who) == expected


def test_global_limit_in_a_run_is_one_limiter_when_synchronised_at_once() -> None:
    """Four calling instances sharing a sliding log of 3 per second pass exactly what the one
    instance of the hand computation passes (the limiter sees the same merged stream)."""
    policy = {**CASES["sliding_window_log"][0], "scope": "global"}
    assert passed(limited(policy, replicas=4)) == CASES["sliding_window_log"][1]
    # per instance, each of the four would pass its own three a second
    assert len(passed(limited(CASES["sliding_window_log"][0], replicas=4))) > 9


def test_global_fixed_window_overshoot_is_the_hand_computed_one() -> None:
    """Four instances, 256/s each (round robin of 1024/s), share 300 per 1 s window, synced
    every 1/8 s. Window [0, 1): requests 1..127 arrive before the first sync and all pass;
    the sync at 1/8 shows 127, each instance passes its 32 of the next 1/8 s (255 seen at
    2/8), then its 32 again (383 seen at 3/8 >= 300: nothing more). Window [1, 2): 128 a
    period from its start, 384. The overshoot (83, 84) is within the bound of what the other
    instances pass in one sync period, (4 - 1) x 256/s x 1/8 s = 96, itself within
    instances x rate x sync_interval = 128. Synchronised at once: 300 exactly."""
    policy = {"algorithm": "fixed_window", "limit": 300, "window": 1, "scope": "global"}
    for sync, expected in ((0.125, [383, 384]), (0.0, [300, 300])):
        r = limited({**policy, "sync_interval": sync}, rate=1024, duration=2, replicas=4)
        req = r.requests
        ok = req[req["status"] == "ok"]
        per_window = np.bincount(np.floor(ok["start"].to_numpy()).astype(int), minlength=2)
        assert per_window[:2].tolist() == expected
        assert max(per_window[:2]) - 300 <= (4 - 1) * 256 * sync


def _max_in_window(passes: list[float], window: float) -> int:
    """The most passes in any trailing window ``(t - window, t]``."""
    return max((sum(1 for s in passes if t - window < s <= t) for t in passes), default=0)


def _estimate(passes: list[float], t: float, window: float) -> float:
    """The two-window estimate at ``t`` of ``passes`` (brute force)."""
    k = math.floor(t / window)
    prev = sum(1 for s in passes if math.floor(s / window) == k - 1)
    cur = sum(1 for s in passes if math.floor(s / window) == k)
    return prev * (window - (t - k * window)) / window + cur


def _token_excess(passes: list[float], rate: float, burst: int) -> float:
    """The most passes in any interval ``[a, b]`` beyond ``burst + rate (b - a)``."""
    worst = -math.inf
    for i, a in enumerate(passes):
        for j in range(i, len(passes)):
            worst = max(worst, (j - i + 1) - burst - rate * (passes[j] - a))
    return worst


@settings(max_examples=40, deadline=None)
@given(streams, st.sampled_from([1 / 64, 1 / 16, 1 / 4, 1.0]),
       st.sampled_from(["token_bucket", "fixed_window", "sliding_window_log",
                        "sliding_window_counter"]))
def test_global_overshoot_is_bounded_by_one_sync_period_of_the_others(
        arrivals: list[tuple[float, str]], sync: float, algorithm: str) -> None:
    """Each instance sees everybody's passes up to the last sync and its own since, so beyond
    the limit only passes the *others* made since the last sync can slip through: at most the
    arrivals of one sync period (less one) for the windows (in the estimate's own terms for
    the sliding-window counter); for the token bucket at most
    (instances - 1) x (burst + rate x sync_interval), what each other instance can spend
    from the bucket it last saw."""
    p = RateLimitPolicy.model_validate({**POLICIES[algorithm], "scope": "global",
                                        "sync_interval": sync})
    limiter = GlobalLimiter(p)
    passes = [t for t, who in arrivals if limiter.admit(t, who) is not None]
    per_period = np.bincount([math.floor(t / sync) for t, _ in arrivals])
    slack = int(per_period.max()) - 1
    callers = len({who for _, who in arrivals})
    if algorithm == "token_bucket":
        excess = _token_excess(passes, float(p.rate or 0), p.burst)
        assert excess <= min(slack, (callers - 1) * (p.burst + float(p.rate or 0) * sync))
        return
    window, limit = float(p.window or 0), int(p.limit or 0)
    if algorithm == "sliding_window_counter":
        # the limiter's own measure: the estimate at each pass, that pass included, is below
        # limit + 1 as seen; the others' unseen passes add at most one each (weights <= 1)
        for i, z in enumerate(passes):
            estimate = _estimate(passes[:i + 1], z, window)
            assert estimate < limit + 1 + slack + 1e-9
        return
    if algorithm == "fixed_window":
        most = int(np.bincount([math.floor(t / window) for t in passes]).max()) if passes else 0
    else:
        most = _max_in_window(passes, window)
    assert most <= limit + slack
    assert most <= limit + (callers - 1) * limit  # nobody passes beyond what it saw allowed


def test_global_token_bucket_in_a_run_overshoots_within_its_bound() -> None:
    """Four instances, 64/s each, share 32/s with burst 4, synced every 1/4 s: the admitted
    stream exceeds burst + rate x interval somewhere (the instances cannot see each other)
    but never by more than 3 x (4 + 32 x 1/4) = 36."""
    r = limited({"rate": 32, "burst": 4, "scope": "global", "sync_interval": 0.25},
                rate=256, duration=3, replicas=4)
    ok = np.sort(r.requests.loc[r.requests["status"] == "ok", "start"].to_numpy())
    excess = _token_excess(list(ok), 32, 4)
    assert 0 < excess <= 3 * (4 + 32 * 0.25)
    exact = limited({"rate": 32, "burst": 4, "scope": "global"}, rate=256, duration=3,
                    replicas=4)
    ok = np.sort(exact.requests.loc[exact.requests["status"] == "ok", "start"].to_numpy())
    assert _token_excess(list(ok), 32, 4) <= 1e-9


def test_scope_target_shares_one_limit_among_the_callers_with_the_same_one() -> None:
    """Two workloads call ``s`` with the same sliding log (3 per second, scope target, synced
    at once): together they pass exactly what one such limiter fed their merged arrivals
    passes. A third with another limit keeps its own: it passes what its limiter alone does."""
    same = {"algorithm": "sliding_window_log", "limit": 3, "window": 1, "scope": "target"}
    other = {**same, "limit": 2}
    r = run({"duration": 6, "drain": 5,
             "workloads": {
                 "a": {"arrivals": {"process": "poisson", "rate": 5},
                       "target": {"to": "s", "rate_limit": same}},
                 "b": {"arrivals": {"process": "poisson", "rate": 3},
                       "target": {"to": "s", "rate_limit": same}},
                 "c": {"arrivals": {"process": "poisson", "rate": 4},
                       "target": {"to": "s", "rate_limit": other}}},
             "components": {"s": {"kind": "service", "workers": 100, "service_time": 0}}})
    req = r.requests.sort_values("start")
    for who, policy in (("ab", same), ("c", other)):
        mine = req[req["workload"].astype(str).isin(list(who))]
        meter = RateLimitPolicy.model_validate({**policy, "scope": "instance"}).meter()
        expected = [meter.admit(t) is not None for t in mine["start"]]
        assert (mine["status"].astype(str) == "ok").tolist() == expected
        assert 0 < sum(expected) < len(expected)
