"""Every shipped scenario validates and runs; its summary has the figures it exists to show."""

from __future__ import annotations

from pathlib import Path

import pytest

import simulator
from simulator.cli import main

SCENARIOS = sorted((Path(__file__).resolve().parents[1] / "scenarios").glob("*.yaml"))


def test_there_are_scenarios() -> None:
    names = {p.stem for p in SCENARIOS}
    assert {"quickstart", "lb_strategies"} <= names


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_validates(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_scenario_runs_as_written(path: Path) -> None:
    results = simulator.simulate(simulator.load_scenario(path))
    summary = results.summary()
    assert (summary["count"] > 0).all()
    workloads = summary[summary["scope"] == "workload"]
    assert workloads["p99"].notna().all()


def test_strategies_differ_on_the_heterogeneous_fleet() -> None:
    """Load-aware strategies beat oblivious ones when machines differ in speed."""
    path = next(p for p in SCENARIOS if p.stem == "lb_strategies")
    p99 = {}
    for strategy in ("round_robin", "least_connections", "power_of_two"):
        s = simulator.load_scenario(path, [f"components.lb.strategy={strategy}",
                                           "duration=60s", "warmup=10s"])
        p99[strategy] = simulator.simulate(s).summary().set_index("name").loc["users", "p99"]
    assert p99["least_connections"] < p99["power_of_two"] < p99["round_robin"] / 5
