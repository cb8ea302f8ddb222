"""Batch (bulk) Poisson arrivals into one exponential server, M^X/M/1, against its closed form.

Cases: geometric batch sizes (mean 2.5) at rho = 0.7 and constant batches of 3 at rho = 0.6;
expected values from ``tests/theory.py:mx_m1`` (the batch as an M/G/1 super-customer plus the
length-biased position inside it). Method and tolerances as in ``tests/validation_support.py``:
the caps are those of an M/M/1 at the same rho whose "customers" are the batches (service rate
mu / E[X], so the a-priori spread grows as sqrt(E[X])), widened 1.5 times for the extra
variance of the sizes; fixed before the run.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
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
from tests.conftest import run

CUSTOMERS = 200_000  # stated run length in requests (make test runs SCALE of it)


@dataclass(frozen=True)
class BatchCase:
    id: str
    rho: float
    batch: dict[str, Any]
    ex: float
    ex2: float

    @property
    def rate(self) -> float:
        """Batch arrival rate (mu = 1)."""
        return self.rho / self.ex

    def scenario(self) -> simulator.Scenario:
        duration = vs.scaled(CUSTOMERS) / self.ex / self.rate
        interval = duration / vs.SAMPLES_PER_RUN
        return simulator.parse_scenario({
            "name": self.id, "duration": duration, "warmup": vs.WARMUP_FRACTION * duration,
            "drain": interval, "metrics": {"spans": True, "interval": interval},
            "workloads": {"clients": {"arrivals": {"process": "poisson", "rate": self.rate},
                                      "batch": self.batch, "target": "server"}},
            "components": {"server": {"kind": "service", "workers": 1,
                                      "service_time": {"dist": "exponential", "mean": 1.0}}},
        })

    @property
    def expected(self) -> dict[str, float]:
        m = th.mx_m1(self.rate, 1.0, self.ex, self.ex2)
        return {"mean_response_time": m["mean_response_time"], "mean_wait": m["mean_wait"],
                "L_time_avg_in_system": m["L"], "utilisation": m["utilisation"]}

    @property
    def caps(self) -> dict[str, float]:
        t = (1.0 - vs.WARMUP_FRACTION) * CUSTOMERS / self.ex / self.rate
        mm1 = vs.mm1_caps(self.rho, 1.0 / self.ex, t)
        return {"mean_response_time": 1.5 * mm1["mean_response_time"],
                "mean_wait": 1.5 * mm1["mean_wait"],
                "L_time_avg_in_system": 1.5 * mm1["L_time_avg_in_system"],
                "utilisation": mm1["utilisation"]}


def measure(results: Results) -> dict[str, vs.Estimate]:
    req, batch = vs.measured_requests(results)
    assert (req["status"] == "ok").all()
    n = len(results.requests)
    spans = results.spans
    start = vs.by_request(spans, "start", n)[req["request_id"].to_numpy()]
    return {
        "mean_response_time": vs.estimate(req["latency"].to_numpy(), batch),
        "mean_wait": vs.estimate(start - req["start"].to_numpy(), batch),
        "L_time_avg_in_system": vs.time_average(results, "system_time_total", ["server"]),
        "utilisation": vs.time_average(results, "busy_time_total", ["server"], per_worker=True),
    }


GEOMETRIC = BatchCase("MX-M-1-geometric2.5-rho0.7", 0.7, {"dist": "geometric", "mean": 2.5},
                      2.5, 2 * 2.5 ** 2 - 2.5)
CONSTANT = BatchCase("MX-M-1-constant3-rho0.6", 0.6, {"size": 3}, 3.0, 9.0)


@pytest.mark.slow
@pytest.mark.parametrize("case", [GEOMETRIC, CONSTANT], ids=lambda c: c.id)
def test_batch_poisson_into_mm1_matches_the_closed_form(case: BatchCase) -> None:
    est = vs.run_case(case.scenario(), measure)
    vs.assert_matches_theory(case.id, est, case.expected, case.caps)


def test_a_batch_arrives_at_one_instant_and_its_sizes_follow_the_law() -> None:
    spec = {"duration": 200, "workloads": {"w": {
                "arrivals": {"process": "poisson", "rate": 50},
                "batch": {"dist": "geometric", "mean": 2.5}, "target": "api"}},
            "components": {"api": {"kind": "service", "workers": 1000, "service_time": 0.001}}}
    r = run(spec).requests
    sizes = r.groupby("start").size().to_numpy()  # Poisson instants are distinct a.s.
    m = len(sizes)
    assert abs(m - 50 * 200) <= 4 * math.sqrt(50 * 200)
    p = 1 / 2.5
    for k in (1, 2, 3):
        prob = (1 - p) ** (k - 1) * p
        assert abs(int((sizes == k).sum()) - m * prob) <= 4 * math.sqrt(m * prob * (1 - prob))
    assert abs(sizes.mean() - 2.5) <= 4 * math.sqrt((1 - p) / p ** 2 / m)
    spec["workloads"]["w"]["batch"] = 3
    r = run(spec).requests
    assert (r.groupby("start").size() == 3).all()
    assert np.array_equal(r["request_id"], np.arange(len(r)))


@pytest.mark.parametrize(("batch", "arrivals", "message"), [
    ({"dist": "geometric", "size": 2}, None, "a geometric batch takes mean"),
    ({"mean": 2}, None, "a constant batch takes size"),
    (0, None, "greater than or equal to 1"),
    (2, {"process": "closed", "users": 3}, "batches need an open-loop arrival process"),
])
def test_bad_batches_are_located_errors(batch: Any, arrivals: Any, message: str) -> None:
    spec = {"duration": 5, "workloads": {"w": {
                "arrivals": arrivals or {"process": "poisson", "rate": 5}, "batch": batch,
                "target": "api"}},
            "components": {"api": {"kind": "service"}}}
    with pytest.raises(simulator.ScenarioError, match=message):
        simulator.parse_scenario(spec)
