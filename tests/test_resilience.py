"""Resilience policies on call edges do what their names say."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import simulator
from tests.conftest import run
from tests.theory import retry_multiplier


def edge(call: dict[str, Any], components: dict[str, Any], arrivals: dict[str, Any] | None = None,
         duration: float = 10, **extra: Any) -> simulator.Results:
    return run({
        "duration": duration, "drain": 100,
        "workloads": {"w": {"arrivals": arrivals or {"process": "constant", "rate": 1},
                            "target": call}},
        "components": components, **extra,
    })


def statuses(r: simulator.Results) -> list[str]:
    return r.requests["status"].astype(str).tolist()


def test_timeout_gives_up_but_the_callee_finishes() -> None:
    r = edge({"to": "slow", "timeout": 0.3}, {"slow": {"kind": "service", "service_time": 1.0,
                                                       "workers": 10}})
    assert set(statuses(r)) == {"timeout"}
    assert np.allclose(r.requests["latency"], 0.3)
    assert (r.spans["status"] == "ok").all()  # the work still happened: timeouts add no relief
    assert np.allclose(r.spans["end"] - r.spans["start"], 1.0)


@pytest.mark.slow
@pytest.mark.parametrize("p", [0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("r", [1, 3, 5])
def test_retry_load_multiplier_matches_reference(p: float, r: int) -> None:
    """RETRY-multiplier: E[attempts] = (1 - p^(r+1)) / (1 - p), within four standard errors
    of the mean of 200k requests, computed before the run from the exact distribution of the
    attempts (truncated geometric: P(A = k) = p^(k-1) (1 - p) for k <= r, P(A = r + 1) = p^r);
    at most 0.5%, the reference's tolerance on 1M requests."""
    n = 200_000 if p < 1 else 10_000  # with p = 1 every request makes exactly r + 1 attempts
    k = np.arange(1, r + 2)
    pk = np.where(k <= r, p ** (k - 1) * (1 - p), p ** r)
    variance = float((pk * k**2).sum() - (pk * k).sum() ** 2)
    res = run({
        "duration": n / 500, "metrics": {"spans": False, "interval": 1000},
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 500},
                            "target": {"to": "s", "retry": {"attempts": r + 1, "base": 0,
                                                            "jitter": "none",
                                                            "retry_on": ["error"]}}}},
        "components": {"s": {"kind": "service", "workers": 1000, "service_time": 0}},
        "faults": [{"at": 0, "kind": "error", "target": "s", "probability": p}],
    }, seed=r * 10 + int(p * 10))
    attempts = res.requests["attempts"].to_numpy()
    expected = retry_multiplier(p, r)
    assert float((pk * k).sum()) == pytest.approx(expected)
    tolerance = min(0.005, 4 * math.sqrt(variance / n) / expected) if p < 1 else 1e-12
    assert abs(len(attempts) - n) < 5 * math.sqrt(n)
    assert abs(attempts.mean() - expected) / expected <= tolerance


def test_retries_count_attempts_and_stop_at_success() -> None:
    r = edge({"to": "s", "retry": {"attempts": 4, "base": 0.01, "jitter": "none"}},
             {"s": {"kind": "service", "service_time": 0.0}},
             arrivals={"process": "poisson", "rate": 50}, duration=200,
             faults=[{"at": 0, "kind": "error", "target": "s", "probability": 0.5}])
    req = r.requests
    # attempts are geometric truncated at 4; each failure costs its backoff 10, 20, 40 ms
    ok = req[req["status"] == "ok"]
    backoff = {1: 0.0, 2: 0.01, 3: 0.03, 4: 0.07}
    assert np.allclose(ok["latency"], ok["attempts"].map(backoff))
    assert (req.loc[req["status"] == "error", "attempts"] == 4).all()
    spans_per_request = r.spans.groupby("request_id").size()
    assert (spans_per_request.reindex(req["request_id"]).to_numpy()
            == req["attempts"].to_numpy()).all()


@pytest.mark.parametrize(("jitter", "low", "high"), [("none", 0.08, 0.08), ("full", 0.0, 0.08),
                                                     ("equal", 0.04, 0.08)])
