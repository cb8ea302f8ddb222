"""Validation of open Jackson networks with feedback (``reenter`` steps) against the product form.

Two topologies, exponential service, one worker per station, Poisson arrivals:

* ``feedback1``: one station; after each service the request re-enters it with probability
  q. The number in the system is then exactly the birth-death process of an M/M/1 with
  arrival rate lambda and service rate mu (1 - q), which fixes the a-priori caps.
* ``feedback-tandem2``: A -> B, and after B the request re-enters A with probability q
  (visits 1 / (1 - q) to each station).
* ``feedback-split2``: after A the request goes on to B with probability p (a probabilistic
  call step), else leaves; after B it re-enters A with probability q.

Expected values come from ``tests/theory.py:jackson_open`` (traffic equations, product form,
Little's law); the method and tolerances are those of ``tests/validation_support.py`` (5 seeds,
batch means, caps fixed before the run and widened by 1/sqrt(SCALE)). The re-entry bound
(``max_reentries: 60``) truncates the geometric number of visits at q^60 < 1e-23: nothing.
"""

from __future__ import annotations

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

ARRIVALS = 200_000  # stated run length (make test runs SCALE of it)
BOUND = 60


def station(mu: float, calls: list[Any] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"kind": "service", "workers": 1, "hold_worker": False,
                            "service_time": {"dist": "exponential", "mean": 1.0 / mu}}
    if calls:
        spec["calls"] = {"*": calls}
    return spec


def reenter(name: str, q: float) -> dict[str, Any]:
    return {"reenter": name, "probability": q, "max_reentries": BOUND}


@dataclass(frozen=True)
class JacksonCase:
    """A network: its stations (in order), components, and the routing matrix of the theory."""

    id: str
    rate: float
    mus: tuple[float, ...]
    routing: tuple[tuple[float, ...], ...]
    components: dict[str, Any]
    caps: dict[str, float]

    @property
    def stations(self) -> list[str]:
        return list(self.components)

    def scenario(self) -> simulator.Scenario:
        return vs.open_scenario(self.id, self.rate, ARRIVALS, self.stations[0], self.components)

    @property
    def expected(self) -> dict[str, float]:
        external = [self.rate] + [0.0] * (len(self.mus) - 1)
        m = th.jackson_open(external, self.mus, self.routing)
        out = {"mean_response_time": m["mean_response_time"], "L_network": m["L_network"]}
        for i in range(1, len(self.mus) + 1):
            out[f"utilisation_station{i}"] = m[f"utilisation_station{i}"]
            out[f"L_station{i}"] = m[f"L_station{i}"]
            out[f"visits_station{i}"] = m[f"visits_station{i}"]
        return out

    def measure(self, results: Results) -> dict[str, vs.Estimate]:
        req, batch = vs.measured_requests(results)
        assert (req["status"] == "ok").all()
        latency = req["latency"].to_numpy()
        spans = results.spans
        n = len(results.requests)
        out = {"mean_response_time": vs.estimate(latency, batch),
               "L_network": vs.time_average(results, "system_time_total", self.stations)}
        rid = req["request_id"].to_numpy()
        for i, name in enumerate(self.stations, start=1):
            out[f"utilisation_station{i}"] = vs.time_average(results, "busy_time_total", [name],
                                                             per_worker=True)
            out[f"L_station{i}"] = vs.time_average(results, "system_time_total", [name])
            ids = spans.loc[spans["component"] == name, "request_id"].to_numpy()
            visits = np.bincount(ids, minlength=n)[rid].astype(float)
            out[f"visits_station{i}"] = vs.estimate(visits, batch)
        return out


def _caps(rho: float, mu_eff: float, rate: float, widen: float) -> dict[str, float]:
    """Caps from the M/M/1 a-priori spread of the bottleneck (rho, relaxing at ``mu_eff``),
    times ``widen`` for a network that is not one birth-death process."""
    t = (1.0 - vs.WARMUP_FRACTION) * ARRIVALS / rate
    mm1 = vs.mm1_caps(rho, mu_eff, t)
    return {"mean_response_time": widen * mm1["mean_response_time"],
            "L_network": widen * mm1["L_time_avg_in_system"],
            "utilisation": mm1["utilisation"], "L_station": widen * mm1["L_time_avg_in_system"],
            "visits": 0.01}


def _per_station(base: dict[str, float], n: int) -> dict[str, float]:
    out = {"mean_response_time": base["mean_response_time"], "L_network": base["L_network"]}
    for i in range(1, n + 1):
        out[f"utilisation_station{i}"] = base["utilisation"]
        out[f"L_station{i}"] = base["L_station"]
        out[f"visits_station{i}"] = base["visits"]
    return out


Q1, LAM1 = 0.4, 0.42  # rho = 0.42 / (1 * 0.6) = 0.7
FEEDBACK1 = JacksonCase(
    "feedback1", LAM1, (1.0,), ((Q1,),),
    {"s": station(1.0, [reenter("s", Q1)])},
    _per_station(_caps(0.7, 1.0 - Q1, LAM1, 1.0), 1))

Q2, LAM2 = 0.3, 0.49  # visits 1/0.7: rho_A = 0.7, rho_B = 0.5
FEEDBACK_TANDEM = JacksonCase(
    "feedback-tandem2", LAM2, (1.0, 1.4), ((0.0, 1.0), (Q2, 0.0)),
    {"a": station(1.0, ["b"]), "b": station(1.4, [reenter("a", Q2)])},
    _per_station(_caps(0.7, 1.0 - Q2, LAM2, 1.5), 2))


P3, Q3, LAM3 = 0.6, 0.25, 0.595  # lambda_A = 0.595 / (1 - 0.6 * 0.25) = 0.7, lambda_B = 0.42
FEEDBACK_SPLIT = JacksonCase(
    "feedback-split2", LAM3, (1.0, 1.2), ((0.0, P3), (Q3, 0.0)),
    {"a": station(1.0, [{"call": "b", "probability": P3}]),
     "b": station(1.2, [reenter("a", Q3)])},
    _per_station(_caps(0.7, 1.0 - P3 * Q3, LAM3, 1.5), 2))


@pytest.mark.slow
@pytest.mark.parametrize("case", [FEEDBACK1, FEEDBACK_TANDEM, FEEDBACK_SPLIT],
                         ids=lambda c: c.id)
def test_feedback_network_matches_the_product_form(case: JacksonCase) -> None:
    est = vs.run_case(case.scenario(), case.measure)
    vs.assert_matches_theory(case.id, est, case.expected, case.caps)


def test_the_theory_helper_reduces_to_known_cases() -> None:
    """jackson_open: a tandem without feedback is tandem_mm1; one station with feedback q is
    the M/M/1 with service rate mu (1 - q)."""
    tandem = th.tandem_mm1(0.5, [1.0, 2.0])
    net = th.jackson_open([0.5, 0.0], [1.0, 2.0], [[0.0, 1.0], [0.0, 0.0]])
    assert net["mean_response_time"] == pytest.approx(tandem["mean_end_to_end"])
    one = th.jackson_open([0.42], [1.0], [[0.4]])
    assert one["mean_response_time"] == pytest.approx(th.mm1(0.42, 0.6)["mean_response_time"])
    assert one["visits_station1"] == pytest.approx(1 / 0.6)
