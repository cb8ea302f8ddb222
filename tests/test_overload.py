"""scenarios/overload.yaml: a 2x spike, and which queueing and admission choices keep goodput.

Goodput is the requests created in a window that succeeded within the client's timeout (the
SLO), per second. With FIFO and a client that gives up, the api spends the spike on requests
nobody waits for any more and goodput collapses; CoDel and an adaptive concurrency limit keep
it near the offered load. Three seeds, each variant seeing the same requests (common random
numbers); the tolerances are fractions of the base arrival rate, fixed here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import simulator

PATH = Path(__file__).resolve().parents[1] / "scenarios" / "overload.yaml"
SEEDS = (1, 2, 3)
SHORT = "duration=60s"  # 10 s after the spike: the FIFO backlog is still draining then
KEEPS, COLLAPSES = 0.8, 0.2  # goodput during the spike, as a fraction of the base rate


def goodput(r: simulator.Results, t0: float, t1: float, slo: float) -> float:
    req = r.requests
    window = (req["start"] >= t0) & (req["start"] < t1)
    good = window & (req["status"] == "ok") & (req["end"] - req["start"] <= slo)
    return float(good.sum() / (t1 - t0))


def runs(seed: int) -> dict[str, simulator.Results]:
    base = simulator.load_scenario(PATH)
    return {name: simulator.simulate(simulator.load_scenario(PATH, [*extra, SHORT]), seed=seed)
            for name, extra in base.variants.items()}


@pytest.mark.parametrize("seed", SEEDS)
def test_codel_and_the_adaptive_limit_keep_goodput_where_fifo_collapses(seed: int) -> None:
    scenario = simulator.load_scenario(PATH)
    spike = scenario.faults[0]
    rate = scenario.workloads["clients"].arrivals.rate
    slo = scenario.workloads["clients"].target.timeout
    t0, t1 = spike.at, spike.at + spike.duration
    got = runs(seed)
    during = {name: goodput(r, t0, t1, slo) for name, r in got.items()}
    after = {name: goodput(r, t1, 60.0, slo) for name, r in got.items()}
    assert goodput(got["fifo"], scenario.warmup, t0, slo) > 0.9 * rate  # healthy before
    assert during["fifo"] < COLLAPSES * rate, during
    assert after["fifo"] < COLLAPSES * rate, after  # still serving the dead backlog
    for name in ("codel", "aimd", "adaptive_concurrency", "adaptive_lifo"):
        assert during[name] > KEEPS * rate, (name, during)
        assert after[name] > KEEPS * rate, (name, after)
    assert during["throttled"] > 2 * during["fifo"], during
    # the adaptive limit refuses at once rather than letting requests time out
    req = got["aimd"].requests
    spiked = req[(req["start"] >= t0) & (req["start"] < t1)]
    counts = spiked["status"].value_counts()
    assert counts["rejected"] > 5 * counts["timeout"], counts
    assert not got["aimd"].tables["concurrency_limits"].empty
