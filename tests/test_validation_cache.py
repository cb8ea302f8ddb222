"""Validation of the cache component against caching theory.

Replacement policies under the independent reference model (IRM): requests for ``n`` objects
with Zipf(``s``) popularity, i.i.d. Expected hit ratios come from ``tests/theory.py``: Che's
approximation for LRU, Gelenbe's exact product form for FIFO and RANDOM (the same hit ratio),
and the sum of the ``C`` largest popularities for perfect LFU (``lfu_counts: all_keys``). TTL
caches: per-object Poisson requests, hit ratio ``lam T / (1 + lam T)`` for a non-resetting TTL
(``ttl_mode: after_write``) and ``1 - exp(-lam T)`` when every hit resets it (``after_access``);
a key's time-average occupancy equals its hit ratio (PASTA).

How the runs are made: one closed-loop user, a backing ``service`` with zero service time and
many workers, zero hit and miss latency, so every response takes no time and the user's think
time alone spaces the requests. With a constant think time of 0.01 s the cache sees exactly one
request per 0.01 s (IRM needs only i.i.d. keys, which the workload draws); with an exponential
think time of mean 0.01 s the requests form a Poisson process of rate 100/s (each test asserts
that every latency is zero, which is what makes this exact). This costs two SimPy events per
request instead of four for open-loop arrivals.

The reference cases CACHE-zipf0.8-C100 and TTL-zipf0.8-T1 state the published run specs
(warm-up and measured requests or horizon, 5 seeds, the published tolerances as caps); a run
simulates ``vs.SCALE`` of that length (all of it in ``make validate``) with the caps widened
by ``1 / sqrt(vs.SCALE)``. Further points use
shorter runs; their caps are fixed in advance as twice four binomial standard errors of the
mean of 5 seeds, ``2 * 4 * sqrt((1 - h) / (h N)) / sqrt(5)`` for ``N`` measured requests
(floored at 1%); the binomial variance over-estimates the spread of a cache's hit ratio (the
published FIFO run of 1e6 requests has sd 0.00022, binomial 0.00034), so the caps are
conservative. The method (per-seed estimates, batch means, 4 standard errors) is that of
``tests/validation_support.py``.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

try:
    import theory as th
    import validation_support as vs
except ModuleNotFoundError:  # pragma: no cover - e.g. pytest --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import theory as th
    import validation_support as vs

import simulator
from simulator.results import Results

#: Time between requests of the closed-loop user (seconds).
GAP = 0.01


def cache_scenario(name: str, cache: dict[str, Any], n: int, s: float, warm: int,
                   measured: int, think: Any = GAP, gap: float = GAP) -> simulator.Scenario:
    """One user reading Zipf keys through ``cache`` (backing: an instant service).

    ``warm`` and ``measured`` are request counts, ``gap`` the mean time between requests
    (seconds); gauges are sampled so that the warm-up end and every batch edge are sampling
    times.
    """
    # the run is vs.SCALE of the stated length (measured requests a multiple of the batches)
    warm = vs.scaled(warm)
    measured = vs.scaled(measured / vs.BATCHES) * vs.BATCHES
    duration = (warm + measured) * gap
    warmup = warm * gap
    interval = math.gcd(warm, measured // vs.BATCHES) * gap
    return simulator.parse_scenario({
        "name": name,
        "duration": duration,
        "warmup": warmup,
        "metrics": {"spans": False, "interval": interval},
        "workloads": {"user": {
            "arrivals": {"process": "closed", "users": 1, "think_time": think},
            "keys": {"popularity": "zipf", "n": n, "s": s}, "target": "cache"}},
        "components": {
            "cache": {"kind": "cache", "backing": "store", **cache},
            "store": {"kind": "service", "workers": 1000},
        },
    })


def hit_ratio(results: Results) -> vs.Estimate:
    """Hit ratio of the cache over the measured window and per batch, from its gauges."""
    edges = vs.Window.of(results).edges
    hits = vs.gauge_at(results.samples, "hits_total", ["cache"], edges)
    misses = vs.gauge_at(results.samples, "misses_total", ["cache"], edges)
    dh, dm = np.diff(hits), np.diff(misses)
    total_h, total_m = hits[-1] - hits[0], misses[-1] - misses[0]
    return vs.Estimate(float(total_h / (total_h + total_m)), dh / (dh + dm))


def _seed_estimates(case: Any, seed: int) -> dict[str, vs.Estimate]:
    return case.measure(simulator.simulate(case.scenario(), seed=seed))  # type: ignore[no-any-return]


def run_seeds(case: Any) -> dict[str, list[vs.Estimate]]:
    """Run ``case`` once per seed of ``vs.SEEDS``, on every core (forked workers), and return
    each metric's per-seed estimates in seed order (as ``vs.run_case`` does serially)."""
    workers = min(len(vs.SEEDS), os.cpu_count() or 1)
    if workers < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return vs.run_case(case.scenario(), case.measure)
    ctx = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        per_seed = list(pool.map(_seed_estimates, [case] * len(vs.SEEDS), vs.SEEDS))
    out: dict[str, list[vs.Estimate]] = {}
    for estimates in per_seed:
        for metric, est in estimates.items():
            out.setdefault(metric, []).append(est)
    return out


