"""Validation of single queues and a tandem network against queueing theory.

Cases: M/M/1, M/M/c, M/D/1 and M/G/1 (Pollaczek-Khinchine), M/M/1/K and an open tandem of
M/M/1 stations (Jackson), at the points of ``tests/data/reference/cases.json`` (with its run
lengths, 5 seeds and tolerances) and at further points whose expected values are derived from
the same formulas in ``tests/theory.py``. The method (warm-up, batch means, tolerances) is
described in ``tests/validation_support.py``. Time is in units of one mean service time.

The long runs are marked ``slow``; the quick tests check the measurement helpers exactly and
run one short M/M/1 validation.
"""

from __future__ import annotations

import math
import sys
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

# --------------------------------------------------------------------------------------------
# measurements
# --------------------------------------------------------------------------------------------


def measure_station(results: Results, component: str = "server") -> dict[str, vs.Estimate]:
    """Metrics of a single service fed directly by the workload.

    Per request created in the measured window: response time (ok requests), wait for a
    worker, whether it waited, whether it was rejected. Time averages (L, Lq, utilisation)
    come from the exact integral gauges, throughput from the accepted requests per unit time.
    """
    req, batch = vs.measured_requests(results)
    w = vs.Window.of(results)
    n = len(results.requests)
    spans = results.spans[results.spans["component"] == component]
    arrival = vs.by_request(spans, "arrival", n)
    start = vs.by_request(spans, "start", n)
    rid = req["request_id"].to_numpy()
    ok = (req["status"] == "ok").to_numpy()
    rejected = (req["status"] == "rejected").to_numpy()
    assert np.all(ok | rejected), "only ok and rejected requests are expected"
    assert np.array_equal(arrival[rid], req["start"].to_numpy()), "one hop, no delay before it"
    latency = req["latency"].to_numpy()[ok]
    wait = (start - arrival)[rid][ok]
    b_ok = batch[ok]
    accepted_times = req["start"].to_numpy()[ok]
    return {
        "mean_response_time": vs.estimate(latency, b_ok),
        "response_p50": vs.estimate(latency, b_ok, vs.quantile(0.50)),
        "response_p95": vs.estimate(latency, b_ok, vs.quantile(0.95)),
        "response_p99": vs.estimate(latency, b_ok, vs.quantile(0.99)),
        "mean_wait": vs.estimate(wait, b_ok),
        "wait_p99": vs.estimate(wait, b_ok, vs.quantile(0.99)),
        "P_wait_gt_0": vs.estimate(wait > 0, b_ok),
        "P_block": vs.estimate(rejected, batch),
        "throughput": vs.rate_estimate(accepted_times, w),
        "L_time_avg_in_system": vs.time_average(results, "system_time_total", [component]),
        "Lq_time_avg_waiting": vs.time_average(results, "queue_time_total", [component]),
        "utilisation": vs.time_average(results, "busy_time_total", [component], per_worker=True),
    }


def measure_tandem(results: Results, stations: list[str]) -> dict[str, vs.Estimate]:
    """Metrics of a tandem ``stations[0] -> stations[1] -> ...`` (asynchronous hand-over).

    Sojourn at a station = arrival at the next station - arrival at this one (the last: end -
    arrival); end to end = the request's latency; L of the network from the integral gauges.
    """
    req, batch = vs.measured_requests(results)
    assert (req["status"] == "ok").all()
    n = len(results.requests)
    rid = req["request_id"].to_numpy()
    spans = results.spans
    arrivals = [vs.by_request(spans[spans["component"] == s], "arrival", n)[rid]
                for s in stations]
    last_end = vs.by_request(spans[spans["component"] == stations[-1]], "end", n)[rid]
    latency = req["latency"].to_numpy()
    assert np.array_equal(arrivals[0], req["start"].to_numpy())
    out = {
        "mean_end_to_end_sojourn": vs.estimate(latency, batch),
        "end_to_end_p50": vs.estimate(latency, batch, vs.quantile(0.50)),
        "end_to_end_p95": vs.estimate(latency, batch, vs.quantile(0.95)),
        "end_to_end_p99": vs.estimate(latency, batch, vs.quantile(0.99)),
        "L_time_avg_in_network": vs.time_average(results, "system_time_total", stations),
    }
    ends = [*arrivals[1:], last_end]
    for i, (a, e) in enumerate(zip(arrivals, ends, strict=True), start=1):
        out[f"mean_sojourn_station{i}"] = vs.estimate(e - a, batch)
    return out


