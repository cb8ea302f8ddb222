"""Validation of queue disciplines and client patience against queueing theory.

Cases (time in units of one mean service time, one worker):

* M/G/1 processor sharing: ``E[T | x] = x / (1 - rho)`` for several sizes ``x`` (insensitive
  to the size distribution), and the mean response time of exponential requests.
* M/M/1 with two priority classes: Cobham's formula (non-preemptive) and the preemptive-resume
  formula, per class (``theory.mg1_priority``).
* M/M/1+M (exponential patience): the share of arrivals that renege and the mean number in
  system (``theory.mm1_abandonment``).

The method (warm-up, batch means, ``Z = 4`` standard errors, caps fixed in advance and widened
by ``1 / sqrt(SCALE)``) is ``tests/validation_support.py``'s. Each case states its run length
(arrivals over all classes, at ``SCALE = 1``) and derives its caps a priori from it.
"""

from __future__ import annotations

import math
import sys
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

EXP1 = {"dist": "exponential", "mean": 1.0}


def scenario(name: str, arrivals: int, workloads: dict[str, dict[str, Any]],
             server: dict[str, Any]) -> simulator.Scenario:
    """Poisson workloads (``rate`` in each) into one ``server``; ``arrivals`` expected over
    all of them at the stated run length (``arrivals * SCALE`` simulated)."""
    total = sum(w["rate"] for w in workloads.values())
    duration = vs.scaled(arrivals) / total
    interval = duration / vs.SAMPLES_PER_RUN
    return simulator.parse_scenario({
        "name": name, "duration": duration, "warmup": vs.WARMUP_FRACTION * duration,
        "drain": 10 * interval, "metrics": {"spans": True, "interval": interval},
        "workloads": {n: {"arrivals": {"process": "poisson", "rate": w.pop("rate")},
                          "target": "server", **w} for n, w in workloads.items()},
        "components": {"server": {"kind": "service", "workers": 1, **server}},
    })


def per_workload(results: Results, status: str = "ok") -> dict[str, vs.Estimate]:
    """Mean response time of the ``status`` requests of each workload (measured window)."""
    req, batch = vs.measured_requests(results)
    out = {}
    for name in req["workload"].cat.categories:
        mine = (req["workload"] == name).to_numpy() & (req["status"] == status).to_numpy()
        out[f"T_{name}"] = vs.estimate(req["latency"].to_numpy()[mine], batch[mine])
    return out


def measured_time(arrivals: int, total_rate: float) -> float:
    """Length of the measured window at the stated run length."""
    return (1.0 - vs.WARMUP_FRACTION) * arrivals / total_rate


# ---- processor sharing --------------------------------------------------------------------

PS_ARRIVALS = 100_000
PS_MAIN = 0.5  # exponential requests of mean 1
PS_PROBES = {"x_quarter": 0.25, "x_one": 1.0, "x_four": 4.0}  # constant sizes
PS_PROBE_RATE = 0.03


@pytest.mark.slow
def test_processor_sharing_slowdown_is_the_same_for_every_size() -> None:
    rho = PS_MAIN + PS_PROBE_RATE * sum(PS_PROBES.values())
    total = PS_MAIN + PS_PROBE_RATE * len(PS_PROBES)
    workloads: dict[str, dict[str, Any]] = {"main": {"rate": PS_MAIN, "work": EXP1}}
    for name, x in PS_PROBES.items():
        workloads[name] = {"rate": PS_PROBE_RATE, "work": x}
    sc = scenario("MG1-PS", PS_ARRIVALS, workloads,
                  {"service_time": 1.0, "queue": {"discipline": "processor_sharing"}})
    expected = {"T_main": th.mg1_processor_sharing(rho, 1.0)}  # E[x / (1 - rho)], E[x] = 1
    expected |= {f"T_{n}": th.mg1_processor_sharing(rho, x) for n, x in PS_PROBES.items()}
    # Caps, a priori: the exponential class has about an M/M/1's relative spread at this load
    # (mm1_caps); a probe class has n = rate x measured time x seeds requests, each a
    # response time whose coefficient of variation under PS is below 1 for x >= E[S] and
    # grows as x shrinks (below 1.5 at x = E[S] / 4 here: a short request mostly sees the
    # backlog it arrives into), so four standard errors are at most 4 x 1.5 / sqrt(n); twice
    # that is the cap.
    t = measured_time(PS_ARRIVALS, total)
    n_probe = PS_PROBE_RATE * t * len(vs.SEEDS)
    caps = {"T_main": vs.mm1_caps(rho, 1.0, t)["mean_response_time"]}
    caps |= {f"T_{n}": 2 * vs.Z * 1.5 / math.sqrt(n_probe) for n in PS_PROBES}
    estimates = vs.run_case(sc, per_workload)
    vs.assert_matches_theory("MG1-PS", estimates, expected, caps)


# ---- priorities ---------------------------------------------------------------------------

PRIO_ARRIVALS = 100_000
PRIO_RATES = (0.3, 0.4)  # class 0 (important), class 1; exponential service of mean 1