def test_backoff_jitter_bounds(jitter: str, low: float, high: float) -> None:
    r = edge({"to": "s", "retry": {"attempts": 2, "base": 0.08, "jitter": jitter}},
             {"s": {"kind": "service", "service_time": 0.0}},
             arrivals={"process": "poisson", "rate": 20}, duration=100,
             faults=[{"at": 0, "kind": "error", "target": "s", "probability": 1.0}])
    lat = r.requests["latency"].to_numpy()
    assert lat.min() >= low - 1e-12 and lat.max() <= high + 1e-12
    if jitter == "full":
        assert lat.std() > 0.015  # uniform on [0, 80ms] has sd 23 ms


def test_retry_budget_caps_retries() -> None:
    r = edge({"to": "s", "retry": {"attempts": 5, "base": 0, "jitter": "none",
                                   "budget": {"ratio": 0.2, "min_retries_per_second": 0,
                                              "ttl": 1}}},
             {"s": {"kind": "service", "service_time": 0.0}},
             arrivals={"process": "poisson", "rate": 200}, duration=100,
             faults=[{"at": 0, "kind": "error", "target": "s", "probability": 1.0}])
    extra = r.requests["attempts"].sum() / len(r.requests) - 1
    assert 0.15 < extra <= 0.2 + 1e-9


def test_breaker_opens_short_circuits_and_recovers() -> None:
    r = edge({"to": "s", "breaker": {"consecutive_failures": 5, "wait_duration_in_open_state": 2,
                                     "permitted_number_of_calls_in_half_open_state": 1}},
             {"s": {"kind": "service", "service_time": 0.001}},
             arrivals={"process": "constant", "rate": 10}, duration=30,
             faults=[{"at": 10, "duration": 5, "kind": "error", "target": "s",
                      "probability": 1.0}])
    req = r.requests
    during = req[(req["start"] >= 10) & (req["start"] < 15)]
    assert (during["status"] == "error").sum() >= 5
    assert (during["status"] == "short_circuited").sum() > 30
    after = req[req["start"] >= 17.5]
    assert (after["status"] == "ok").all()
    transitions = r.events[r.events["event"] == "breaker"]["detail"].tolist()
    assert transitions[0] == "s: closed->open"
    assert transitions[-1] == "s: half_open->closed"
    assert "s: half_open->open" in transitions  # probes during the fault failed


def test_rate_limit_is_a_token_bucket() -> None:
    r = edge({"to": "s", "rate_limit": {"rate": "10/s", "burst": 5}},
             {"s": {"kind": "service", "service_time": 0}},
             arrivals={"process": "constant", "rate": 100}, duration=10.005)
    ok = (r.requests["status"] == "ok").sum()
    assert abs(ok - (5 + 10 * 10)) <= 2
    assert set(statuses(r)) == {"ok", "rejected"}


def test_bulkhead_limits_concurrency() -> None:
    r = edge({"to": "s", "bulkhead": {"max_concurrent_calls": 3}},
             {"s": {"kind": "service", "workers": 100, "service_time": 1.0}},
             arrivals={"process": "constant", "rate": 10}, duration=10)
    spans = r.spans
    t = np.sort(np.concatenate([spans["arrival"], spans["end"]]))
    concurrent = [((spans["arrival"] <= x) & (spans["end"] > x)).sum() for x in t]
    assert max(concurrent) == 3
    assert (r.requests["status"] == "rejected").sum() > 0


def test_bulkhead_wait_admits_when_a_slot_frees() -> None:
    r = edge({"to": "s", "bulkhead": {"max_concurrent_calls": 1, "max_wait": 0.55}},
             {"s": {"kind": "service", "workers": 100, "service_time": 0.45}},
             arrivals={"process": "constant", "rate": 4}, duration=1.1)
    # arrivals at 0.25, 0.5, 0.75, 1.0; one slot, 0.45 s each: the 2nd and 3rd wait 0.2 s and
    # 0.4 s for the slot, the 4th would wait 0.6 s > 0.55 s and is turned away after 0.55 s
    assert statuses(r) == ["ok", "ok", "ok", "rejected"]
    assert np.allclose(r.requests["latency"], [0.45, 0.65, 0.85, 0.55])


def test_fallback_answers_after_failures() -> None:
    r = edge({"to": "s", "retry": {"attempts": 2, "base": 0}, "fallback": {"latency": 0.005}},
             {"s": {"kind": "service", "service_time": 0.0}},
             faults=[{"at": 0, "kind": "error", "target": "s", "probability": 1.0}])
    assert set(statuses(r)) == {"fallback"}
    assert np.allclose(r.requests["latency"], 0.005)
    summary = r.summary().set_index("name")
    assert summary.loc["w", "goodput"] == 0


