"""Client-side adaptive throttling (Google SRE book, "Handling Overload") does what it says."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from simulator.messages import OK, REJECTED, TIMEOUT
from simulator.throttling import AdaptiveThrottle, AdaptiveThrottlePolicy
from tests.conftest import run


def throttle(u: float, **policy: Any) -> AdaptiveThrottle:
    return AdaptiveThrottle(AdaptiveThrottlePolicy(**policy), lambda: u)


def test_the_probability_is_the_books_formula_over_a_trailing_window() -> None:
    t = throttle(0.999, k=2, window=10)
    for i in range(10):
        assert t.admit(float(i))  # u = 0.999: admitted unless p reaches 0.999
        t.answered(float(i), OK if i < 2 else REJECTED)
    assert t.probability(9.5) == (10 - 2 * 2) / (10 + 1)
    # at 10.5 the requests and accepts of t = 0 have left the window: 9 requests, 1 accept
    assert t.probability(10.5) == (9 - 2 * 1) / (9 + 1)
    assert t.probability(100.0) == 0.0  # an empty window throttles nothing


def test_a_backend_rejection_is_not_an_accept_and_a_timeout_is_by_default() -> None:
    t = throttle(0.0, k=1)
    t.answered(0.0, TIMEOUT)
    t.answered(0.0, REJECTED)
    assert len(t.accepts) == 1
    strict = throttle(0.0, k=1, reject_on=["rejected", "timeout"])
    strict.answered(0.0, TIMEOUT)
    assert len(strict.accepts) == 0


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 5), st.booleans(), st.floats(0, 1)), max_size=60),
       st.floats(1, 5), st.floats(0.1, 3))
def test_the_probability_matches_a_brute_force_count(
        steps: list[tuple[float, bool, float]], k: float, window: float) -> None:
    draws = iter([u for _, _, u in steps])
    t = AdaptiveThrottle(AdaptiveThrottlePolicy(k=k, window=window), lambda: next(draws))
    now, sent, accepted = 0.0, [], []
    for dt, accept, _ in steps:
        now += dt
        reqs = sum(1 for s in sent if s > now - window)
        accs = sum(1 for a in accepted if a > now - window)
        p = t.probability(now)
        assert abs(p - max(0.0, (reqs - k * accs) / (reqs + 1))) < 1e-12
        assert 0 <= p < 1
        sent.append(now)
        if t.admit(now):
            t.answered(now, OK if accept else REJECTED)
            if accept:
                accepted.append(now)


def overloaded(rate: float, k: float, duration: float, seed: int = 1) -> Any:
    return run({
        "duration": duration, "warmup": 10, "drain": 5,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": rate},
                            "target": {"to": "api", "adaptive_throttle": {"k": k,
                                                                          "window": 10}}}},
        "components": {"api": {"kind": "service", "workers": 1, "queue_limit": 0,
                               "service_time": {"dist": "exponential", "mean": 0.01}}}},
        seed=seed)


def test_overload_settles_at_the_formulas_fixed_point() -> None:
    """A one-worker backend without a queue (M/G/1/1, mu = 100/s) offered 400/s.

    Fixed point: the client sends lambda' to the backend, which accepts lambda' (1 - B) with
    Erlang's B = a / (1 + a), a = lambda' / mu (insensitive to the service distribution; the
    thinned stream is Poisson because the throttle probability moves slowly: the 10 s window
    holds ~4000 requests, so the + 1 is negligible). The throttle passes
    1 - p = k accepts / requests, i.e. lambda' = k lambda' (1 - B): B = 1 - 1/k, a = k - 1.
    With k = 2: lambda' = mu = 100/s, accepted 50/s, local rejection ratio p = 1 - 100/400 =
    0.75, and the backend rejects half of what it gets.

    Tolerances, fixed a priori: over 30 s measured, ~1500 accepts, Poisson standard error
    ~2.6%; the feedback loop correlates the counts, so allow 4 x 2.6% x 1.5 ~ 15% on the
    accepted rate; p = 1 - lambda'/lambda has standard error ~0.25 x 1.8% ~ 0.005: allow 0.03
    absolute; the backend's rejection share (B, se ~0.01): allow 0.05.
    """
    r = overloaded(400, 2, 40)
    m = r.measured_requests()
    status = m["status"].astype(str)
    n = len(m)
    throttled = int((status == "throttled").sum())
    ok = int((status == "ok").sum())
    rejected = int((status == "rejected").sum())
    assert abs(throttled / n - 0.75) < 0.03
    assert abs(ok / 30 - 50) / 50 < 0.15
    assert abs(rejected / (ok + rejected) - 0.5) < 0.05
    assert (r.spans["status"].astype(str) != "throttled").all()  # the backend never saw them


@settings(max_examples=5, deadline=None)
@given(st.integers(0, 2**31), st.sampled_from([1.1, 2.0, 4.0]), st.sampled_from([50, 400]))
def test_every_request_ends_in_exactly_one_final_status(seed: int, k: float, rate: int) -> None:
    r = overloaded(rate, k, 12, seed=seed)
    req = r.requests
    assert req["request_id"].is_unique  # one row, so one final status, per request
    assert req["status"].notna().all()
    assert set(req["status"].astype(str)) <= {"ok", "rejected", "throttled"}
    if rate == 50:  # a = 0.5, B = 1/3 < 1 - 1/k for k >= 2: the backend is not the limit
        assert k == 1.1 or (req["status"].astype(str) == "throttled").mean() < 0.1