def binomial_cap(h: float, measured: int) -> float:
    """Twice four binomial standard errors of the mean of 5 seeds, relative, floored at 1%."""
    se = math.sqrt((1.0 - h) / (h * measured)) / math.sqrt(len(vs.SEEDS))
    return max(vs.FLOOR, 2.0 * vs.Z * se)


# --------------------------------------------------------------------------------------------
# replacement policies under IRM


@dataclass(frozen=True)
class PolicyCase:
    """A policy at one (n, s, C) point."""

    id: str
    metric: str
    policy: str
    n: int
    s: float
    capacity: int
    warm: int
    measured: int
    expected_fn: Callable[[np.ndarray, int], float]
    cap: float | None = None  # None: binomial_cap
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expected(self) -> float:
        """Expected hit ratio from theory."""
        return float(self.expected_fn(th.zipf_probs(self.n, self.s), self.capacity))

    @property
    def tolerance_cap(self) -> float:
        """The cap of the relative tolerance."""
        return self.cap if self.cap is not None else binomial_cap(self.expected, self.measured)

    def scenario(self) -> simulator.Scenario:
        """The scenario of this case."""
        cache = {"policy": self.policy, "capacity": self.capacity, **self.extra}
        return cache_scenario(self.id, cache, self.n, self.s, self.warm, self.measured)

    def measure(self, results: Results) -> dict[str, vs.Estimate]:
        """The hit ratio of one run."""
        return {self.metric: hit_ratio(results)}


def _che(p: np.ndarray, c: int) -> float:
    return th.che_lru_hit_ratio(p, c)


def _fifo(p: np.ndarray, c: int) -> float:
    return th.fifo_random_hit_ratio_exact(p, c)


def _lfu(p: np.ndarray, c: int) -> float:
    return th.lfu_static_hit_ratio(p, c)


PERFECT_LFU = {"lfu_counts": "all_keys"}

# CACHE-zipf0.8-C100: run_spec and tolerances of cases.json
REFERENCE_POLICY_CASES = [
    PolicyCase("CACHE-zipf0.8-C100-LRU", "LRU_hit_ratio", "lru", 10_000, 0.8, 100,
               200_000, 1_000_000, _che, cap=0.01),
    PolicyCase("CACHE-zipf0.8-C100-FIFO", "FIFO_hit_ratio", "fifo", 10_000, 0.8, 100,
               200_000, 1_000_000, _fifo, cap=0.01),
    PolicyCase("CACHE-zipf0.8-C100-RANDOM", "RANDOM_hit_ratio", "random", 10_000, 0.8, 100,
               200_000, 1_000_000, _fifo, cap=0.015),
    PolicyCase("CACHE-zipf0.8-C100-LFU", "LFU_perfect_hit_ratio", "lfu", 10_000, 0.8, 100,
               200_000, 1_000_000, _lfu, cap=0.01, extra=PERFECT_LFU),
]

# Further points: a larger cache, and a steeper popularity over fewer objects. Perfect LFU
# reaches the static top-C set only as its counts separate the objects near rank C: after t
# requests the top-C-by-count set misses the static bound by about 0.3% at (n=10000, s=0.8,
# C=1000) for t = 400000 (multinomial counts, computed offline), a bias and not noise, so its
# points are where the popularities near rank C are far enough apart for that to be < 0.05%.
DERIVED_POLICY_CASES = [
    *(case
      for n, s, c in ((10_000, 0.8, 1000), (1000, 1.2, 20))
      for case in (
          PolicyCase(f"zipf{s}-n{n}-C{c}-LRU", "LRU_hit_ratio", "lru", n, s, c, 100_000,
                     300_000, _che),
          PolicyCase(f"zipf{s}-n{n}-C{c}-FIFO", "FIFO_hit_ratio", "fifo", n, s, c, 100_000,
                     300_000, _fifo),
          PolicyCase(f"zipf{s}-n{n}-C{c}-RANDOM", "RANDOM_hit_ratio", "random", n, s, c,
                     100_000, 300_000, _fifo),
      )),
    *(PolicyCase(f"zipf{s}-n{n}-C{c}-LFU", "LFU_perfect_hit_ratio", "lfu", n, s, c, 100_000,
                 300_000, _lfu, extra=PERFECT_LFU)
      for n, s, c in ((10_000, 1.0, 100), (1000, 1.2, 20))),
]


