"""Property tests over random small topologies: nothing lost, nothing counted twice."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import simulator

STRATEGIES = ["round_robin", "weighted_round_robin", "random", "weighted_random",
              "least_connections", "power_of_two", "peak_ewma", "least_response_time",
              "consistent_hash", "join_shortest_queue"]


@st.composite
def topologies(draw: st.DrawFn) -> dict[str, Any]:
    """A random acyclic system: workloads -> (balancer) -> services calling later services."""
    n = draw(st.integers(1, 4))
    components: dict[str, Any] = {}
    for i in range(n):
        later = [f"s{j}" for j in range(i + 1, n)]
        calls: list[Any] = []
        if later:
            for _ in range(draw(st.integers(0, 2))):
                if draw(st.booleans()):
                    calls.append(draw(st.sampled_from(later)))
                else:
                    calls.append({"parallel": draw(st.lists(st.sampled_from(later), min_size=1,
                                                            max_size=3))})
        replicas = draw(st.integers(1, 3))
        components[f"s{i}"] = {
            "kind": "service",
            "replicas": replicas,
            "workers": draw(st.integers(1, 3)),
            "queue_limit": draw(st.one_of(st.none(), st.integers(0, 4))),
            "queue_discipline": draw(st.sampled_from(["fifo", "lifo"])),
            "hold_worker": draw(st.booleans()) if calls else True,  # (refused without calls)
            "service_time": {"dist": draw(st.sampled_from(["exponential", "gamma"])),
                             "mean": draw(st.floats(0.001, 0.05))},
            "speed": draw(st.lists(st.floats(0.5, 2.0), min_size=replicas, max_size=replicas)),
            "calls": {"*": calls} if calls else {},
        }
        if components[f"s{i}"]["service_time"]["dist"] == "gamma":
            components[f"s{i}"]["service_time"]["cv"] = draw(st.floats(0.2, 3.0))
    entry = "s0"
    if draw(st.booleans()):
        components["lb"] = {"kind": "load_balancer", "strategy": draw(st.sampled_from(STRATEGIES)),
                            "backends": ["s0"], "replicas": draw(st.integers(1, 2))}
        entry = "lb"
    workloads: dict[str, Any] = {}
    for w in range(draw(st.integers(1, 2))):
        if draw(st.booleans()):
            arrivals: dict[str, Any] = {"process": "poisson", "rate": draw(st.floats(5, 300))}
        else:
            arrivals = {"process": "closed", "users": draw(st.integers(1, 20)),
                        "think_time": {"dist": "exponential", "mean": 0.05}}
        workloads[f"w{w}"] = {"arrivals": arrivals, "target": entry,
                              "keys": {"popularity": "zipf", "n": 50, "s": 1.0},
                              "mix": {"read": 0.7, "write": 0.3}}
    return {"duration": draw(st.floats(0.5, 3.0)), "drain": draw(st.sampled_from([0, 1000])),
            "workloads": workloads, "components": components, "metrics": {"interval": 1.0}}


def final(samples: pd.DataFrame, metric: str) -> pd.Series:
    s = samples[samples["metric"] == metric]
    last = s[s["time"] == s["time"].max()]
    return last.groupby(["instance", "label"], observed=True)["value"].sum()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=topologies(), seed=st.integers(0, 2**32))
def test_no_request_lost_or_counted_twice(spec: dict[str, Any], seed: int) -> None:
    scenario = simulator.parse_scenario(spec)
    r = simulator.simulate(scenario, seed=seed)
    req, spans = r.requests, r.spans

    # every generated request has exactly one row and one final status or is in flight
    assert np.array_equal(req["request_id"].to_numpy(), np.arange(len(req)))
    in_flight = req["status"] == "in_flight"
    assert (in_flight == req["end"].isna()).all()
    assert (req.loc[~in_flight, "latency"] >= 0).all()
    if spec["drain"]:
        assert not in_flight.any()

    # hops happen inside their request's lifetime
    joined = spans.merge(req[["request_id", "start", "end"]], on="request_id",
                         suffixes=("", "_req"))
    assert len(joined) == len(spans)
    assert (joined["arrival"] >= joined["start_req"] - 1e-12).all()
    done = joined["end_req"].notna()
    assert (joined.loc[done, "end"] <= joined.loc[done, "end_req"] + 1e-12).all()
    ok = joined["status"] == "ok"
    assert (joined.loc[ok, "start"] >= joined.loc[ok, "arrival"]).all()
    assert (joined.loc[ok, "end"] >= joined.loc[ok, "start"]).all()

    # conservation at every service instance: each span is one served or rejected request
    per_instance = spans.groupby("instance", observed=True).size()
    served = final(r.samples, "served_total").droplevel("label")
    rejected = final(r.samples, "rejected_total").droplevel("label")
    failed = final(r.samples, "failed_total").droplevel("label")
    cancelled = final(r.samples, "cancelled_total").droplevel("label")
    handled = served.add(rejected, fill_value=0).add(failed, fill_value=0).add(
        cancelled, fill_value=0)
    for instance, count in handled.items():
        recorded = int(per_instance.get(instance, 0))
        if spec["drain"]:
            assert recorded == count, instance
        else:
            assert recorded <= count, instance

    # a balancer routes each request it receives exactly once; drained, nothing is outstanding
    routed = final(r.samples, "routed_total")
    if len(routed) and spec["drain"]:
        assert final(r.samples, "outstanding").sum() == 0
        lb_requests = len(req)  # every request enters through the balancer when there is one
        assert routed.sum() == lb_requests
