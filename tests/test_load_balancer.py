"""Load-balancer strategies: each does what its name says."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from simulator.components.hashing import hash_ring
from tests.conftest import run


def fleet(strategy: str, rate: float = 50, duration: float = 200, replicas: int = 4,
          speed: Any = 1.0, lb: dict[str, Any] | None = None, keys: int | None = None,
          service_time: Any = None) -> Any:
    workload: dict[str, Any] = {"arrivals": {"process": "poisson", "rate": rate}, "target": "lb"}
    if keys:
        workload["keys"] = {"popularity": "uniform", "n": keys}
    return run({
        "duration": duration,
        "drain": 1000,
        "workloads": {"w": workload},
        "components": {
            "lb": {"kind": "load_balancer", "strategy": strategy, "backends": ["api"],
                   **(lb or {})},
            "api": {"kind": "service", "replicas": replicas, "workers": 1, "speed": speed,
                    "service_time": service_time or {"dist": "exponential", "mean": 0.05}},
        },
    })


def shares(r: Any) -> pd.Series:
    s = r.backend_share()
    return s.set_index("backend")["share"]


def test_round_robin_is_strictly_cyclic() -> None:
    r = fleet("round_robin")
    order = r.spans.sort_values("request_id")["instance"].astype(str).to_numpy()
    first = order[:4]
    assert sorted(first) == [f"api[{i}]" for i in range(4)]
    assert (order == np.resize(first, len(order))).all()


def test_smooth_weighted_round_robin_follows_nginx_sequence() -> None:
    r = fleet("weighted_round_robin", rate=10, replicas=3, lb={"weights": [5, 1, 1]})
    order = r.spans.sort_values("request_id")["instance"].astype(str).tolist()
    a, b, c = "api[0]", "api[1]", "api[2]"
    assert order[:7] == [a, a, b, a, c, a, a]  # nginx's smooth WRR for weights 5, 1, 1
    counts = pd.Series(order).value_counts()
    assert abs(counts[a] / len(order) - 5 / 7) < 0.01


@pytest.mark.parametrize(("strategy", "lb"), [("random", {}),
                                              ("weighted_random", {"weights": [1, 1, 2, 4]})])
def test_random_strategies_match_weights(strategy: str, lb: dict[str, Any]) -> None:
    r = fleet(strategy, rate=200, duration=100, lb=lb)
    w = np.array(lb.get("weights", [1, 1, 1, 1]), float)
    expected = w / w.sum()
    n = len(r.requests)
    got = shares(r).to_numpy()
    sd = np.sqrt(expected * (1 - expected) / n)
    assert np.all(np.abs(got - expected) < 4 * sd)


def test_consistent_hash_is_sticky_per_key() -> None:
    r = fleet("consistent_hash", keys=200)
    placed = r.spans.merge(r.requests[["request_id", "key"]], on="request_id")
    per_key = placed.groupby("key")["instance"].nunique()
    assert (per_key == 1).all()
    assert placed["instance"].nunique() == 4


def test_hash_ring_moves_keys_only_to_a_new_node() -> None:
    keys = [f"key-{k}" for k in range(20000)]
    from simulator.components.hashing import hash64

    def owners(nodes: list[str]) -> np.ndarray:
        tokens, own = hash_ring(nodes, 150)
        pos = np.searchsorted(np.array(tokens, dtype=np.uint64),
                              np.array([hash64(k) for k in keys], dtype=np.uint64), side="left")
        return np.array(own)[pos % len(tokens)]

    before = owners([f"node-{i}" for i in range(10)])
    after = owners([f"node-{i}" for i in range(11)])
    moved = before != after
    assert (after[moved] == 10).all()
    assert 0.06 < moved.mean() < 0.12  # about 1/11


@pytest.mark.parametrize("strategy", ["least_connections", "power_of_two", "peak_ewma",
                                      "least_response_time", "join_shortest_queue"])
def test_load_aware_strategies_favour_fast_backends(strategy: str) -> None:
    r = fleet(strategy, rate=40, speed=[4.0, 1.0, 1.0, 0.25])
    s = shares(r)
    assert s["api[0]"] > 0.3 > s["api[3]"]
    assert s["api[3]"] < 0.15


def test_oblivious_strategies_ignore_speed() -> None:
    r = fleet("round_robin", rate=40, speed=[4.0, 1.0, 1.0, 0.25])
    assert np.allclose(shares(r).to_numpy(), 0.25, atol=0.001)


def test_power_of_d_draws_distinct_candidates() -> None:
    # with choice_count equal to the fleet size, every backend is a candidate: the pick is
    # always one with the fewest outstanding requests
    r = fleet("power_of_d", rate=60, lb={"choice_count": 4},
              service_time={"dist": "exponential", "mean": 0.05})
    spans = r.spans.sort_values("arrival")
    ends = {inst: [] for inst in spans["instance"].astype(str).unique()}
    ok = 0
    for inst, arr, end in zip(spans["instance"].astype(str), spans["arrival"], spans["end"],
                              strict=True):
        outstanding = {i: sum(e > arr for e in ends[i]) for i in ends}
        ok += outstanding[inst] == min(outstanding.values())
        ends[inst].append(end)
    assert ok == len(spans)


def test_balancer_replicas_each_keep_their_own_view() -> None:
    r = run({
        "duration": 50,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 20}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "replicas": 3, "strategy": "round_robin",
                   "backends": ["api"]},
            "api": {"kind": "service", "replicas": 2, "service_time": 0.01},
        },
    })
    routed = r.samples[(r.samples["metric"] == "routed_total")
                       & (r.samples["time"] == r.samples["time"].max())]
    per_lb = routed.groupby("instance", observed=True)["value"].sum()
    assert len(per_lb) == 3 and per_lb.sum() == len(r.requests)


def crashed_fleet(lb: dict[str, Any], faults: list[dict[str, Any]], duration: float = 60,
                  replicas: int = 4) -> Any:
    return run({
        "duration": duration, "drain": 10,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 100}, "target": "lb"}},
        "components": {
            "lb": {"kind": "load_balancer", "strategy": "round_robin", "backends": ["api"],
                   **lb},
            "api": {"kind": "service", "replicas": replicas, "workers": 4,
                    "service_time": 0.005},
        },
        "faults": faults,
    })


def errors_between(r: Any, a: float, b: float) -> int:
    req = r.requests
    return int(((req["start"] >= a) & (req["start"] < b) & (req["status"] != "ok")).sum())


def test_health_checks_route_around_a_dead_instance() -> None:
    crash = [{"at": 10, "duration": 20, "kind": "crash", "target": "api[1]"}]
    blind = crashed_fleet({}, crash)
    checked = crashed_fleet({"health_check": {"interval": 1, "unhealthy_threshold": 2}}, crash)
    assert errors_between(blind, 12.5, 30) > 300  # a quarter of 100/s for 17.5 s
    assert errors_between(checked, 10, 11.01) > 0  # until two probes have failed
    assert errors_between(checked, 11.01, 60) == 0
    events = checked.events[checked.events["event"].isin(["unhealthy", "healthy"])]
    assert events["event"].tolist() == ["unhealthy", "healthy"]
    # probes at 10 s (the crash comes first at that instant) and 11 s fail; the probe at 30 s
    # sees the recovered instance
    assert events["time"].tolist() == [11.0, 30.0]
    share = checked.samples[(checked.samples["metric"] == "routed_total")
                            & (checked.samples["label"] == "api[1]")].set_index("time")["value"]
    assert share[29.0] == share[12.0]  # no traffic while marked unhealthy
    assert share[60.0] > share[32.0]  # and traffic again once healthy


def test_outlier_detection_ejects_after_consecutive_errors() -> None:
    faults = [{"at": 10, "duration": 40, "kind": "error", "target": "api[2]",
               "probability": 1.0}]
    r = crashed_fleet({"outlier_detection": {"consecutive_errors": 5, "base_ejection_time": 10,
                                             "max_ejection_percent": 25}}, faults)
    ejections = r.events[r.events["event"] == "ejected"]
    assert ejections["detail"].tolist()[:3] == ["api[2] for 10s", "api[2] for 20s",
                                                "api[2] for 30s"]
    # exactly 5 errors per ejection: while ejected, it gets no traffic
    per_ejection = errors_between(r, 10, 50) / len(ejections)
    assert per_ejection == pytest.approx(5, abs=0.01)


def test_max_ejection_percent_and_panic_threshold() -> None:
    faults = [{"at": 5, "kind": "error", "target": f"api[{i}]", "probability": 1.0}
              for i in range(3)]
    r = crashed_fleet({"outlier_detection": {"consecutive_errors": 3, "base_ejection_time": 100,
                                             "max_ejection_percent": 25}}, faults, duration=30)
    ejected = r.events[r.events["event"] == "ejected"]
    assert len(ejected) == 1  # 25% of 4 backends: one at a time
    everyone = crashed_fleet({"health_check": {"interval": 1, "unhealthy_threshold": 1}},
                             [{"at": 5, "kind": "crash", "target": f"api[{i}]"}
                              for i in range(3)], duration=30)
    late = everyone.requests[everyone.requests["start"] > 10]
    # 1 of 4 healthy is below the 50% panic threshold: traffic goes to all, 3/4 fails
    assert (late["status"] != "ok").mean() == pytest.approx(0.75, abs=0.05)