# --------------------------------------------------------------------------------------------
# cases
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StationCase:
    """One service with ``workers`` workers and an optional waiting room, Poisson arrivals."""

    id: str
    rate: float
    service_time: Any
    arrivals: int
    expected: dict[str, float]
    caps: dict[str, float]
    workers: int = 1
    queue_limit: int | None = None
    reference: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def scenario(self) -> simulator.Scenario:
        """The scenario of this case."""
        server: dict[str, Any] = {"kind": "service", "workers": self.workers,
                                  "service_time": self.service_time}
        if self.queue_limit is not None:
            server["queue_limit"] = self.queue_limit
        return vs.open_scenario(self.id, self.rate, self.arrivals, "server", {"server": server})


EXP1 = {"dist": "exponential", "mean": 1.0}


def measured_time(rate: float, arrivals: int) -> float:
    """Length of the measured window of a run of ``arrivals`` arrivals at ``rate``."""
    return (1.0 - vs.WARMUP_FRACTION) * arrivals / rate


def mm1_expected(lam: float, mu: float = 1.0) -> dict[str, float]:
    """Expected M/M/1 FCFS metrics under this suite's names."""
    m = th.mm1(lam, mu)
    out = {
        "mean_response_time": m["mean_response_time"],
        "mean_wait": m["mean_wait"],
        "L_time_avg_in_system": m["L"],
        "Lq_time_avg_waiting": m["Lq"],
        "P_wait_gt_0": m["p_wait"],
        "utilisation": m["utilisation"],
        "wait_p99": th.mm1_wait_quantile(lam, mu, 0.99),
    }
    for q in (50, 95, 99):
        out[f"response_p{q}"] = th.mm1_response_quantile(lam, mu, q / 100)
    return out


def mmc_expected(lam: float, c: int, mu: float = 1.0) -> dict[str, float]:
    """Expected M/M/c FCFS metrics under this suite's names."""
    m = th.mmc(lam, mu, c)
    out = {
        "mean_response_time": m["mean_response_time"],
        "mean_wait": m["mean_wait"],
        "L_time_avg_in_system": m["L"],
        "Lq_time_avg_waiting": m["Lq"],
        "P_wait_gt_0": m["p_wait"],
        "utilisation": m["utilisation"],
        "wait_p99": th.mmc_wait_quantile(lam, mu, c, 0.99),
    }
    for q in (50, 95, 99):
        out[f"response_p{q}"] = th.mmc_response_quantile(lam, mu, c, q / 100)
    return out


def mg1_expected(lam: float, mean_s: float, cv: float) -> dict[str, float]:
    """Expected M/G/1 FCFS means (Pollaczek-Khinchine) under this suite's names."""
    m = th.mg1_pk(lam, mean_s, cv)
    return {
        "mean_response_time": m["mean_response_time"],
        "mean_wait": m["mean_wait"],
        "L_time_avg_in_system": m["L"],
        "Lq_time_avg_waiting": m["Lq"],
        "P_wait_gt_0": m["p_wait"],
        "utilisation": m["utilisation"],
    }