def run_policy_case(case: PolicyCase) -> None:
    est = run_seeds(case)
    vs.assert_matches_theory(case.id, est, {case.metric: case.expected},
                             {case.metric: case.tolerance_cap})


@pytest.mark.slow
@pytest.mark.parametrize("case", REFERENCE_POLICY_CASES, ids=lambda c: c.id)
def test_reference_policy_hit_ratio(case: PolicyCase) -> None:
    run_policy_case(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", DERIVED_POLICY_CASES, ids=lambda c: c.id)
def test_derived_policy_hit_ratio(case: PolicyCase) -> None:
    run_policy_case(case)


# --------------------------------------------------------------------------------------------
# TTL caches


@dataclass(frozen=True)
class TTLCase:
    """A TTL-only cache: Poisson requests at ``rate`` over Zipf keys, time to live ``ttl``."""

    id: str
    mode: str  # "nonreset" (after_write) or "reset" (after_access)
    n: int
    s: float
    rate: float
    ttl: float
    horizon: float
    caps: dict[str, float]

    @property
    def lam(self) -> np.ndarray:
        """Request rate of each key."""
        return self.rate * th.zipf_probs(self.n, self.s)

    def per_key(self) -> np.ndarray:
        """Expected hit ratio (= occupancy) of each key."""
        f = th.ttl_nonreset_hit_ratio if self.mode == "nonreset" else th.ttl_reset_hit_ratio
        return np.asarray(f(self.lam, self.ttl))

    @property
    def expected(self) -> dict[str, float]:
        """Expected values of every metric."""
        h = self.per_key()
        out = {
            f"{self.mode}_aggregate_hit_ratio": float(np.dot(self.lam / self.rate, h)),
            f"{self.mode}_mean_objects_cached": float(h.sum()),
        }
        for rank in (1, 10, 100, 1000):
            out[f"{self.mode}_hit_ratio_rank{rank}"] = float(h[rank - 1])
        return out

    def scenario(self) -> simulator.Scenario:
        """Closed loop with exponential think times and zero response time: Poisson(rate)."""
        requests = round(self.horizon * self.rate)
        cache = {"policy": "ttl", "ttl": self.ttl,
                 "ttl_mode": "after_write" if self.mode == "nonreset" else "after_access"}
        return cache_scenario(self.id, cache, self.n, self.s, requests // 10,
                              requests - requests // 10,
                              think={"dist": "exponential", "mean": 1.0 / self.rate},
                              gap=1.0 / self.rate)

    def measure(self, results: Results) -> dict[str, vs.Estimate]:
        """Aggregate hit ratio (gauges), mean occupancy (integral gauge), per-rank ratios."""
        req, batch = vs.measured_requests(results)
        assert (req["latency"] == 0).all(), "responses must take no time (Poisson requests)"
        out = {
            f"{self.mode}_aggregate_hit_ratio": hit_ratio(results),
            f"{self.mode}_mean_objects_cached": vs.time_average(
                results, "entries_time_total", ["cache"]),
        }
        hit = (req["cache"] == "hit").to_numpy()
        key = req["key"].to_numpy()
        for rank in (1, 10, 100, 1000):
            mine = key == rank - 1
            out[f"{self.mode}_hit_ratio_rank{rank}"] = vs.estimate(hit[mine], batch[mine])
        return out


# TTL-zipf0.8-T1: horizon, warm-up (10%) and tolerances of cases.json
TTL_REFERENCE_CAPS = {
    "nonreset_aggregate_hit_ratio": 0.01,
    "nonreset_mean_objects_cached": 0.01,
    "reset_aggregate_hit_ratio": 0.01,
    "reset_mean_objects_cached": 0.01,
    "nonreset_hit_ratio_rank1": 0.01,
    "reset_hit_ratio_rank1": 0.01,
    "nonreset_hit_ratio_rank10": 0.04,
    "reset_hit_ratio_rank10": 0.05,
}
REFERENCE_TTL_CASES = [
    TTLCase(f"TTL-zipf0.8-T1-{mode}", mode, 10_000, 0.8, 100.0, 1.0, 11_000.0,
            {k: v for k, v in TTL_REFERENCE_CAPS.items() if k.startswith(mode + "_")})
    for mode in ("nonreset", "reset")
]


def _derived_ttl_case(mode: str) -> TTLCase:
    """TTL 10 s, 200 requests/s over Zipf(1.0) of 5000 objects, 2200 s horizon."""
    case = TTLCase(f"TTL-zipf1.0-T10-{mode}", mode, 5000, 1.0, 200.0, 10.0, 2200.0, {})
    measured = round(0.9 * case.horizon * case.rate)
    exp = case.expected
    lam = case.lam
    caps = {
        f"{mode}_aggregate_hit_ratio": binomial_cap(exp[f"{mode}_aggregate_hit_ratio"],
                                                    measured),
        # occupancy: as noisy as the hit ratio it equals (PASTA)
        f"{mode}_mean_objects_cached": binomial_cap(exp[f"{mode}_aggregate_hit_ratio"],
                                                    measured),
        f"{mode}_hit_ratio_rank10": binomial_cap(exp[f"{mode}_hit_ratio_rank10"],
                                                 round(measured * lam[9] / case.rate)),
    }
    return TTLCase(case.id, mode, case.n, case.s, case.rate, case.ttl, case.horizon, caps)


DERIVED_TTL_CASES = [_derived_ttl_case(mode) for mode in ("nonreset", "reset")]


@pytest.mark.slow
@pytest.mark.parametrize("case", REFERENCE_TTL_CASES + DERIVED_TTL_CASES, ids=lambda c: c.id)
def test_ttl_hit_ratio_and_occupancy(case: TTLCase) -> None:
    est = run_seeds(case)
    for rank in (100, 1000):  # informational (few requests per run)
        name = f"{case.mode}_hit_ratio_rank{rank}"
        mean = float(np.mean([e.value for e in est[name]]))
        print(f"{case.id}: {name} mean {mean:.4g} expected {case.expected[name]:.4g} (info)")
    vs.assert_matches_theory(case.id, est, case.expected, case.caps)


# --------------------------------------------------------------------------------------------
# quick checks of the cases themselves


def test_cases_are_the_published_ones() -> None:
    cases = vs.reference_cases()
    ref = cases["CACHE-zipf0.8-C100"]
    spec = ref["run_spec"]
    published = ref["tolerance"]["relative_tolerance_mean_of_5_seeds"]
    expected_keys = {"LRU_hit_ratio": "LRU_hit_ratio_che",
                     "FIFO_hit_ratio": "FIFO_RANDOM_hit_ratio_exact",
                     "RANDOM_hit_ratio": "FIFO_RANDOM_hit_ratio_exact",
                     "LFU_perfect_hit_ratio": "LFU_perfect_static_topC_hit_ratio"}
    assert {c.metric for c in REFERENCE_POLICY_CASES} == set(published)
    for case in REFERENCE_POLICY_CASES:
        assert (case.warm, case.measured) == (spec["warmup_requests"], spec["measured_requests"])
        assert (case.n, case.s, case.capacity) == (ref["params"]["n_items"],
                                                   ref["params"]["zipf_alpha"],
                                                   ref["params"]["cache_size"])
        assert case.cap == published[case.metric]
        assert case.expected == pytest.approx(ref["expected"][expected_keys[case.metric]],
                                              rel=2e-3), case.id
    assert spec["seeds"] == len(vs.SEEDS)

    ttl = cases["TTL-zipf0.8-T1"]
    assert ttl["tolerance"]["relative_tolerance_mean_of_5_seeds"] == TTL_REFERENCE_CAPS
    assert ttl["run_spec"]["seeds"] == len(vs.SEEDS)
    for case in REFERENCE_TTL_CASES:
        p = ttl["params"]
        assert (case.n, case.s, case.rate, case.ttl, case.horizon) == (
            p["n_items"], p["zipf_alpha"], p["lambda_total_per_s"], p["ttl_s"],
            ttl["run_spec"]["horizon_s"])
        for metric, value in case.expected.items():
            assert value == pytest.approx(ttl["expected"][metric], rel=2e-3), metric


def test_scenarios_sample_at_the_batch_edges() -> None:
    for case in (REFERENCE_POLICY_CASES[0], DERIVED_POLICY_CASES[0]):
        sc = case.scenario()
        edges = np.linspace(sc.warmup, sc.duration, vs.BATCHES + 1)
        ticks = edges / sc.metrics.interval
        assert np.allclose(ticks, np.round(ticks)), case.id
        assert sc.expected_requests() == pytest.approx(
            vs.SCALE * (case.warm + case.measured), rel=1e-3)
    for ttl_case in REFERENCE_TTL_CASES + DERIVED_TTL_CASES:
        sc = ttl_case.scenario()
        assert sc.warmup == pytest.approx(0.1 * vs.SCALE * ttl_case.horizon, rel=1e-3)
        assert sc.duration == pytest.approx(vs.SCALE * ttl_case.horizon, rel=1e-3)


def test_derived_caps_are_meaningful() -> None:
    for case in DERIVED_POLICY_CASES:
        assert 0.01 <= case.tolerance_cap <= 0.02, (case.id, case.tolerance_cap)
    for ttl_case in DERIVED_TTL_CASES:
        assert all(0.01 <= c <= 0.05 for c in ttl_case.caps.values()), ttl_case.caps
