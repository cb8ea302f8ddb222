"""``scenarios/priorities.yaml``: critical traffic keeps its SLO under an overload spike with
the priority discipline, and misses it with FIFO.

The SLO is the scenario's header's: checkout (priority 0) p99 below 100 ms over the run. With
the priority discipline the spike-time checkout latency is also a closed form: every worker
is busy with batch work throughout the spike (600/s of batch alone exceeds the 400/s capacity),
so a checkout waits for as many worker completions as there are checkouts ahead of it, plus
one; completions come at 4 x 100/s whatever class is served, which makes the checkout queue an
M/M/1 with lambda = 100/s, mu = 400/s, whose sojourn time W is exponential at mu - lambda =
300/s; the latency is W + S, S exponential at 100/s (mean 10 ms):
P(T > t) = (300 e^(-100 t) - 100 e^(-300 t)) / 200, p99 = 50.1 ms.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize

import simulator

PATH = Path(__file__).resolve().parents[1] / "scenarios" / "priorities.yaml"
SLO_P99 = 0.100  # the header's SLO for checkout, seconds
FIFO = simulator.load_scenario(PATH).variants["fifo"][0]  # the scenario's fifo variant
SPIKE = (21.0, 35.0)  # the spike (20 s to 35 s) less its first second, while the backlog forms


@functools.cache
def requests(*overrides: str) -> pd.DataFrame:
    return simulator.simulate(simulator.load_scenario(PATH, list(overrides))).measured_requests()


def checkout_p99(req: pd.DataFrame, during: tuple[float, float] | None = None) -> float:
    ok = req[(req["workload"] == "checkout") & (req["status"] == "ok")]
    if during is not None:
        ok = ok[(ok["start"] >= during[0]) & (ok["start"] < during[1])]
    return float(np.quantile(ok["latency"], 0.99))


def test_priorities_critical_traffic_keeps_its_slo_and_fifo_does_not() -> None:
    prio, fifo = requests(), requests(FIFO)
    for req in (prio, fifo):  # the same overload reaches both: batch work is shed in both
        batch = req[req["workload"] == "batch"]
        assert (batch["status"] != "ok").mean() > 0.3
        checkout = req[req["workload"] == "checkout"]
        # no checkout fails (one may still be in flight when the run ends)
        assert set(checkout["status"].astype(str)) <= {"ok", "in_flight"}
    assert checkout_p99(prio) < SLO_P99
    assert checkout_p99(prio, SPIKE) < SLO_P99
    assert checkout_p99(fifo) > SLO_P99
    assert checkout_p99(fifo, SPIKE) > 5 * SLO_P99  # behind the batch backlog, near its 1 s


def test_priorities_spike_latency_of_the_critical_class_is_the_closed_form() -> None:
    """About 1400 checkouts in the window: the empirical p99's standard error is
    sqrt(0.01 x 0.99 / 1400) / f(p99) ~ 2.7 ms (the density there is ~1 per second), 5% of
    50 ms; allow 20% (about four standard errors)."""
    def tail(t: float) -> float:
        return (300 * math.exp(-100 * t) - 100 * math.exp(-300 * t)) / 200 - 0.01

    p99 = optimize.brentq(tail, 0.001, 1.0)
    assert abs(p99 - 0.0501) < 0.0005
    assert abs(checkout_p99(requests(), SPIKE) - p99) / p99 < 0.20