@pytest.mark.slow
@pytest.mark.parametrize("preemptive", [False, True], ids=["cobham", "preemptive_resume"])
def test_two_priority_classes_match_the_closed_forms(preemptive: bool) -> None:
    lam0, lam1 = PRIO_RATES
    sc = scenario("MM1-priority", PRIO_ARRIVALS,
                  {"high": {"rate": lam0, "priority": 0}, "low": {"rate": lam1, "priority": 1}},
                  {"service_time": EXP1, "queue": {"discipline": "priority",
                                                    "preemptive": preemptive}})
    t_high, t_low = th.mg1_priority(PRIO_RATES, (1.0, 1.0), (2.0, 2.0), preemptive)
    expected = {"T_high": t_high, "T_low": t_low}
    # Caps, a priori: the whole queue is an M/M/1 at rho = 0.7 (work-conserving, exponential
    # sizes: the number in system is that of FIFO), so mm1_caps' base holds for the mean over
    # all requests. The important class sees a lighter queue (rho_0 = 0.3 preemptive, a
    # residual-work delay non-preemptive) and is less noisy; the other carries the busy
    # periods' variability: with 4/7 of the requests and a mean wait up to 2.2 times the
    # overall one, its relative spread is at most sqrt(7/4) x 2.2 / (1 + ...) ~ 2 times the
    # base. Caps: the base for the important class, twice it for the other.
    t = measured_time(PRIO_ARRIVALS, sum(PRIO_RATES))
    base = vs.mm1_caps(sum(PRIO_RATES), 1.0, t)["mean_response_time"]
    caps = {"T_high": base, "T_low": 2 * base}
    estimates = vs.run_case(sc, per_workload)
    vs.assert_matches_theory(f"MM1-priority-{'preemptive' if preemptive else 'cobham'}",
                             estimates, expected, caps)


# ---- reneging -----------------------------------------------------------------------------

RENEGE_ARRIVALS = 100_000
RENEGE = {"lam": 1.0, "mu": 1.0, "theta": 0.5}  # rho = 1: stable only thanks to reneging


def measure_reneging(results: Results) -> dict[str, vs.Estimate]:
    req, batch = vs.measured_requests(results)
    status = req["status"].astype(str).to_numpy()
    assert set(status) <= {"ok", "reneged"}
    return {"p_abandon": vs.estimate(status == "reneged", batch),
            "L": vs.time_average(results, "system_time_total", ["server"])}


@pytest.mark.slow
def test_mm1_with_exponential_patience_abandons_as_palm_queue() -> None:
    lam, mu, theta = RENEGE["lam"], RENEGE["mu"], RENEGE["theta"]
    sc = scenario("MM1+M", RENEGE_ARRIVALS,
                  {"clients": {"rate": lam, "patience": {"dist": "exponential",
                                                         "mean": 1 / theta}}},
                  {"service_time": {"dist": "exponential", "mean": 1 / mu}})
    theory = th.mm1_abandonment(lam, mu, theta)
    expected = {"p_abandon": theory["p_abandon"], "L": theory["L"]}
    # Caps, a priori: abandonment makes the queue relax fast (death rate mu + (n - 1) theta,
    # relaxation time of order 1 / theta = 2 mean service times), so the indicator "reneged"
    # has a variance inflation of at most 2 x (1 + 2 x relaxation) ~ 10 over independent
    # draws: four standard errors are 4 sqrt(10 p (1 - p) / n) / p relative, with n the
    # measured arrivals over the seeds; the same inflation bounds L's (Poisson-like, variance
    # about L). Twice that is the cap.
    n = lam * measured_time(RENEGE_ARRIVALS, lam) * len(vs.SEEDS)
    p, ell = theory["p_abandon"], theory["L"]
    caps = {"p_abandon": 2 * vs.Z * math.sqrt(10 * (1 - p) / (p * n)),
            "L": 2 * vs.Z * math.sqrt(10 * ell / n) / ell}
    estimates = vs.run_case(sc, measure_reneging)
    vs.assert_matches_theory("MM1+M", estimates, expected, caps)


# ---- the closed forms themselves ----------------------------------------------------------


def test_priority_formulas_reduce_to_known_cases() -> None:
    # one class: Pollaczek-Khinchine for M/M/1 either way
    for preemptive in (False, True):
        assert th.mg1_priority([0.6], [1.0], [2.0], preemptive)[0] == pytest.approx(
            th.mm1(0.6, 1.0)["mean_response_time"])
    # preemptive: the important class does not see the other at all
    assert th.mg1_priority([0.3, 0.4], [1, 1], [2, 2], True)[0] == pytest.approx(
        th.mm1(0.3, 1.0)["mean_response_time"])
    # Kleinrock's conservation law: with equal exponential sizes the rate-weighted mean
    # response is FIFO's, with or without preemption
    for preemptive in (False, True):
        t = th.mg1_priority([0.3, 0.4], [1, 1], [2, 2], preemptive)
        assert (0.3 * t[0] + 0.4 * t[1]) / 0.7 == pytest.approx(
            th.mm1(0.7, 1.0)["mean_response_time"])


def test_abandonment_formula_reduces_to_known_cases() -> None:
    # theta = mu: death rate n mu, the M/M/inf's Poisson(lam / mu) number in system
    a = 1.3
    out = th.mm1_abandonment(a, 1.0, 1.0)
    assert out["L"] == pytest.approx(a)
    assert out["utilisation"] == pytest.approx(1 - math.exp(-a))
    # almost no impatience below saturation: M/M/1
    slow = th.mm1_abandonment(0.5, 1.0, 1e-6)
    assert slow["L"] == pytest.approx(th.mm1(0.5, 1.0)["L"], rel=1e-4)
    assert slow["p_abandon"] == pytest.approx(0.0, abs=1e-5)
    assert np.isfinite(th.mm1_abandonment(3.0, 1.0, 0.1)["L"])