def mm1k_expected(lam: float, K: int, mu: float = 1.0) -> dict[str, float]:  # noqa: N803
    """Expected M/M/1/K metrics under this suite's names (response times of accepted requests)."""
    m = th.mm1k(lam, mu, K)
    return {
        "P_block": m["p_block"],
        "throughput": m["throughput"],
        "L_time_avg_in_system": m["L"],
        "Lq_time_avg_waiting": m["Lq"],
        "mean_response_time_accepted": m["mean_response_time_accepted"],
        "mean_wait": m["mean_wait_accepted"],
        "P_wait_gt_0": m["p_wait_accepted"],
        "utilisation": m["utilisation"],
    }


# Tolerances of the reference cases, copied from cases.json (relative_tolerance_mean_of_5_seeds,
# renamed by vs.ALIASES); test_reference_cases_are_the_published_ones checks the copy.
REFERENCE_STATION_CASES = [
    StationCase(
        "MM1-rho0.5", 0.5, EXP1, 200_000, mm1_expected(0.5),
        {"mean_response_time": 0.015, "mean_wait": 0.03, "L_time_avg_in_system": 0.015,
         "Lq_time_avg_waiting": 0.03, "P_wait_gt_0": 0.01, "utilisation": 0.01,
         "response_p50": 0.015, "response_p95": 0.02, "response_p99": 0.03, "wait_p99": 0.04},
        reference=True,
    ),
    StationCase(
        "MM1-rho0.8", 0.8, EXP1, 200_000, mm1_expected(0.8),
        {"mean_response_time": 0.05, "mean_wait": 0.06, "L_time_avg_in_system": 0.05,
         "Lq_time_avg_waiting": 0.06, "P_wait_gt_0": 0.01, "utilisation": 0.01,
         "response_p50": 0.03, "response_p95": 0.06, "response_p99": 0.08, "wait_p99": 0.08},
        reference=True,
    ),
    StationCase(
        "MMc-c4-rho0.8", 3.2, EXP1, 200_000, mmc_expected(3.2, 4),
        {"P_wait_gt_0": 0.02, "mean_wait": 0.08, "mean_response_time": 0.03,
         "Lq_time_avg_waiting": 0.08, "L_time_avg_in_system": 0.04, "utilisation": 0.01,
         "response_p50": 0.03, "response_p95": 0.04, "response_p99": 0.06, "wait_p99": 0.1},
        workers=4, reference=True,
    ),
    StationCase(
        "MD1-rho0.5", 0.5, {"dist": "constant", "value": 1.0}, 200_000,
        mg1_expected(0.5, 1.0, 0.0),
        {"mean_wait": 0.02, "mean_response_time": 0.01, "Lq_time_avg_waiting": 0.025,
         "L_time_avg_in_system": 0.01, "P_wait_gt_0": 0.01, "utilisation": 0.01},
        reference=True,
    ),
    StationCase(
        "MG1-lognormal-cv0.5-rho0.8", 0.8, {"dist": "lognormal", "mean": 1.0, "cv": 0.5},
        200_000, mg1_expected(0.8, 1.0, 0.5),
        {"mean_wait": 0.04, "mean_response_time": 0.025, "Lq_time_avg_waiting": 0.04,
         "L_time_avg_in_system": 0.03, "P_wait_gt_0": 0.01, "utilisation": 0.01},
        reference=True,
    ),
    StationCase(
        "MM1K-K10-rho0.9", 0.9, EXP1, 200_000, mm1k_expected(0.9, 10),
        {"P_block": 0.06, "throughput": 0.01, "L_time_avg_in_system": 0.02,
         "mean_response_time_accepted": 0.02, "utilisation": 0.01,
         "Lq_time_avg_waiting": 0.025},
        queue_limit=9, reference=True,  # K = 10 in system: 1 in service + 9 waiting
    ),
]

