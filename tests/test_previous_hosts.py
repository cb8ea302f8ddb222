"""Retries and hedges through a balancer avoid the backends their call already used
(``avoid_previous_hosts``, Envoy's ``previous_hosts`` retry predicate), unless told not to."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

import simulator
from tests.conftest import run

SERVERS = 10


def _fleet(call: dict[str, Any], strategy: str, rate: float = 200, duration: float = 60,
           workers: int = 1, **extra: Any) -> simulator.Results:
    """A workload calling ``lb`` (``strategy``) over ``SERVERS`` single-worker services."""
    lb: dict[str, Any] = {"kind": "load_balancer", "backends": ["s"], "strategy": strategy}
    if strategy == "power_of_d":
        lb["choice_count"] = 3
    return run({
        "duration": duration, "drain": 30,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": rate},
                            "keys": {"popularity": "uniform", "n": 1000},
                            "target": {"to": "lb", **call}}},
        "components": {"lb": lb, "s": {"kind": "service", "replicas": SERVERS,
                                       "workers": workers,
                                       "service_time": {"dist": "exponential",
                                                        "mean": "10ms"}}},
        **extra,
    })


def _same_instance_share(spans: pd.DataFrame) -> tuple[int, float]:
    """(requests with two or more spans, share of them with two spans on one instance)."""
    spans = spans[spans["component"] == "s"]
    per = spans.groupby("request_id")["instance"].agg(["size", "nunique"])
    multi = per[per["size"] > 1]
    return len(multi), float((multi["nunique"] < multi["size"]).mean())


STRATEGIES = ["random", "round_robin", "weighted_round_robin", "weighted_random",
              "least_connections", "power_of_two", "power_of_d", "peak_ewma",
              "least_response_time", "consistent_hash", "join_shortest_queue"]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_hedged_copies_never_share_the_original_instance(strategy: str) -> None:
    r = _fleet({"hedge": {"delay": "10ms"}}, strategy, duration=20)
    hedged, same = _same_instance_share(r.spans)
    assert hedged > 500  # about a third of 4,000 requests wait longer than 10 ms
    assert same == 0.0


def test_without_the_option_one_hedge_in_n_lands_on_the_original() -> None:
    """``random`` draws the copy's backend afresh: P(same instance) = 1/N exactly."""
    r = _fleet({"hedge": {"delay": "10ms", "avoid_previous_hosts": False}}, "random")
    hedged, same = _same_instance_share(r.spans)
    se = math.sqrt(0.1 * 0.9 / hedged)
    assert hedged > 3000
    assert abs(same - 1 / SERVERS) < 4 * se


@pytest.mark.parametrize("strategy", ["random", "round_robin", "power_of_two",
                                      "consistent_hash", "least_connections"])
def test_retries_after_a_failure_go_to_another_instance(strategy: str) -> None:
    # every attempt fails with probability 1/2, independently: about a quarter of the requests
    # make three attempts
    retry = {"attempts": 3, "base": 0, "jitter": "none", "retry_on": ["error"]}
    fault = [{"at": 0, "kind": "error", "target": "s", "probability": 0.5}]
    r = _fleet({"retry": retry}, strategy, duration=20, workers=100, faults=fault)
    retried, same = _same_instance_share(r.spans)
    assert retried > 1500
    assert same == 0.0
    if strategy == "random":  # and the option is what makes the difference
        r = _fleet({"retry": {**retry, "avoid_previous_hosts": False}}, strategy,
                   duration=20, workers=100, faults=fault)
        retried, same = _same_instance_share(r.spans)
        # P(some two of the attempts share an instance) for a request retried once: 1/10;
        # twice: 1 - 0.9 x 0.8 = 0.28; one third of the retried requests are retried twice
        expected = (2 / 3) * 0.1 + (1 / 3) * 0.28
        assert abs(same - expected) < 4 * math.sqrt(expected * (1 - expected) / retried)


def test_consistent_hash_retries_walk_on_along_the_ring() -> None:
    """A key's retry goes to the next owner clockwise, so every retry of a key lands on the
    same second instance (Envoy ring hash with the previous-hosts predicate)."""
    retry = {"attempts": 2, "backoff": "constant", "base": "1ms", "jitter": "none",
             "retry_on": ["error"]}
    r = _fleet({"retry": retry}, "consistent_hash", duration=20, workers=100,
               faults=[{"at": 0, "kind": "error", "target": "s", "probability": 0.5}])
    spans = r.spans[r.spans["component"] == "s"].sort_values(["request_id", "arrival"])
    key = r.requests.set_index("request_id")["key"]
    spans = spans.assign(key=spans["request_id"].map(key),
                         attempt=spans.groupby("request_id").cumcount())
    per_key = spans.groupby(["key", "attempt"])["instance"].nunique()
    assert (per_key == 1).all()  # first owner and second owner fixed per key
    firsts = spans[spans["attempt"] == 0].groupby("key")["instance"].first()
    seconds = spans[spans["attempt"] == 1].groupby("key")["instance"].first()
    both = seconds.index
    assert len(both) > 300
    assert (firsts[both] != seconds).all()


