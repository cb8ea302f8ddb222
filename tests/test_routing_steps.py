"""Probabilistic steps (simulator/calls.py, simulator/components/steps.py): a call made with a
probability, a weighted choice of branches, bounded re-entry (feedback).

Each visit of a step draws once, independently, so over N requests the number taking a route
of probability p is Binomial(N, p): the counts are checked within four standard deviations.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

import simulator
from simulator.errors import ScenarioError
from tests.conftest import run


def svc(calls: list[Any] | None = None, replicas: int = 1, **extra: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "service", "workers": 100, "service_time": 0.001,
                            "replicas": replicas, **extra}
    if calls is not None:
        spec["calls"] = {"*": calls}
    return spec


def routed(calls: list[Any], duration: float = 50, replicas: int = 2) -> dict[str, Any]:
    return {
        "duration": duration, "drain": 1,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 400}, "target": "api"}},
        "components": {"api": svc(calls, replicas=replicas),
                       **{n: svc() for n in ("x", "a", "b", "c")}},
    }


def within_binomial(count: int, n: int, p: float) -> bool:
    return abs(count - n * p) <= 4 * math.sqrt(n * p * (1 - p))


def test_call_fractions_match_the_step_probabilities_and_branch_weights() -> None:
    res = run(routed([
        {"call": "x", "probability": 0.3},
        {"choice": [{"weight": 1, "steps": ["a"]}, {"weight": 3, "steps": ["b", "c"]},
                    {"weight": 1}]},
    ]))
    n = len(res.requests)
    assert n > 18_000
    assert (res.requests["status"] == "ok").all()
    spans = res.spans
    called = {c: set(spans.loc[spans["component"] == c, "request_id"]) for c in "xabc"}
    assert within_binomial(len(called["x"]), n, 0.3)
    assert within_binomial(len(called["a"]), n, 0.2)
    assert within_binomial(len(called["b"]), n, 0.6)
    assert called["b"] == called["c"]  # a branch's steps run together
    assert not called["a"] & called["b"]  # exactly one branch per visit
    # the probabilistic call and the choice draw independently: P(x and a) = 0.3 * 0.2
    assert within_binomial(len(called["x"] & called["a"]), n, 0.06)


def test_the_draws_are_shared_by_the_instances_of_a_group() -> None:
    """The n-th request routed by the step gets the n-th draw whichever instance serves it,
    so the routing does not depend on how many replicas there are."""
    calls = [{"call": "x", "probability": 0.5}]
    one = run(routed(calls, duration=5, replicas=1)).spans
    three = run(routed(calls, duration=5, replicas=3)).spans
    assert (set(one.loc[one["component"] == "x", "request_id"])
            == set(three.loc[three["component"] == "x", "request_id"]))


def test_a_step_that_fails_ends_the_branch_and_the_request() -> None:
    spec = routed([{"choice": [{"weight": 1, "steps": ["a", "b"]}]}, "c"], duration=5)
    spec["faults"] = [{"at": 0, "kind": "error", "target": "a", "probability": 1.0}]
    res = run(spec)
    assert (res.requests["status"] == "error").all()
    assert set(res.spans["component"].astype(str)) == {"api", "a"}


def test_reentries_follow_the_truncated_geometric_law() -> None:
    """With probability q per visit and at most m re-entries, a request makes k visits with
    probability q^(k-1) (1 - q) for k <= m and q^m for k = m + 1."""
    q, m = 0.6, 3
    spec = {
        "duration": 50, "drain": 1,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 400}, "target": "api"}},
        "components": {"api": svc([{"reenter": "api", "probability": q, "max_reentries": m}],
                                  replicas=2, hold_worker=False)},
    }
    res = run(spec)
    n = len(res.requests)
    visits = np.bincount(res.spans["request_id"].to_numpy(), minlength=n)
    assert visits.max() == m + 1
    for k in range(1, m + 2):
        p = q ** (k - 1) * (1 - q) if k <= m else q ** m
        assert within_binomial(int((visits == k).sum()), n, p), k


def test_reentry_through_another_component_closes_a_cycle() -> None:
    spec = {
        "duration": 20, "drain": 1,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 100}, "target": "a"}},
        "components": {"a": svc(["b"], hold_worker=False),
                       "b": svc([{"reenter": {"to": "a"}, "probability": 0.5,
                                  "max_reentries": 5}], hold_worker=False)},
    }
    res = run(spec)
    spans = res.spans
    per = spans.groupby(["request_id", "component"], observed=True).size().unstack()
    assert (per["a"] == per["b"]).all()  # every visit of a goes on to b
    assert per["a"].max() <= 6


@pytest.mark.parametrize(("calls", "message"), [
    (["api"], "component 'api' refers to itself"),
    ([{"call": "api", "probability": 0.5}], "component 'api' refers to itself"),
    ([{"reenter": "api", "probability": 1.0}], "less than 1"),
    ([{"call": "x", "probability": 1.5}], "less than or equal to 1"),
    ([{"choice": []}], "at least 1"),
    ([{"choice": [{"weight": 0}]}], "greater than 0"),
    ([{"choice": [{"weight": 1, "steps": ["nope"]}]}], "unknown component 'nope'"),
])
def test_bad_routing_is_a_located_error(calls: list[Any], message: str) -> None:
    with pytest.raises(ScenarioError, match=message):
        simulator.parse_scenario(routed(calls))


def test_a_cycle_without_a_reenter_step_is_refused() -> None:
    spec = routed(["x"])
    spec["components"]["x"] = svc([{"call": "api", "probability": 0.1}])
    with pytest.raises(ScenarioError, match=r"reference cycle: .*bounded loop is a"):
        simulator.parse_scenario(spec)
    spec["components"]["x"] = svc([{"reenter": "api", "probability": 0.1}])
    simulator.parse_scenario(spec)