# Further points, expected values from the same formulas. Caps: about twice an a-priori four
# standard errors (vs.mm1_caps for M/M/1; the reference tolerances of the same model, scaled
# by run length and relaxation time, for the others); the seeds' own spread decides below that.
DERIVED_STATION_CASES = [
    StationCase("MM1-rho0.3", 0.3, EXP1, 200_000, mm1_expected(0.3),
                vs.mm1_caps(0.3, 1.0, measured_time(0.3, 200_000))),
    StationCase("MM1-rho0.9", 0.9, EXP1, 500_000, mm1_expected(0.9),
                vs.mm1_caps(0.9, 1.0, measured_time(0.9, 500_000))),
    # M/M/2 at 0.6: relaxation time 1/(c mu (1 - sqrt(rho))^2) = 10, half that of the M/M/4
    # reference at 0.8 (22), same run length: the M/M/4 tolerances are about 1.5 times 4 SE.
    StationCase(
        "MMc-c2-rho0.6", 1.2, EXP1, 200_000, mmc_expected(1.2, 2),
        {"P_wait_gt_0": 0.02, "mean_wait": 0.08, "mean_response_time": 0.03,
         "Lq_time_avg_waiting": 0.08, "L_time_avg_in_system": 0.04, "utilisation": 0.01,
         "response_p50": 0.03, "response_p95": 0.04, "response_p99": 0.06, "wait_p99": 0.1},
        workers=2,
    ),
    # M/M/8 at 0.9: relaxation time 47 (twice the M/M/4 reference's); 500000 arrivals give
    # 62500 time units (M/M/4: 56250), so about 1.4 times the M/M/4 tolerances.
    StationCase(
        "MMc-c8-rho0.9", 7.2, EXP1, 500_000, mmc_expected(7.2, 8),
        {"P_wait_gt_0": 0.03, "mean_wait": 0.12, "mean_response_time": 0.045,
         "Lq_time_avg_waiting": 0.12, "L_time_avg_in_system": 0.06, "utilisation": 0.01,
         "response_p50": 0.045, "response_p95": 0.06, "response_p99": 0.09, "wait_p99": 0.15},
        workers=8,
    ),
    # M/G/1, gamma service with cv 2 at 0.7: diffusion scaling of the M/M/1 variance with
    # c_a^2 + c_s^2 = 5 instead of 2 gives a relative SD of a run of ~0.016 over 643000 time
    # units, four SE of the mean of 5 seeds ~0.03; caps twice that.
    StationCase(
        "MG1-gamma-cv2-rho0.7", 0.7, {"dist": "gamma", "mean": 1.0, "cv": 2.0}, 500_000,
        mg1_expected(0.7, 1.0, 2.0),
        {"mean_wait": 0.07, "mean_response_time": 0.06, "Lq_time_avg_waiting": 0.07,
         "L_time_avg_in_system": 0.06, "P_wait_gt_0": 0.015, "utilisation": 0.015},
    ),
    # M/M/1/K, K = 5 at offered load 1.3 (overload; a quarter of the arrivals are lost): a
    # small buffer relaxes fast and P_block ~ 0.29 is no rare event, so the K = 10 reference
    # tolerances are ample; P_block's is halved accordingly.
    StationCase(
        "MM1K-K5-load1.3", 1.3, EXP1, 200_000, mm1k_expected(1.3, 5),
        {"P_block": 0.03, "throughput": 0.01, "L_time_avg_in_system": 0.02,
         "mean_response_time_accepted": 0.02, "mean_wait": 0.025, "P_wait_gt_0": 0.01,
         "utilisation": 0.01, "Lq_time_avg_waiting": 0.025},
        queue_limit=4,
    ),
]


def station_estimates(case: StationCase) -> dict[str, list[vs.Estimate]]:
    """Run a station case over the seeds."""
    est = vs.run_case(case.scenario(), measure_station)
    est["mean_response_time_accepted"] = est["mean_response_time"]
    return est


@pytest.mark.slow
@pytest.mark.parametrize(
    "case", REFERENCE_STATION_CASES + DERIVED_STATION_CASES, ids=lambda c: c.id
)
def test_station_matches_theory(case: StationCase) -> None:
    vs.assert_matches_theory(case.id, station_estimates(case), case.expected, case.caps)


