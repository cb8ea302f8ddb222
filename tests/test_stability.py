"""Steady-state verdicts (``simulator.analysis.stability``).

Acceptance: a single service at rho = 5 and ``scenarios/lb_strategies.yaml`` with round robin
each print a warning naming the overloaded instances; ``compare`` over round robin, least
connections and power of two marks round robin unstable and ranks only the others; a stable
run at rho = 0.7 gives no warning over 20 seeds; a capacity search fails an unstable point.
The trend test's exact null distribution is checked against enumeration, and its false-alarm
rate on independent batch means against its nominal level.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simulator
from simulator.analysis.stability import (
    FALSE_ALARM,
    mann_kendall,
    sen_slope,
    steady_state,
    verdict,
    warnings,
)
from simulator.cli import main
from simulator.experiment import capacity, compare, vary

ROOT = Path(__file__).resolve().parents[1]
LB = ROOT / "scenarios" / "lb_strategies.yaml"

OVERLOADED = """
name: rho5
duration: 20s
warmup: 2s
workloads:
  users: {arrivals: {process: poisson, rate: 2000/s}, target: api}
components:
  api: {kind: service, workers: 2, service_time: {dist: exponential, mean: 5ms}}
"""

#: rho = 280 / (2 / 5 ms) = 0.7
STABLE = OVERLOADED.replace("2000/s", "280/s").replace("20s", "30s")


def test_exact_mann_kendall_matches_enumeration() -> None:
    n = 6
    sums = []
    for perm in itertools.permutations(range(n)):
        v = np.array(perm, dtype=float)
        sums.append(mann_kendall(v)[0])
    sums_arr = np.array(sums)
    for s in sorted(set(sums)):
        v = next(np.array(p, float) for p, t in zip(itertools.permutations(range(n)), sums,
                                                    strict=True) if t == s)
        assert mann_kendall(v)[1] == pytest.approx(float((sums_arr >= s).mean()), abs=1e-12)
    assert mann_kendall(np.arange(10.0))[1] == pytest.approx(1 / math.factorial(10))
    assert mann_kendall(np.arange(10.0)[::-1])[1] == pytest.approx(1.0)


def test_trend_test_false_alarm_rate_on_independent_batches() -> None:
    # H0: exchangeable batch means. At level 0.01 the exact test rejects at most 1% (it is
    # discrete, so a little less); 20,000 series give a standard error of 0.0007.
    rng = np.random.default_rng(11)
    level, n = 0.01, 20_000
    rejected = sum(mann_kendall(rng.exponential(size=10))[1] < level for _ in range(n))
    rate = rejected / n
    assert rate <= level + 4 * math.sqrt(level * (1 - level) / n)
    assert rate > level / 3  # not a test that never fires
    # and it has power: under a linear drift of three noise sds over the series it fires
    # far more often than under H0
    found = sum(mann_kendall(rng.normal(size=10) + np.linspace(0, 3, 10))[1] < level
                for _ in range(2000))
    assert found / 2000 > 10 * level


def test_sen_slope_of_a_line() -> None:
    x = np.arange(10.0)
    assert sen_slope(x, 3 * x + 2) == pytest.approx(3.0)


def test_overloaded_service_is_unstable_and_says_so(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    path = tmp_path / "rho5.yaml"
    path.write_text(OVERLOADED)
    assert main(["run", str(path)]) == 0
    out = capsys.readouterr().out
    head = out.splitlines()[:6]
    assert any("WARNING" in line and "unstable" in line for line in head), out
    assert any(line.strip().startswith("unstable: api:") for line in head), out
    assert any("saturated: api: busy 100" in line for line in out.splitlines())
    findings = steady_state(simulator.simulate(simulator.loads_scenario(OVERLOADED)))
    api = findings[findings["instance"] == "api"].set_index("check")
    assert api.loc["backlog_trend", "verdict"] == "unstable"
    assert api.loc["backlog_trend", "p_value"] < FALSE_ALARM
    assert api.loc["utilisation", "value"] > 0.999
    # 2000/s offered, 400/s served: most requests of the window never finish
    users = findings[findings["instance"] == "users"].set_index("check")
    assert users.loc["unfinished", "verdict"] == "unstable"
    assert users.loc["unfinished", "value"] > 0.5


def test_round_robin_overloads_the_slow_machines_and_is_named() -> None:
    scenario = simulator.load_scenario(LB, ["components.lb.strategy=round_robin",
                                            "duration=60s"])
    findings = steady_state(simulator.simulate(scenario))
    speeds = scenario.components["api"].speed
    assert isinstance(speeds, list)
    # each machine gets 90/s; a 0.5-speed one serves 50/s, the others at least 100/s
    slow = {f"api[{i}]" for i, s in enumerate(speeds) if s < 0.9}
    unstable = set(findings.loc[findings["verdict"] == "unstable", "instance"])
    assert slow <= unstable
    assert not unstable & {f"api[{i}]" for i, s in enumerate(speeds) if s >= 0.9}
    lines = warnings(findings)
    assert all(any(name in line for line in lines) for name in slow)


def test_stable_run_gives_no_warning_over_20_seeds() -> None:
    scenario = simulator.loads_scenario(STABLE)
    alarms, smallest = 0, 1.0
    for seed in range(1, 21):
        findings = steady_state(simulator.simulate(scenario, seed=seed))
        alarms += verdict(findings) != "steady"
        smallest = min(smallest, float(findings["p_value"].min()))
    # the family-wise false-alarm rate is 0.001 per run: 20 runs should all pass
    assert alarms == 0, f"{alarms} false alarms in 20 stable runs"
    assert smallest > FALSE_ALARM


def test_compare_marks_round_robin_unstable_and_ranks_the_others() -> None:
    cmp = compare(LB, vary({"components.lb.strategy": ["round_robin", "least_connections",
                                                       "power_of_two"]}), 2,
                  overrides=["duration=40s"])
    assert cmp.unstable == ["round_robin"]
    assert cmp.baseline == "least_connections"  # the first steady variant
    table = cmp.table(["p99"])
    rr = table[table["variant"] == "round_robin"].iloc[0]
    assert pd.isna(rr["rank"]) and not rr["steady"] and not rr["significant"]
    others = table[table["variant"] != "round_robin"]
    assert sorted(others["rank"].tolist()) == [1, 2]
    assert table["variant"].iloc[-1] == "round_robin"  # listed last


def test_compare_cli_says_round_robin_is_not_ranked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", str(LB), "--vary",
                 "components.lb.strategy=round_robin,least_connections", "-n", "2",
                 "--set", "duration=40s", "--metric", "p99"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: round_robin did not reach a steady state" in out
    assert "round_robin (unstable)" in out
    assert "not compared with least_connections: round_robin" in out
    assert "round_robin beats" not in out and "round_robin trails" not in out


def test_capacity_fails_an_unstable_point() -> None:
    # p99 < 1 h holds for the survivors of any run; only the steady-state check can fail it.
    found = capacity(simulator.loads_scenario(STABLE), "workloads.users.arrivals.rate",
                     100, 2000, "p99 < 3600s", replications=2, confidence=None,
                     overrides=["duration=20s"])
    ev = found.evaluations
    assert not ev.loc[ev["workloads.users.arrivals.rate"] == 2000, "steady"].iloc[0]
    assert found.value is not None and found.value < 400  # capacity is 400/s
    assert found.failing is not None and found.failing > 300


def test_summary_counts_unfinished_requests() -> None:
    r = simulator.simulate(simulator.loads_scenario(OVERLOADED))
    s = r.summary().set_index("name")
    req = r.requests[(r.requests["start"] >= 2.0) & (r.requests["start"] < 20.0)]
    unfinished = int((req["status"] == "in_flight").sum())
    assert s.loc["users", "in_flight"] == unfinished
    assert s.loc["users", "unfinished_ratio"] == pytest.approx(unfinished / len(req))