def test_when_every_host_was_tried_any_host_is_used() -> None:
    """Envoy falls back to a host already tried rather than failing: two backends, four
    attempts that all fail, every request still makes all four."""
    r = run({
        "duration": 5, "drain": 5,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 20},
                            "target": {"to": "lb", "retry": {"attempts": 4,
                                                             "backoff": "constant",
                                                             "base": "1ms", "jitter": "none",
                                                             "retry_on": ["error"]}}}},
        "components": {"lb": {"kind": "load_balancer", "backends": ["s"],
                              "strategy": "random"},
                       "s": {"kind": "service", "replicas": 2, "service_time": 0.001}},
        "faults": [{"at": 0, "kind": "error", "target": "s", "probability": 1.0}],
    })
    assert (r.requests["attempts"] == 4).all()
    spans = r.spans.sort_values(["request_id", "arrival"])
    first_two = spans.groupby("request_id").head(2).groupby("request_id")["instance"]
    assert (first_two.nunique() == 2).all()


def test_retry_and_hedge_share_the_used_hosts() -> None:
    """A retry's second attempt avoids the backends of both copies of the first: three
    backends, an attempt (10 ms of work) hedged after 1 ms and timed out after 5 ms, so the
    retry has one host left."""
    r = run({
        "duration": 5, "drain": 5,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 5},
                            "target": {"to": "lb", "timeout": "5ms",
                                       "retry": {"attempts": 2, "base": 0, "jitter": "none",
                                                 "retry_on": ["timeout"]},
                                       "hedge": {"delay": "1ms"}}}},
        "components": {"lb": {"kind": "load_balancer", "backends": ["s"],
                              "strategy": "random"},
                       "s": {"kind": "service", "replicas": 3, "workers": 4,
                             "service_time": 0.01}},
    })
    spans = r.spans.sort_values(["request_id", "arrival"])
    per = spans.groupby("request_id")["instance"].agg(["size", "nunique"])
    # attempt 1: original + hedge (2 hosts); attempt 2: original on the third host, then its
    # hedge finds every host used and may go anywhere
    assert len(per) >= 20
    assert (per["size"] == 4).all()
    first_three = spans.groupby("request_id").head(3).groupby("request_id")["instance"]
    assert (first_three.nunique() == 3).all()


def test_the_option_is_documented_where_policies_are_listed() -> None:
    for policy in (simulator.policies.RetryPolicy, simulator.policies.HedgePolicy):
        assert policy.model_fields["avoid_previous_hosts"].default is True
        assert "previous_hosts" in (policy.__doc__ or "")


def _direct(call: dict[str, Any], duration: float = 60) -> simulator.Results:
    """A workload calling a replicated service directly (no balancer: a random spread)."""
    return run({
        "duration": duration, "drain": 30,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 200},
                            "target": {"to": "s", **call}}},
        "components": {"s": {"kind": "service", "replicas": SERVERS, "workers": 1,
                             "service_time": {"dist": "exponential", "mean": "10ms"}}},
    })


def test_direct_calls_to_replicas_avoid_the_original_too() -> None:
    """A replicated component called by name spreads at random; its hedges and retries still
    avoid the instances the call used, and with the option off a copy lands on the original's
    instance with probability 1/N."""
    hedged, same = _same_instance_share(_direct({"hedge": {"delay": "10ms"}}).spans)
    assert hedged > 3000 and same == 0.0
    hedged, same = _same_instance_share(
        _direct({"hedge": {"delay": "10ms", "avoid_previous_hosts": False}}).spans)
    assert abs(same - 1 / SERVERS) < 4 * math.sqrt(0.1 * 0.9 / hedged)


def test_avoiding_hosts_leaves_first_attempts_alone() -> None:
    """First attempts are picked from the spread's own stream and the avoiding copies from
    another, so hedging sends every first attempt where it would have gone without hedges."""
    on = _direct({"hedge": {"delay": "10ms"}}, duration=10).spans
    off = _direct({}, duration=10).spans
    first = [s[s["component"] == "s"].sort_values(["request_id", "arrival"])
             .groupby("request_id")["instance"].first() for s in (on, off)]
    assert first[0].equals(first[1])