# ---- tandem (Jackson) --------------------------------------------------------------------


@dataclass(frozen=True)
class TandemCase:
    """Poisson arrivals at ``rate`` through M/M/1 stations with the given service rates."""

    id: str
    rate: float
    mus: tuple[float, ...]
    arrivals: int
    caps: dict[str, float]

    @property
    def stations(self) -> list[str]:
        """Station names, in order."""
        return [f"s{i}" for i in range(1, len(self.mus) + 1)]

    def scenario(self) -> simulator.Scenario:
        """Each station releases its worker, then hands the request to the next."""
        components: dict[str, Any] = {}
        names = self.stations
        for i, (name, mu) in enumerate(zip(names, self.mus, strict=True)):
            station: dict[str, Any] = {
                "kind": "service", "workers": 1,
                "service_time": {"dist": "exponential", "mean": 1.0 / mu},
            }
            if i + 1 < len(names):  # (the last station has no call to hold its worker over)
                station.update(hold_worker=False, calls={"read": [names[i + 1]]})
            components[name] = station
        return vs.open_scenario(self.id, self.rate, self.arrivals, names[0], components)

    @property
    def expected(self) -> dict[str, float]:
        """Expected values from the product form and the hypoexponential sojourn."""
        m = th.tandem_mm1(self.rate, list(self.mus))
        out = {
            "mean_end_to_end_sojourn": m["mean_end_to_end"],
            "L_time_avg_in_network": m["L_network"],
        }
        for i in range(1, len(self.mus) + 1):
            out[f"mean_sojourn_station{i}"] = m[f"mean_sojourn_station{i}"]
        for q in (50, 95, 99):
            out[f"end_to_end_p{q}"] = th.tandem_mm1_quantile(self.rate, list(self.mus), q / 100)
        return out


def _tandem_derived_caps() -> dict[str, float]:
    # station 1: M/M/1 at 0.7, station 2: M/M/1 at 0.5 with mu = 1.4 (time in its own units)
    t = measured_time(0.7, 200_000)
    first = vs.mm1_caps(0.7, 1.0, t)
    second = vs.mm1_caps(0.5, 1.4, t)
    return {
        "mean_end_to_end_sojourn": first["mean_response_time"],
        "mean_sojourn_station1": first["mean_response_time"],
        "mean_sojourn_station2": second["mean_response_time"],
        "L_time_avg_in_network": first["L_time_avg_in_system"],
        "end_to_end_p50": first["response_p50"],
        "end_to_end_p95": first["response_p95"],
        "end_to_end_p99": first["response_p99"],
    }


REFERENCE_TANDEM = TandemCase(
    "JACKSON-tandem3", 1.0, (2.0, 1.5, 1.25), 200_000,
    # cases.json tolerances
    {"mean_end_to_end_sojourn": 0.03, "mean_sojourn_station1": 0.015,
     "mean_sojourn_station2": 0.03, "mean_sojourn_station3": 0.04,
     "L_time_avg_in_network": 0.03, "end_to_end_p50": 0.025, "end_to_end_p95": 0.04,
     "end_to_end_p99": 0.08},
)
# the bottleneck first: the second station is fed by the first's departures (Burke)
DERIVED_TANDEM = TandemCase("tandem2-bottleneck-first", 0.7, (1.0, 1.4), 200_000,
                            _tandem_derived_caps())


@pytest.mark.slow
@pytest.mark.parametrize("case", [REFERENCE_TANDEM, DERIVED_TANDEM], ids=lambda c: c.id)
def test_tandem_matches_jackson(case: TandemCase) -> None:
    est = vs.run_case(case.scenario(), lambda r: measure_tandem(r, case.stations))
    vs.assert_matches_theory(case.id, est, case.expected, case.caps)


# --------------------------------------------------------------------------------------------
# quick tests
# --------------------------------------------------------------------------------------------


