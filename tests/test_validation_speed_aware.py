"""Speed-aware balancing checked against an exact computation on a heterogeneous fleet.

Four single-worker exponential servers of rates mu = [1, 1, 2, 4] (``speed``) behind one
balancer, Poisson arrivals at 50% of the total capacity (lambda = 4). Shortest expected
delay and weighted least connections (weights = the speeds) and power of two with and
without replacement are each compared with the stationary solution of their routing Markov
chain (``tests/routing_ctmc.py``, truncated where its boundary mass is below 1e-5): the mean
response time and each server's share of the requests. The tolerances are fixed here, before
the runs: at most 3% on the mean response time and 0.01 absolute on a share, narrowed to four
standard errors (pooled over seeds and batches, ``validation_support.compare``) when those are
smaller, never below 1%.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

try:
    import routing_ctmc as ctmc
    import validation_support as vs
except ModuleNotFoundError:  # pragma: no cover - e.g. pytest --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import routing_ctmc as ctmc
    import validation_support as vs

import simulator
from simulator.results import Results

MU = [1.0, 1.0, 2.0, 4.0]
LAM = 0.5 * sum(MU)
ARRIVALS = 60_000
SEEDS = (1, 2, 3)
MEAN_CAP = 0.03
SHARE_CAP = 0.01

# strategy -> (balancer settings, routing rule, customers per queue in the truncated chain)
STRATEGIES = {
    "shortest_expected_delay": ({"weights": MU}, ctmc.shortest_expected_delay, [5, 5, 10, 20]),
    "weighted_least_connections": ({"weights": MU}, ctmc.weighted_least_connections,
                                   [5, 5, 10, 20]),
    "power_of_two": ({}, ctmc.power_of_two(replacement=False), [11, 11, 10, 10]),
    "power_of_two_with_replacement": ({"replacement": True}, ctmc.power_of_two(replacement=True),
                                      [13, 13, 11, 11]),
}


def exact(strategy: str) -> ctmc.Solution:
    _, rule, caps = STRATEGIES[strategy]
    solution = ctmc.solve(LAM, MU, rule, caps)
    assert solution.boundary_mass < 1e-5, "truncation too tight"
    return solution


def scenario(strategy: str, extra: dict[str, object]) -> simulator.Scenario:
    name = "power_of_two" if strategy.startswith("power_of_two") else strategy
    return vs.open_scenario(f"speed-{strategy}", LAM, ARRIVALS, "lb", {
        "lb": {"kind": "load_balancer", "strategy": name, "backends": ["api"], **extra},
        "api": {"kind": "service", "replicas": len(MU), "workers": 1, "speed": MU,
                "service_time": {"dist": "exponential", "mean": 1.0}},
    }, scale=1.0)  # its own run length, checked in full in make test


def measure(results: Results) -> dict[str, vs.Estimate]:
    req, batch = vs.measured_requests(results)
    assert (req["status"] == "ok").all()
    spans = results.spans[results.spans["component"] == "api"]
    n = len(results.requests)
    instance = np.full(n, "", dtype=object)
    instance[spans["request_id"].to_numpy()] = spans["instance"].astype(str).to_numpy()
    chosen = instance[req["request_id"].to_numpy()]
    out = {"mean_response_time": vs.estimate(req["latency"].to_numpy(), batch)}
    for i in range(len(MU)):
        out[f"share_{i}"] = vs.estimate(chosen == f"api[{i}]", batch)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_speed_aware_strategy_matches_its_markov_chain(strategy: str) -> None:
    extra = STRATEGIES[strategy][0]
    solution = exact(strategy)
    expected = {"mean_response_time": solution.mean_response_time}
    caps = {"mean_response_time": MEAN_CAP}
    for i, share in enumerate(solution.share):
        expected[f"share_{i}"] = float(share)
        caps[f"share_{i}"] = SHARE_CAP / float(share)  # absolute 0.01 as a relative cap
    estimates = vs.run_case(scenario(strategy, extra), measure, SEEDS)
    vs.assert_matches_theory(strategy, estimates, expected, caps, scale=1.0)


def test_the_strategies_differ_where_they_should() -> None:
    """Exact figures that tell the rules apart by more than the tolerances (so the checks above
    have power): at this load SED beats WLC (it sends to an idle fast server, WLC to any idle
    one), and sampling with replacement is worse than without."""
    sed, wlc = exact("shortest_expected_delay"), exact("weighted_least_connections")
    p2, p2r = exact("power_of_two"), exact("power_of_two_with_replacement")
    assert sed.mean_response_time < wlc.mean_response_time * (1 - MEAN_CAP)
    assert p2.mean_response_time < p2r.mean_response_time * (1 - MEAN_CAP)
    assert sed.share[3] > wlc.share[3] + SHARE_CAP


def test_weights_refused_where_ignored() -> None:
    with pytest.raises(simulator.ScenarioError, match="weights is ignored by strategy"):
        scenario("least_connections", {"weights": MU})
    with pytest.raises(simulator.ScenarioError, match="replacement is ignored"):
        scenario("round_robin", {"replacement": True})