def test_hedge_sends_a_second_copy_after_the_delay() -> None:
    r = edge({"to": "s", "hedge": {"delay": 0.1}},
             {"s": {"kind": "service", "replicas": 2, "workers": 10,
                    "service_time": {"dist": "empirical", "values": [0.05, 1.0]}}},
             arrivals={"process": "poisson", "rate": 5}, duration=200)
    lat = r.requests["latency"].to_numpy()
    # no reply after 100 ms means the first copy drew 1 s; the hedge then answers at 150 ms
    # or, if it drew 1 s too, the first copy answers at 1 s
    assert set(np.round(lat, 6)) <= {0.05, 0.15, 1.0}
    copies = r.spans.groupby("request_id").size()
    assert copies.max() == 2
    assert abs((copies == 2).mean() - 0.5) < 0.08


@pytest.mark.parametrize("delay", [0.02, 0.01])
def test_hedge_sends_no_copy_once_the_timeout_gave_up(delay: float) -> None:
    # every reply takes 50 ms; the 10 ms timeout bounds the hedged attempt: a hedge due at or
    # after it would reach the callee when the caller no longer waits (at 10 ms exactly the
    # timeout, scheduled first, gives up before the hedge timer fires)
    r = edge({"to": "s", "timeout": 0.01, "hedge": {"delay": delay}},
             {"s": {"kind": "service", "workers": 100, "service_time": 0.05}},
             arrivals={"process": "poisson", "rate": 20}, duration=20)
    assert (r.requests["status"] == "timeout").all()
    assert len(r.spans) == len(r.requests) > 300  # one copy per request, no hedge
    r = edge({"to": "s", "timeout": 0.01, "hedge": {"delay": 0.004, "max_hedges": 3}},
             {"s": {"kind": "service", "workers": 100, "service_time": 0.05}},
             arrivals={"process": "poisson", "rate": 20}, duration=20)
    copies = r.spans.groupby("request_id").size()
    assert (copies == 3).all()  # sent at 0, 4 and 8 ms; the one due at 12 ms is not


@pytest.mark.parametrize("cancel", [True, False])
def test_hedge_cancel_drops_queued_losers(cancel: bool) -> None:
    # two single-worker replicas, busy: hedged copies often wait in a queue
    r = edge({"to": "s", "hedge": {"delay": 0.02, "cancel": cancel}},
             {"s": {"kind": "service", "replicas": 2, "workers": 1,
                    "service_time": {"dist": "exponential", "mean": 0.02}}},
             arrivals={"process": "poisson", "rate": 40}, duration=200)
    spans = r.spans
    dropped = spans[spans["status"] == "cancelled"]
    if cancel:
        assert len(dropped) > 100
        assert (dropped["end"] == dropped["start"]).all()  # no work was done on them
    else:
        assert dropped.empty
    assert (r.requests["status"] == "ok").all()


def test_fallback_enqueues_work_for_later() -> None:
    """The seed's payment example: when payments fail, queue the charge and answer at once."""
    r = edge({"to": "payments", "timeout": 0.5,
              "fallback": {"kind": "enqueue", "queue": "retry-later"}},
             {"payments": {"kind": "service", "service_time": 0.01},
              "retry-later": {"kind": "queue", "capacity": 3}},
             arrivals={"process": "constant", "rate": 10}, duration=2,
             faults=[{"at": 0.55, "duration": 1, "kind": "error", "target": "payments",
                      "probability": 1.0}])
    req = r.requests.set_index("request_id")
    failed = req[(req["start"] > 0.55) & (req["start"] < 1.55)]
    # 10 failed payments in the fault window: the first 3 are queued (fallback), then the queue
    # is full and the original error stands
    assert failed["status"].astype(str).tolist() == ["fallback"] * 3 + ["error"] * 7
    assert (req.loc[req["start"] < 0.55, "status"] == "ok").all()
    published = r.spans[r.spans["component"] == "retry-later"]
    assert (published["status"] == "ok").sum() == 3


def test_fallback_queue_must_exist() -> None:
    with pytest.raises(simulator.ScenarioError, match="did you mean 'retry-later'"):
        simulator.parse_scenario({
            "duration": 1,
            "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1},
                                "target": {"to": "s", "fallback": {"kind": "enqueue",
                                                                   "queue": "retry-latr"}}}},
            "components": {"s": {"kind": "service"},
                           "retry-later": {"kind": "queue"}},
        })


