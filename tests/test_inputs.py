"""Units, distributions, key popularity, arrival processes and random streams."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import TypeAdapter

from simulator.distributions import Distribution
from simulator.keys import KeySpace
from simulator.rng import make_generator, stable_hash
from simulator.units import parse_duration, parse_rate
from tests.conftest import run


@pytest.mark.parametrize(("text", "seconds"), [
    ("250ms", 0.25), ("1.5s", 1.5), ("2m", 120), ("2min", 120), ("1h", 3600), ("10us", 1e-5),
    ("3", 3.0), (4, 4.0), (0.5, 0.5), ("1e-3s", 1e-3), (" 7 ms ", 0.007),
])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(("text", "per_second"), [
    ("800/s", 800), ("5k/s", 5000), ("30/min", 0.5), ("2/ms", 2000), (12, 12), ("1.5M/s", 1.5e6),
    ("0.8/s", 0.8),
])
def test_rates(text: object, per_second: float) -> None:
    assert parse_rate(text) == pytest.approx(per_second)


@pytest.mark.parametrize("bad", ["10 parsecs", "fast", True, None, "5/fortnight", [1]])
def test_bad_units_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad) if bad != "5/fortnight" else parse_rate(bad)


DISTS = [
    {"dist": "exponential", "mean": "5ms"},
    {"dist": "uniform", "low": 1, "high": 3},
    {"dist": "normal", "mean": 2, "sd": 0.5},
    {"dist": "lognormal", "mean": 2, "cv": 1.5},
    {"dist": "lognormal", "p50": "10ms", "p99": "100ms"},
    {"dist": "gamma", "mean": 3, "cv": 0.5},
    {"dist": "pareto", "alpha": 3.0, "scale": 1.0},
    {"dist": "weibull", "shape": 1.5, "scale": 2.0},
    {"dist": "empirical", "values": [1, 2, 10], "weights": [0.5, 0.3, 0.2]},
    {"dist": "mixture", "components": [
        {"weight": 0.97, "of": {"dist": "exponential", "mean": "5ms", "shift": "5ms"}},
        {"weight": 0.03, "of": {"dist": "exponential", "mean": "200ms", "shift": "5ms"}}]},
    "7ms",
]


@pytest.mark.parametrize("spec", DISTS, ids=lambda s: s if isinstance(s, str) else s["dist"])
def test_distribution_sample_mean_matches_analytic_mean(spec: object) -> None:
    d = TypeAdapter(Distribution).validate_python(spec)
    x = d.sample(make_generator(1, 0, "test", "dist"), 400_000)
    assert (x >= 0).all()
    se = x.std() / math.sqrt(len(x))
    assert abs(x.mean() - d.mean) < max(5 * se, 1e-12)
    draw = d.sampler(make_generator(1, 0, "test", "dist"))
    assert abs(np.mean([draw() for _ in range(20000)]) - d.mean) < 40 * se + 1e-12


def test_lognormal_by_percentiles_hits_them() -> None:
    d = TypeAdapter(Distribution).validate_python({"dist": "lognormal", "p50": 0.01,
                                                   "p99": 0.1})
    x = d.sample(make_generator(2, 0, "t", "p"), 1_000_000)
    assert np.quantile(x, 0.5) == pytest.approx(0.01, rel=0.01)
    assert np.quantile(x, 0.99) == pytest.approx(0.1, rel=0.02)


def test_zipf_keys_follow_their_probabilities() -> None:
    k = TypeAdapter(KeySpace).validate_python({"popularity": "zipf", "n": 100, "s": 0.9})
    x = k.sample(make_generator(3, 0, "t", "keys"), 1_000_000)
    freq = np.bincount(x, minlength=100) / len(x)
    p = k.probabilities()
    assert np.all(np.abs(freq - p) < 5 * np.sqrt(p * (1 - p) / len(x)) + 1e-9)


def test_streams_are_stable_and_independent() -> None:
    assert stable_hash("api") == stable_hash("api") != stable_hash("apj")
    a = make_generator(1, 0, "api", "service_time").random(5)
    b = make_generator(1, 0, "api", "service_time").random(5)
    c = make_generator(1, 0, "api", "choice").random(5)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def arrivals_of(arrivals: dict[str, object], duration: float) -> np.ndarray:
    r = run({"duration": duration,
             "workloads": {"w": {"arrivals": arrivals, "target": "s"}},
             "components": {"s": {"kind": "service", "workers": 1000, "service_time": 0}}})
    return r.requests["start"].to_numpy()


def test_poisson_arrivals_have_exponential_gaps() -> None:
    t = arrivals_of({"process": "poisson", "rate": 100}, 1000)
    gaps = np.diff(t)
    assert abs(len(t) - 100_000) < 4 * math.sqrt(100_000)
    assert gaps.std() / gaps.mean() == pytest.approx(1.0, abs=0.02)


def test_constant_rate_is_evenly_spaced() -> None:
    t = arrivals_of({"process": "constant", "rate": "4/s"}, 10)
    assert np.allclose(np.diff(t), 0.25) and len(t) == 39


def test_schedule_follows_its_steps() -> None:
    t = arrivals_of({"process": "schedule", "steps": [
        {"at": 0, "rate": 100}, {"at": 100, "rate": 1000}, {"at": 110, "rate": 0},
        {"at": 150, "rate": 50}]}, 250)
    counts = [((t >= a) & (t < b)).sum() for a, b in [(0, 100), (100, 110), (110, 150),
                                                       (150, 250)]]
    expected = [10_000, 10_000, 0, 5_000]
    for got, exp in zip(counts, expected, strict=True):
        assert abs(got - exp) <= 4 * math.sqrt(max(exp, 1))


def test_on_off_bursts() -> None:
    t = arrivals_of({"process": "on_off", "rate": 200, "on": 1, "off": 3}, 400)
    in_on = (t % 4) < 1
    assert in_on.all()
    assert abs(len(t) - 200 * 100) < 4 * math.sqrt(200 * 100)


def test_closed_loop_throughput_is_users_over_cycle_time() -> None:
    r = run({"duration": 1000, "warmup": 100,
             "workloads": {"w": {"arrivals": {"process": "closed", "users": 5,
                                              "think_time": 0.75}, "target": "s"}},
             "components": {"s": {"kind": "service", "workers": 5, "service_time": 0.25}}})
    summary = r.summary().set_index("name")
    assert summary.loc["w", "throughput"] == pytest.approx(5 / (0.75 + 0.25), rel=0.01)
    assert np.allclose(r.requests.dropna()["latency"], 0.25)


def test_operation_mix_and_keys_are_recorded() -> None:
    r = run({"duration": 100,
             "workloads": {"w": {"arrivals": {"process": "poisson", "rate": 100},
                                 "mix": {"read": 3, "write": 1},
                                 "keys": {"popularity": "uniform", "n": 10}, "target": "s"}},
             "components": {"s": {"kind": "service", "workers": 100, "service_time": 0}}})
    ops = r.requests["op"].astype(str)
    n = len(ops)
    assert abs((ops == "write").mean() - 0.25) < 4 * math.sqrt(0.25 * 0.75 / n)
    assert set(r.requests["key"]) == set(range(10))
