"""Machinery shared by the theory-validation tests (``tests/test_validation_*.py``).

Method
------
A case runs its scenario once per seed in :data:`SEEDS`. Poisson arrivals come at ``rate`` for
``duration = arrivals / rate``; the warm-up is the first 10% (``0.1 * duration``), so the
measured window is ``[0.1 * duration, duration)``: requests created in it (and hops arriving in
it) are measured. A drain period after ``duration`` lets every measured request finish, so that
no slow request is silently left out (each measurement asserts that none is in flight).

Every metric is estimated once per seed over the whole measured window (the "per-seed
estimate"), and again over :data:`BATCHES` equal sub-windows of it (batch means). A metric
passes when the mean over the seeds of the per-seed estimates is within a relative tolerance of
the expected value::

    |mean - expected| / |expected| <= tol,  tol = min(cap, max(FLOOR, Z * se / |expected|))

* ``se`` is the standard error of that mean, estimated from the runs themselves: the larger of
  the spread between the seeds (``std / sqrt(S)``, only 4 degrees of freedom) and the
  batch-means estimate (pooled within-seed variance of the batch estimates divided by
  ``B * S``, 45 degrees of freedom, which pins the scale down far better than 5 seeds can).
  When the expected value is itself a simulation result over ``R`` runs, its own uncertainty is
  added: ``se * sqrt(1 + S / R)``.
* ``Z = 4``: a correct simulator fails a given metric with a probability of about 1e-4.
* Run length: a case states its run length (the published ``run_spec`` for the reference
  cases); ``make test`` runs :data:`SCALE` = 0.2 of it and ``make validate`` all of it. Every
  cap below is for the stated length and is widened by ``1 / sqrt(SCALE)`` (standard errors
  grow so), so the comparison means the same at either scale, with wider tolerances.
* ``cap`` is fixed in advance for each metric: the tolerance stated in ``cases.json`` for the
  reference cases, and for the other points about twice an a-priori estimate of four standard
  errors (see :func:`mm1_caps`). A run whose spread is inflated (a drifting or unstable
  simulation) therefore cannot widen the tolerance without bound: the test can still fail.

Expected values come only from ``tests/theory.py`` (closed forms) or, for the power-of-two case
that has none, from the independent simulation published in ``cases.json``; never from this
simulator's output.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

import simulator
from simulator.results import Results

FloatArray = npt.NDArray[np.float64]

#: Seeds of every case (the reference cases ask for 5 seeds).
SEEDS = (1, 2, 3, 4, 5)
#: Fraction of the duration discarded as warm-up.
WARMUP_FRACTION = 0.1
#: Gauge samples per duration: the warm-up is 10 sampling intervals and each batch 9.
SAMPLES_PER_RUN = 100
#: Equal sub-windows of the measured window used for batch means.
BATCHES = 10
#: Standard errors allowed.
Z = 4.0
#: Smallest relative tolerance (as in cases.json).
FLOOR = 0.01
#: Environment variable naming a file to which every comparison is appended as a JSON line.
REPORT_ENV = "SIMULATOR_VALIDATION_REPORT"
#: Environment variable setting :data:`SCALE`.
SCALE_ENV = "SIMULATOR_VALIDATION_SCALE"


def _scale() -> float:
    value = float(os.environ.get(SCALE_ENV, "0.2"))
    if not 0.0 < value <= 1.0:
        raise ValueError(f"{SCALE_ENV} must be in (0, 1], got {value}")
    return value


#: Fraction of each case's stated run length (arrivals, requests, horizon) that a run
#: simulates: 0.2 in ``make test``, 1 in ``make validate`` (the published run specs). Caps are
#: stated for the full length; a run at scale ``s`` allows ``cap / sqrt(s)``, as a standard
#: error grows by ``1 / sqrt(s)``, so the test means the same at any scale.
SCALE = _scale()


def scaled(count: float, scale: float = SCALE) -> int:
    """``count`` (arrivals, requests) at ``scale``, rounded."""
    return round(count * scale)


# --------------------------------------------------------------------------------------------
# scenarios and runs
# --------------------------------------------------------------------------------------------


def open_scenario(
    name: str, rate: float, arrivals: int, target: str, components: dict[str, Any],
    scale: float = SCALE,
) -> simulator.Scenario:
    """Return a scenario with one Poisson workload of ``arrivals`` expected arrivals.

    Parameters
    ----------
    name
        Scenario name.
    rate
        Poisson arrival rate.
    arrivals
        Expected number of arrivals over the run as the case states it; the run has
        ``arrivals * scale`` (``duration = arrivals * scale / rate``, see :data:`SCALE`).
    target
        Component the requests go to.
    components
        The ``components`` block of the scenario.
    """
    duration = scaled(arrivals, scale) / rate
    interval = duration / SAMPLES_PER_RUN
    return simulator.parse_scenario({
        "name": name,
        "duration": duration,
        "warmup": WARMUP_FRACTION * duration,
        "drain": interval,
        "metrics": {"spans": True, "interval": interval},
        "workloads": {
            "clients": {"arrivals": {"process": "poisson", "rate": rate}, "target": target},
        },
        "components": components,
    })


@dataclass(frozen=True)
class Estimate:
    """One seed's estimate of a metric: over the whole measured window and per batch."""

    value: float
    batches: FloatArray


