"""Network links on call edges (simulator/links.py): latency each way, message loss, profiles.

Loss is checked against the binomial expectation: each message is lost with probability p
independently, so an attempt is answered with probability s = (1 - p)^2, a call with n
attempts (retried on timeout) succeeds at attempt k with probability (1 - s)^(k - 1) s and
fails with probability (1 - s)^n. Latencies are constants, so they are checked exactly.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

import simulator
from simulator.errors import ScenarioError
from tests.conftest import run

L = 0.001  # one-way edge latency
S = 0.002  # service time
T = 0.05  # per-attempt timeout
B = 0.01  # constant retry backoff


def lossy(loss: float, attempts: int, rate: float = 400, duration: float = 50) -> dict[str, Any]:
    return {
        "duration": duration, "drain": 2,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": rate}, "target": {
            "to": "api", "timeout": T, "network": {"latency": L, "loss": loss},
            "retry": {"attempts": attempts, "backoff": "constant", "base": B, "jitter": "none",
                      "retry_on": ["timeout"]}}}},
        "components": {"api": {"kind": "service", "workers": 1000, "service_time": S}},
    }


def test_delivered_and_failed_fractions_match_the_binomial_expectation() -> None:
    p, n = 0.2, 3
    res = run(lossy(p, n))
    r = res.requests
    total = len(r)
    assert total > 18_000
    s = (1 - p) ** 2
    expected = {k: (1 - s) ** (k - 1) * s for k in range(1, n + 1)}  # ok at attempt k
    ok = r["status"] == "ok"
    for k, prob in expected.items():
        got = float((ok & (r["attempts"] == k)).mean())
        sd = math.sqrt(prob * (1 - prob) / total)
        assert abs(got - prob) <= 4 * sd, (k, got, prob)
    failed = (1 - s) ** n
    got = float((~ok).mean())
    assert abs(got - failed) <= 4 * math.sqrt(failed * (1 - failed) / total), (got, failed)
    assert set(r.loc[~ok, "status"].astype(str)) == {"timeout"}  # a lost message is a timeout
    assert (r.loc[~ok, "attempts"] == n).all()
    # the callee sees every attempt whose request was not lost: attempts x (1 - p)
    attempts = int(r["attempts"].sum())
    arrived = len(res.spans)
    mean = attempts * (1 - p)
    assert abs(arrived - mean) <= 4 * math.sqrt(attempts * p * (1 - p))


def test_each_attempt_pays_the_latency_out_and_back_exactly() -> None:
    r = run(lossy(0.2, 3, rate=50, duration=20)).requests
    ok = r["status"] == "ok"
    for k in (1, 2, 3):
        lat = r.loc[ok & (r["attempts"] == k), "latency"].to_numpy()
        assert len(lat) > 0
        # k - 1 timed-out attempts and backoffs, then one answered attempt
        assert np.allclose(lat, (k - 1) * (T + B) + 2 * L + S), k
    assert np.allclose(r.loc[~ok, "latency"], 3 * T + 2 * B)


def two_tier(**extra: Any) -> dict[str, Any]:
    return {
        "duration": 5, **extra,
        "workloads": {"w": {"arrivals": {"process": "constant", "rate": 20}, "target": "api"}},
        "components": {
            "api": {"kind": "service", "workers": 10, "service_time": S,
                    "calls": {"*": [{"to": "db", "network": "same_host"}]}},
            "db": {"kind": "service", "workers": 10, "service_time": 0.003}},
    }


def test_the_default_profile_and_a_per_edge_profile() -> None:
    r = run(two_tier(network={"default": "cross_zone"})).requests
    # client -> api: the default cross_zone (1 ms each way); api -> db: same_host (25 us)
    assert np.allclose(r["latency"], 2 * 1e-3 + S + 2 * 25e-6 + 0.003)
    r = run(two_tier()).requests  # no network block: only the edge that names a profile pays
    assert np.allclose(r["latency"], S + 2 * 25e-6 + 0.003)


def test_a_redefined_profile_and_a_field_override() -> None:
    spec = two_tier(network={"default": "same_zone",
                             "profiles": {"same_host": {"latency": "0.1ms"}}})
    spec["components"]["api"]["calls"]["*"][0]["network"] = {"profile": "same_host",
                                                              "latency": "0.3ms"}
    r = run(spec).requests
    assert np.allclose(r["latency"], 2 * 250e-6 + S + 2 * 0.3e-3 + 0.003)
    spec["components"]["api"]["calls"]["*"][0]["network"] = "same_host"
    r = run(spec).requests
    assert np.allclose(r["latency"], 2 * 250e-6 + S + 2 * 0.1e-3 + 0.003)


def test_regions_add_their_link_on_top_of_the_edge() -> None:
    spec = two_tier(regions={"names": ["a", "b"], "latency": {"a": {"b": "10ms"}}})
    spec["components"]["api"]["region"] = "a"
    spec["components"]["db"]["region"] = "b"
    r = run(spec).requests
    assert np.allclose(r["latency"], S + 2 * (0.010 + 25e-6) + 0.003)


def test_edges_without_a_network_draw_nothing_new() -> None:
    """A network block whose profiles no edge uses changes nothing (common random numbers)."""
    base = lossy(0.0, 1, rate=100, duration=5)
    del base["workloads"]["w"]["target"]["network"]
    a = run(base).requests
    b = run({**base, "network": {"profiles": {"wan": {"latency": "5ms", "loss": 0.1}}}}).requests
    assert a.equals(b)


@pytest.mark.parametrize(("change", "message"), [
    ({"network": {"default": "same_zon"}}, "unknown network profile 'same_zon'; did you mean"),
    ({"workloads.w.target.network": "wan"}, "unknown network profile 'wan'"),
    ({"workloads.w.target.timeout": None}, "loses messages (loss 0.2) but has no timeout"),
    ({"workloads.w.target.network": {"loss": 1}}, "less than 1"),
])
def test_bad_network_settings_are_located_errors(change: dict[str, Any], message: str) -> None:
    spec = lossy(0.2, 2)
    for key, value in change.items():
        parts = key.split(".")
        node = spec
        for p in parts[:-1]:
            node = node[p]
        if value is None:
            del node[parts[-1]]
        else:
            node[parts[-1]] = value
    with pytest.raises(ScenarioError, match=re.escape(message)):
        simulator.parse_scenario(spec)


def test_a_default_profile_with_loss_needs_a_timeout_on_every_edge() -> None:
    spec = two_tier(network={"default": "wan", "profiles": {"wan": {"loss": 0.01}}})
    del spec["components"]["api"]["calls"]["*"][0]["network"]  # a profile of its own: lossless
    with pytest.raises(ScenarioError, match=r"from network\.default") as info:
        simulator.parse_scenario(spec)
    assert "workloads.w.target" in str(info.value)
    assert "components.api.calls.*.0" in str(info.value)
