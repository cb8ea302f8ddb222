"""A retry storm is a metastable failure: it outlives its trigger unless retries are bounded."""

from __future__ import annotations

from pathlib import Path

import pytest

import simulator

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "retry_storm.yaml"
RATE = 70.0  # offered load of the scenario, requests/s


def goodput(overrides: list[str]) -> tuple[float, float]:
    r = simulator.simulate(simulator.load_scenario(SCENARIO, overrides))
    req = r.requests
    ok = req["status"] == "ok"

    def per_second(t0: float, t1: float) -> float:
        return float((ok & (req["start"] >= t0) & (req["start"] < t1)).sum() / (t1 - t0))

    return per_second(10, 30), per_second(90, 120)  # before the spike, long after it


@pytest.mark.parametrize(("name", "overrides", "recovers"), [
    ("no retries", ["workloads.clients.target.retry.attempts=1"], True),
    ("retries", [], False),
    ("retry budget", ["workloads.clients.target.retry.budget="
                      "{ratio: 0.1, min_retries_per_second: 1}"], True),
    ("breaker", ["workloads.clients.target.breaker={failure_rate_threshold: 50, "
                 "minimum_number_of_calls: 20, sliding_window_size: 50, "
                 "wait_duration_in_open_state: 2s}"], True),
])
def test_spike_recovery(name: str, overrides: list[str], recovers: bool) -> None:
    before, after = goodput(overrides)
    assert before > 0.9 * RATE, name  # healthy before the spike in every variant
    if recovers:
        assert after > 0.8 * RATE, name
    else:
        assert after < 0.05 * RATE, name  # the storm outlives the 5-second spike by far


def test_storm_amplifies_load() -> None:
    r = simulator.simulate(simulator.load_scenario(SCENARIO))
    late = r.requests[r.requests["start"] >= 90]
    assert late["attempts"].mean() > 3.5  # nearly every request uses all 4 attempts
    # offered 4 x 70 = 280/s against a capacity of 100/s: the backlog grows by ~180/s
    backlog = r.samples[(r.samples["metric"] == "in_system")].set_index("time")["value"]
    assert backlog[120.0] - backlog[90.0] > 0.8 * 180 * 30


def test_summary_reports_recovery_or_its_absence() -> None:
    storm = simulator.simulate(simulator.load_scenario(SCENARIO)).recovery()
    calm = simulator.simulate(simulator.load_scenario(
        SCENARIO, ["workloads.clients.target.retry.attempts=1"])).recovery()
    assert not storm["recovered"].iloc[0] and storm["recovery_time"].isna().iloc[0]
    assert calm["recovered"].iloc[0]
    assert 0 <= calm["recovery_time"].iloc[0] < 20


def test_breaker_time_in_states_covers_the_window() -> None:
    r = simulator.simulate(simulator.load_scenario(SCENARIO, [
        "workloads.clients.target.breaker={failure_rate_threshold: 50, "
        "minimum_number_of_calls: 20, sliding_window_size: 50, wait_duration_in_open_state: 2s}"]))
    b = r.breakers()
    assert len(b) == 1
    row = b.iloc[0]
    assert row["closed_s"] + row["open_s"] + row["half_open_s"] == pytest.approx(110)
    assert row["openings"] >= 1 and row["open_s"] >= 2 * row["openings"] - 1e-9