def test_reference_cases_are_the_published_ones() -> None:
    cases = vs.reference_cases()
    for case in REFERENCE_STATION_CASES:
        vs.check_against_reference(cases[case.id], case.arrivals, case.expected, case.caps)
    t = REFERENCE_TANDEM
    vs.check_against_reference(cases[t.id], t.arrivals, t.expected, t.caps)
    assert [s["mu"] for s in cases[t.id]["params"]["stations"]] == list(t.mus)
    assert cases[t.id]["params"]["lambda"] == t.rate
    for case in REFERENCE_STATION_CASES:
        params = cases[case.id]["params"]
        assert params["servers"] == case.workers
        lam = params["lambda"]
        assert case.rate == lam
        if "K_max_in_system" in params:
            assert case.queue_limit == params["K_max_in_system"] - case.workers
        else:
            assert case.queue_limit is None


def test_measurements_are_exact_on_a_small_run() -> None:
    """Gauge integrals equal the areas computed from the spans; P_block and waits add up."""
    case = StationCase("small-MM2-2", 1.8, EXP1, 4000, {}, {}, workers=2, queue_limit=2)
    results = simulator.simulate(case.scenario(), seed=3)
    w = vs.Window.of(results)
    sp = results.spans
    accepted = sp[sp["status"] != "rejected"]
    a = accepted["arrival"].to_numpy()
    s = accepted["start"].to_numpy()
    e = accepted["end"].to_numpy()

    def area(lo: np.ndarray, hi: np.ndarray, t0: float, t1: float) -> float:
        return float(np.sum(np.clip(np.minimum(hi, t1) - np.maximum(lo, t0), 0.0, None)))

    edges = w.edges
    for metric, lo, hi, scale in [
        ("system_time_total", a, e, 1.0),
        ("queue_time_total", a, s, 1.0),
        ("busy_time_total", s, e, case.workers),
    ]:
        est = vs.time_average(results, metric, ["server"], per_worker=scale > 1)
        for b in range(w.batches):
            t0, t1 = edges[b], edges[b + 1]
            assert est.batches[b] == pytest.approx(area(lo, hi, t0, t1) / (t1 - t0) / scale,
                                                   rel=1e-9, abs=1e-12)
        whole = area(lo, hi, w.t0, w.t1) / (w.t1 - w.t0) / scale
        assert est.value == pytest.approx(whole, rel=1e-9)

    # an arrival is rejected exactly when it finds K = workers + queue_limit in the system
    found = vs.number_found(sp)
    rejected = (sp["status"] == "rejected").to_numpy()
    assert rejected.any()
    k = case.workers + (case.queue_limit or 0)
    assert np.array_equal(rejected, found >= k)
    assert found.max() == k
    # and it waits exactly when it finds every worker busy
    waited = (sp["start"] > sp["arrival"]).to_numpy()
    assert np.array_equal(waited[~rejected], found[~rejected] >= case.workers)

    # batch estimates of a mean recombine into the whole-window mean (near-equal counts)
    m = measure_station(results)
    req, batch = vs.measured_requests(results)
    counts = np.bincount(batch[(req["status"] == "ok").to_numpy()], minlength=w.batches)
    mean = m["mean_response_time"]
    assert np.dot(mean.batches, counts) / counts.sum() == pytest.approx(mean.value, rel=1e-12)
    assert m["throughput"].value * (w.t1 - w.t0) == pytest.approx(counts.sum(), rel=1e-12)


def test_mm1_short_run_matches_theory() -> None:
    """A tenth of the reference run length: caps of MM1-rho0.5 widened by sqrt(10)."""
    ref = REFERENCE_STATION_CASES[0]
    caps = {k: v * math.sqrt(10) for k, v in ref.caps.items()}
    case = StationCase("MM1-rho0.5-short", 0.5, EXP1, 20_000, ref.expected, caps)
    vs.assert_matches_theory(case.id, station_estimates(case), case.expected, case.caps)