Measure = Callable[[Results], dict[str, Estimate]]


def run_case(
    scenario: simulator.Scenario, measure: Measure, seeds: Sequence[int] = SEEDS
) -> dict[str, list[Estimate]]:
    """Run ``scenario`` once per seed and return each metric's per-seed estimates."""
    out: dict[str, list[Estimate]] = {}
    for seed in seeds:
        results = simulator.simulate(scenario, seed=seed)
        for metric, est in measure(results).items():
            out.setdefault(metric, []).append(est)
        del results
    return out


# --------------------------------------------------------------------------------------------
# measurement primitives
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The measured window ``[t0, t1)`` of a run, cut into ``batches`` equal sub-windows."""

    t0: float
    t1: float
    batches: int = BATCHES

    @classmethod
    def of(cls, results: Results) -> Window:
        """Measured window of a run: ``[warmup, duration)``."""
        t0, t1 = results.window
        return cls(t0, t1)

    @property
    def edges(self) -> FloatArray:
        """Boundaries of the batches, ``t0`` to ``t1``."""
        return np.linspace(self.t0, self.t1, self.batches + 1)

    def batch_of(self, times: npt.ArrayLike) -> npt.NDArray[np.int64]:
        """Batch index of each time: ``0 .. batches - 1`` inside ``[t0, t1)``, else ``-1``."""
        t = np.asarray(times, dtype=np.float64)
        inside = (t >= self.t0) & (t < self.t1)
        with np.errstate(invalid="ignore"):
            raw = np.floor((t - self.t0) / (self.t1 - self.t0) * self.batches)
        idx = np.clip(np.nan_to_num(raw, nan=-1.0), -1, self.batches - 1).astype(np.int64)
        return np.where(inside, idx, -1)


def estimate(
    values: npt.ArrayLike,
    batch: npt.NDArray[np.int64],
    stat: Callable[[FloatArray], float] = np.mean,
    batches: int = BATCHES,
) -> Estimate:
    """Apply ``stat`` to the measured values, overall and batch by batch.

    Parameters
    ----------
    values
        One value per measured item.
    batch
        Batch index of each item (``0 .. batches - 1``).
    stat
        Statistic of a sample (mean, a quantile...).
    """
    v = np.asarray(values, dtype=np.float64)
    assert v.shape == batch.shape, "one batch index per value"
    assert v.size > 0 and batch.min() >= 0, "only measured items may be passed"
    order = np.argsort(batch, kind="stable")
    bounds = np.searchsorted(batch[order], np.arange(batches + 1))
    sorted_v = v[order]
    per = np.array([stat(sorted_v[bounds[b]:bounds[b + 1]]) for b in range(batches)])
    return Estimate(float(stat(v)), per)


def quantile(q: float) -> Callable[[FloatArray], float]:
    """Statistic: the ``q`` quantile of a sample (linear interpolation, as in the summary)."""

    def stat(x: FloatArray) -> float:
        return float(np.quantile(x, q))

    return stat


def gauge_at(
    samples: pd.DataFrame, metric: str, components: Sequence[str], times: FloatArray
) -> FloatArray:
    """Value of a gauge summed over every instance of ``components`` at sampling ``times``.

    Every time must be a sampling time of the run (up to rounding).
    """
    s = samples[(samples["metric"] == metric) & samples["component"].isin(list(components))]
    assert not s.empty, f"no samples of {metric!r} for {components!r}"
    per_time = s.groupby("time")["value"].sum().sort_index()
    t = per_time.index.to_numpy(dtype=np.float64)
    v = per_time.to_numpy(dtype=np.float64)
    i = np.clip(np.searchsorted(t, times), 1, len(t) - 1)
    nearest = np.where(np.abs(t[i - 1] - times) <= np.abs(t[i] - times), i - 1, i)
    slack = 1e-9 * max(1.0, float(np.max(np.abs(times))))
    assert np.all(np.abs(t[nearest] - times) <= slack), "window edges must be sampling times"
    return v[nearest]


def time_average(
    results: Results, metric: str, components: Sequence[str], per_worker: bool = False
) -> Estimate:
    """Time average over the measured window of a cumulative ``*_time_total`` gauge.

    ``system_time_total`` gives L, ``queue_time_total`` Lq and ``busy_time_total`` the number
    of busy workers (``per_worker=True``: divided by the number of workers, the utilisation).
    The gauges are exact integrals, so the only error is statistical.
    """
    w = Window.of(results)
    edges = w.edges
    cum = gauge_at(results.samples, metric, components, edges)
    if per_worker:
        workers = gauge_at(results.samples, "workers", components, edges[-1:])[0]
        cum = cum / workers
    lengths = np.diff(edges)
    return Estimate(float((cum[-1] - cum[0]) / (edges[-1] - edges[0])), np.diff(cum) / lengths)


def rate_estimate(times: FloatArray, w: Window) -> Estimate:
    """Events per unit time in the window (``times`` of the events, any of them outside)."""
    b = w.batch_of(times)
    counts = np.bincount(b[b >= 0], minlength=w.batches).astype(np.float64)
    return Estimate(float(counts.sum() / (w.t1 - w.t0)), counts / np.diff(w.edges))


def by_request(spans: pd.DataFrame, column: str, n_requests: int) -> FloatArray:
    """Array indexed by request id holding ``column`` of each request's (single) span.

    Requests without a span hold NaN. ``spans`` must hold at most one span per request.
    """
    rid = spans["request_id"].to_numpy()
    assert np.bincount(rid, minlength=n_requests).max(initial=0) <= 1, "several spans a request"
    out = np.full(n_requests, np.nan)
    out[rid] = spans[column].to_numpy(dtype=np.float64)
    return out


def number_found(spans: pd.DataFrame) -> FloatArray:
    """Number of requests in system at a span's instance just before the span's arrival.

    "In system" counts requests waiting and in service (spans from arrival to end); rejected
    spans never enter. Returns one value per row of ``spans``, in the same order. Vectorised per
    instance: arrivals strictly before ``t`` minus accepted departures strictly before ``t``.
    """
    arrival = spans["arrival"].to_numpy(dtype=np.float64)
    end = spans["end"].to_numpy(dtype=np.float64)
    accepted = (spans["status"] != "rejected").to_numpy()
    codes = spans["instance"].cat.codes.to_numpy()
    out = np.empty(len(spans), dtype=np.float64)
    for code in np.unique(codes):
        mine = codes == code
        kept = mine & accepted
        arrived = np.sort(arrival[kept])
        left = np.sort(end[kept])
        t = arrival[mine]
        out[mine] = np.searchsorted(arrived, t, "left") - np.searchsorted(left, t, "left")
    return out


def measured_requests(results: Results) -> tuple[pd.DataFrame, npt.NDArray[np.int64]]:
    """Requests created in the measured window, and their batch indices.

    Asserts that every one of them finished (the drain was long enough).
    """
    w = Window.of(results)
    req = results.requests
    batch = w.batch_of(req["start"].to_numpy())
    keep = batch >= 0
    measured = req[keep]
    in_flight = int((measured["status"] == "in_flight").sum())
    assert in_flight == 0, f"{in_flight} measured requests still in flight: lengthen the drain"
    return measured, batch[keep]


# --------------------------------------------------------------------------------------------
# a-priori tolerance caps
# --------------------------------------------------------------------------------------------


def mm1_relative_sd(rho: float, mu: float, measured_time: float) -> float:
    """A-priori relative standard deviation of one run's time-average number in an M/M/1.

    The asymptotic variance of the time average of the M/M/1 queue-length process is
    ``2 rho (1 + rho) / (mu (1 - rho)^4)`` per unit time (Whitt, "Planning queueing
    simulations", Management Science 35(11), 1989); divided by ``L^2 = (rho / (1 - rho))^2``
    and the run length, this is ``sqrt(2 (1 + rho) / (rho (1 - rho)^2 mu T))``. The mean
    response time has about the same relative spread (Little's law). For the reference cases
    (200000 arrivals, 5 seeds) four standard errors give 0.015 at rho = 0.5 and 0.040 at 0.8,
    against 0.015 and 0.05 in cases.json.
    """
    return math.sqrt(2.0 * (1.0 + rho) / (rho * (1.0 - rho) ** 2 * mu * measured_time))


def mm1_caps(rho: float, mu: float, measured_time: float, seeds: int = len(SEEDS)
             ) -> dict[str, float]:
    """Tolerance caps for the metrics of an M/M/1-like queue: about twice four a-priori SEs.

    ``base = 2 * 4 * mm1_relative_sd / sqrt(seeds)``. Relative to the mean response time, the
    cases.json tolerances of M/M/1 are about ``1/rho`` times wider for the mean wait and Lq, the
    same for the median, 1.2 times for the p95, 1.6-2 times for the p99 and ``1.3/rho`` times
    for the wait p99; probabilities of waiting and utilisations are far less noisy.
    """
    base = 2.0 * Z * mm1_relative_sd(rho, mu, measured_time) / math.sqrt(seeds)
    return {
        "mean_response_time": max(FLOOR, base),
        "L_time_avg_in_system": max(FLOOR, base),
        "mean_wait": max(FLOOR, base / rho),
        "Lq_time_avg_waiting": max(FLOOR, base / rho),
        "response_p50": max(FLOOR, base),
        "response_p95": max(FLOOR, 1.2 * base),
        "response_p99": max(FLOOR, 2.0 * base),
        "wait_p99": max(FLOOR, 1.6 * base / rho),
        "P_wait_gt_0": 0.015,
        "utilisation": 0.015,
    }


# --------------------------------------------------------------------------------------------
# comparison
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """The comparison of one metric with its expected value."""

    metric: str
    expected: float
    per_seed: tuple[float, ...]
    se: float
    cap: float
    tol: float

    @property
    def mean(self) -> float:
        """Mean over the seeds of the per-seed estimates."""
        return float(np.mean(self.per_seed))

    @property
    def rel_err(self) -> float:
        """Relative error of the mean."""
        return (self.mean - self.expected) / abs(self.expected)

    @property
    def ok(self) -> bool:
        """Whether the mean is within the tolerance."""
        return abs(self.rel_err) <= self.tol

    def line(self) -> str:
        """One line of the report."""
        verdict = "ok  " if self.ok else "FAIL"
        return (f"{verdict} {self.metric:<28} expected {self.expected:10.5g}  "
                f"mean {self.mean:10.5g}  rel.err {self.rel_err:+8.4f}  "
                f"4se {Z * self.se / abs(self.expected):7.4f}  tol {self.tol:7.4f}  "
                f"(cap {self.cap:.4f})")


def compare(
    estimates: Mapping[str, Sequence[Estimate]],
    expected: Mapping[str, float],
    caps: Mapping[str, float],
    reference_runs: int | None = None,
    scale: float = SCALE,
) -> list[Check]:
    """Compare every metric named in ``caps`` with its expected value (see module docs);
    ``caps`` are for the stated run length, widened by ``1 / sqrt(scale)`` for a shorter run."""
    missing = [m for m in caps if m not in expected or m not in estimates]
    assert not missing, f"metrics without an expected value or a measurement: {missing}"
    checks = []
    for metric, stated in caps.items():
        cap = stated / math.sqrt(scale)
        ests = estimates[metric]
        values = np.array([e.value for e in ests])
        s = len(values)
        between = float(np.std(values, ddof=1)) / math.sqrt(s) if s > 1 else math.inf
        batch_vals = np.array([e.batches for e in ests])
        b = batch_vals.shape[1]
        pooled = float(np.mean(np.var(batch_vals, axis=1, ddof=1)))
        within = math.sqrt(pooled / (b * s))
        se = max(between, within)
        if reference_runs is not None:
            se *= math.sqrt(1.0 + s / reference_runs)
        exp = float(expected[metric])
        tol = min(cap, max(FLOOR, Z * se / abs(exp)))
        checks.append(Check(metric, exp, tuple(float(v) for v in values), se, cap, tol))
    return checks


def assert_matches_theory(
    case: str,
    estimates: Mapping[str, Sequence[Estimate]],
    expected: Mapping[str, float],
    caps: Mapping[str, float],
    reference_runs: int | None = None,
    scale: float = SCALE,
) -> list[Check]:
    """Compare (see :func:`compare`), print the report, and fail listing every metric off."""
    checks = compare(estimates, expected, caps, reference_runs, scale)
    seeds = len(next(iter(estimates.values()))) if estimates else 0
    report = "\n".join([f"{case}: mean over {seeds} seeds at {scale:g} of the stated run "
                         "length vs expected",
                        *(c.line() for c in checks)])
    print(report)
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            for c in checks:
                fh.write(json.dumps({
                    "case": case, "metric": c.metric, "expected": c.expected, "mean": c.mean,
                    "per_seed": c.per_seed, "rel_err": c.rel_err, "se": c.se, "tol": c.tol,
                    "cap": c.cap, "ok": c.ok, "scale": scale,
                }) + "\n")
    failed = [c.metric for c in checks if not c.ok]
    assert not failed, f"{case}: {failed} off theory\n{report}"
    return checks


# --------------------------------------------------------------------------------------------
# the reference cases
# --------------------------------------------------------------------------------------------

#: The reference cases, vendored into the repository (``tests/data/reference/``, with their README)
#: so that the theory checks run in any plain clone: a missing file is a failure, never a skip.
CASES_PATH = Path(__file__).resolve().parent / "data" / "reference" / "cases.json"

#: cases.json metric names that this suite calls differently.
ALIASES = {
    "P_wait_gt_0_erlangC": "P_wait_gt_0",
    "utilisation_per_server": "utilisation",
    "mean_wait_PK": "mean_wait",
}


def reference_cases() -> dict[str, dict[str, Any]]:
    """The reference cases keyed by id (a missing file raises: the checks must not skip)."""
    with CASES_PATH.open(encoding="utf-8") as fh:
        return {case["id"]: case for case in json.load(fh)}


def check_against_reference(
    case: dict[str, Any],
    arrivals: int,
    expected: Mapping[str, float],
    caps: Mapping[str, float],
    rel: float = 2e-3,
) -> None:
    """Assert that a case of this suite is the published one.

    Same run length and seed count, the published tolerances as caps (no more, no fewer
    metrics), and expected values that agree with the published (rounded) ones.
    """
    spec = case["run_spec"]
    assert spec["arrivals_total"] == arrivals
    assert spec["seeds"] == len(SEEDS)
    published = {ALIASES.get(k, k): v
                 for k, v in case["tolerance"]["relative_tolerance_mean_of_5_seeds"].items()}
    assert dict(caps) == published
    for key, value in case["expected"].items():
        name = ALIASES.get(key, key)
        if name in expected:
            assert expected[name] == pytest.approx(value, rel=rel), key
    assert set(caps) <= set(expected)
