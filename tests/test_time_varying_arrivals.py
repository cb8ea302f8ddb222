"""Time-varying Poisson arrivals beyond piecewise steps: a sinusoid and a piecewise-linear curve.

A non-homogeneous Poisson process has independent Poisson counts in disjoint intervals, of
mean the integral of the intensity over each: the counts per bin are checked within four
standard deviations of those integrals (computed here in closed form).
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pytest

import simulator
from tests.conftest import run


def spec(arrivals: dict[str, Any], duration: float, **extra: Any) -> dict[str, Any]:
    return {"duration": duration, **extra,
            "workloads": {"w": {"arrivals": arrivals, "target": "api"}},
            "components": {"api": {"kind": "service", "workers": 1000, "service_time": 0.0}}}


def check_counts(times: np.ndarray, edges: np.ndarray, expected: np.ndarray) -> None:
    counts, _ = np.histogram(times, edges)
    assert np.all(np.abs(counts - expected) <= 4 * np.sqrt(expected) + 1), (counts, expected)


def test_sinusoid_counts_follow_the_integrated_rate() -> None:
    rate, amp, period, peak = 200.0, 0.8, 20.0, 5.0
    times = run(spec({"process": "sinusoid", "rate": rate, "amplitude": amp,
                      "period": period, "peak_at": peak}, 100)).requests["start"].to_numpy()
    edges = np.linspace(0, 100, 41)
    w = 2 * math.pi / period

    def integral(t: np.ndarray) -> np.ndarray:
        return rate * (t + amp / w * np.sin(w * (t - peak)))

    check_counts(times, edges, np.diff(integral(edges)))
    # and the peak is where it was asked for: busiest bin of the folded period
    folded, _ = np.histogram(times % period, np.linspace(0, period, 21))
    assert abs((np.argmax(folded) + 0.5) * period / 20 - peak) <= period / 20


def test_a_rate_curve_is_linear_between_its_points() -> None:
    points = [{"at": 0, "rate": 0}, {"at": 40, "rate": 400}, {"at": 60, "rate": 100}]
    times = run(spec({"process": "curve", "points": points}, 80)).requests["start"].to_numpy()
    edges = np.linspace(0, 80, 33)
    grid = np.linspace(0, 80, 80_001)
    rate = np.interp(grid, [0, 40, 60], [0, 400, 100])
    cum = np.concatenate([[0.0], np.cumsum((rate[1:] + rate[:-1]) / 2 * np.diff(grid))])
    check_counts(times, edges, np.diff(np.interp(edges, grid, cum)))


def test_a_curve_that_falls_to_zero_ends_the_arrivals_not_the_run() -> None:
    points = [{"at": 0, "rate": 100}, {"at": 5, "rate": 0}]
    r = run(spec({"process": "curve", "points": points}, 1000)).requests
    assert r["start"].max() < 5
    assert abs(len(r) - 250) <= 4 * math.sqrt(250)


def test_a_spike_multiplies_a_sinusoid() -> None:
    arrivals = {"process": "sinusoid", "rate": 100, "amplitude": 0.5, "period": 10}
    base = spec(arrivals, 40)
    spiked = spec(arrivals, 40, faults=[{"kind": "spike", "workload": "w", "at": 20,
                                         "duration": 10, "factor": 3}])
    a = run(base).requests["start"].to_numpy()
    b = run(spiked).requests["start"].to_numpy()
    n_a, n_b = ((a >= 20) & (a < 30)).sum(), ((b >= 20) & (b < 30)).sum()
    assert abs(n_b - 3 * 1000) <= 4 * math.sqrt(3000)
    assert abs(n_a - 1000) <= 4 * math.sqrt(1000)


@pytest.mark.parametrize(("arrivals", "message"), [
    ({"process": "sinusoid", "rate": 10, "amplitude": 1.5}, "less than or equal to 1"),
    ({"process": "curve", "points": [{"at": 1, "rate": 1}, {"at": 2, "rate": 1}]},
     "the first point must be at 0s"),
    ({"process": "curve", "points": [{"at": 0, "rate": 1}, {"at": 0, "rate": 1}]},
     "strictly increasing"),
])
def test_bad_time_varying_arrivals_are_located_errors(arrivals: dict[str, Any],
                                                      message: str) -> None:
    with pytest.raises(simulator.ScenarioError, match=message):
        simulator.parse_scenario(spec(arrivals, 10))


def test_a_rate_curve_read_from_a_file_is_the_inline_curve(tmp_path: Any) -> None:
    (tmp_path / "rates.csv").write_text("at,rate\n0,0\n40s,400/s\n60,100\n")
    text = ("duration: 80\nworkloads:\n  w:\n    arrivals: {process: curve, file: rates.csv}\n"
            "    target: api\ncomponents:\n  api: {kind: service, workers: 1000, "
            "service_time: 0}\n")
    (tmp_path / "s.yaml").write_text(text)
    loaded = simulator.load_scenario(tmp_path / "s.yaml")
    inline = simulator.parse_scenario(spec({"process": "curve", "points": [
        {"at": 0, "rate": 0}, {"at": 40, "rate": 400}, {"at": 60, "rate": 100}]}, 80))
    assert loaded.workloads["w"].arrivals == inline.workloads["w"].arrivals  # file: not kept
    a = simulator.simulate(loaded).requests["start"].to_numpy()
    b = simulator.simulate(inline).requests["start"].to_numpy()
    assert np.array_equal(a, b)


@pytest.mark.parametrize(("content", "message"), [
    (None, "cannot read rate curve 'rates.csv'"),
    ("0,1,2\n", "data row 0 has 3 columns"),
    ("0,10\n", "a curve needs at least two points"),
    ("0,10\n5,-1\n", "points.1.rate"),
])
def test_bad_rate_files_are_located_errors(tmp_path: Any, content: str | None,
                                           message: str) -> None:
    if content is not None:
        (tmp_path / "rates.csv").write_text(content)
    (tmp_path / "s.yaml").write_text(
        "duration: 10\nworkloads:\n  w:\n    arrivals: {process: curve, file: rates.csv}\n"
        "    target: api\ncomponents:\n  api: {kind: service}\n")
    with pytest.raises(simulator.ScenarioError, match=re.escape(message)) as info:
        simulator.load_scenario(tmp_path / "s.yaml")
    assert "s.yaml:4" in str(info.value)