def _stale_scenario(keep: float | None, fault_at: float = 3.5) -> dict[str, Any]:
    cache: dict[str, Any] = {"kind": "cache", "backing": "store", "capacity": 10, "ttl": 2.0}
    if keep is not None:
        cache["stale_if_error"] = keep
    return {
        "duration": 30, "drain": 10,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1},
                            "keys": {"popularity": "uniform", "n": 1},
                            "target": "c"}},
        "components": {"c": cache, "store": {"kind": "service", "service_time": 0.0}},
        "faults": [{"at": fault_at, "duration": 16, "kind": "error", "target": "store",
                    "probability": 1.0}],
    }


def _expected_stale_if_error(starts: list[float], ttl: float, keep: float,
                             down: tuple[float, float]) -> list[str]:
    """The cache by hand: one key, instant loads that fail while the store is down."""
    expires = None  # expiry of the entry, None when there is none
    out = []
    for t in starts:
        if expires is not None and t >= expires + keep:
            expires = None  # gone for good
        if expires is not None and t < expires:
            out.append("ok")  # fresh hit
            continue
        if not down[0] <= t < down[1]:
            expires = t + ttl  # loaded
            out.append("ok")
        elif expires is not None:
            out.append("fallback")  # the load failed: the kept entry is served
        else:
            out.append("error")
    return out


@pytest.mark.parametrize("keep", [None, 5.0])
def test_stale_if_error_serves_the_expired_entry_while_the_store_fails(
        keep: float | None) -> None:
    r = run(_stale_scenario(keep))
    req = r.requests.sort_values("start")
    starts = req["start"].tolist()
    expected = _expected_stale_if_error(starts, 2.0, keep or 0.0, (3.5, 19.5))
    assert req["status"].astype(str).tolist() == expected
    assert ("fallback" in expected) == (keep is not None)
    served = r.samples[(r.samples["component"] == "c")
                       & (r.samples["metric"] == "stale_served_total")]["value"].max()
    assert served == expected.count("fallback")


def test_stale_fallback_serves_what_a_cache_holds() -> None:
    """A failing call falls back to the last value a cache holds for the key; the answer's
    version is measured against the store, so an old value is counted stale."""
    r = run({
        "duration": 10, "drain": 5,
        "workloads": {
            "readers": {"arrivals": {"process": "constant", "rate": 2},
                        "keys": {"popularity": "uniform", "n": 1}, "target": "c"},
            "writers": {"arrivals": {"process": "constant", "rate": 1},
                        "keys": {"popularity": "uniform", "n": 1}, "mix": {"write": 1.0},
                        "target": "db"},
            "api_users": {"arrivals": {"process": "constant", "rate": 4},
                          "keys": {"popularity": "uniform", "n": 1},
                          "target": {"to": "api", "fallback": {"kind": "stale", "cache": "c"}}},
        },
        "components": {
            "api": {"kind": "service", "service_time": 0.0},
            "c": {"kind": "cache", "backing": "db", "capacity": 10, "ttl": 100.0},
            "db": {"kind": "database", "service_time": 0.0},
        },
        "faults": [{"at": 0, "kind": "error", "target": "api", "probability": 1.0}],
    })
    req = r.requests
    api = req[req["workload"] == "api_users"]
    reader_starts = req.loc[req["workload"] == "readers", "start"]
    first_fill = reader_starts.min()
    # before the cache holds the key the error stands; afterwards every call falls back
    assert (api.loc[api["start"] < first_fill, "status"] == "error").all()
    after = api[api["start"] > first_fill]
    assert len(after) > 10 and (after["status"] == "fallback").all()
    # the cache keeps the first value (TTL 100 s) while writers commit new versions: the
    # fallbacks after the first write are stale
    first_write = req.loc[req["workload"] == "writers", "start"].min()
    later = after[after["start"] > first_write + 0.01]
    assert len(later) > 10 and later["stale"].all()


def test_stale_fallback_needs_a_cache() -> None:
    with pytest.raises(simulator.ScenarioError, match="'s2' is not a cache"):
        simulator.parse_scenario({
            "duration": 1,
            "workloads": {"w": {"arrivals": {"process": "constant", "rate": 1},
                                "target": {"to": "s", "fallback": {"kind": "stale",
                                                                   "cache": "s2"}}}},
            "components": {"s": {"kind": "service"}, "s2": {"kind": "service"}},
        })
