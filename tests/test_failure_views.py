"""Failures stay visible in every latency view, and the run's own end is not drawn or reported
as a fault (issue 12, items 2 and 3)."""

from __future__ import annotations

import html
import re
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

import simulator
from simulator.analysis.report import findings, report_html
from simulator.analysis.tables import format_recovery
from simulator.cli import main

ROOT = Path(__file__).resolve().parents[1]
STORM = ROOT / "scenarios" / "retry_storm.yaml"
#: Long enough for the storm to take hold after the spike at 30-35 s, short enough for seconds.
SHORT_STORM = ["duration=45s"]

TINY = {
    "name": "tiny",
    "duration": "8s",
    "warmup": "1s",
    "drain": "2s",
    "workloads": {"shoppers": {"arrivals": {"process": "poisson", "rate": "100/s"},
                               "target": "api"}},
    "components": {"api": {"kind": "service", "workers": 2,
                           "service_time": {"dist": "exponential", "mean": "5ms"}}},
}


@pytest.fixture(scope="module")
def storm() -> simulator.Results:
    return simulator.simulate(simulator.load_scenario(STORM, SHORT_STORM))


def _draw(r: simulator.Results, name: str, **kwargs: object) -> Axes:
    ax = Figure().subplots()
    getattr(r.plot, name)(ax=ax, **kwargs)
    return ax


def _lower_panel(ax: Axes) -> Axes:
    (low,) = [a for a in ax.figure.axes if a.get_label() == "not successful"]
    return low


def _line(ax: Axes, label: str) -> Line2D:
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return line


def _spans(ax: Axes, label: str) -> list[tuple[float, float]]:
    return [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches
            if isinstance(p, Rectangle) and p.get_label() == label]


# --------------------------------------------------------------------------------------------
# item 2: failures visible


def test_retry_storm_latency_over_time_draws_the_timeouts(storm: simulator.Results) -> None:
    ax = _draw(storm, "latency_over_time")
    low = _lower_panel(ax)
    req = storm.requests
    end_of_run = float(storm.scenario.duration)  # no drain: the run ends with its arrivals
    n = int(np.ceil(end_of_run))  # 1 s windows (metrics.interval)
    # every request in the window of its end; those unfinished at the end in the last one
    ends = req["end"].fillna(end_of_run).to_numpy()
    idx = np.minimum(np.floor(ends).astype(int), n - 1)
    total = np.bincount(idx, minlength=n)
    status = req["status"].astype(str).to_numpy()
    assert set(status) == {"ok", "timeout", "in_flight"}  # what the storm produces
    for name, label in (("timeout", "timeout"), ("in_flight", "unfinished")):
        line = _line(low, label)
        x, y = line.get_xdata(), line.get_ydata()
        assert np.array_equal(x[:-1], np.arange(n))
        expected = np.bincount(idx[status == name], minlength=n) / total * 100
        np.testing.assert_allclose(y[:-1], expected, rtol=1e-12, equal_nan=True)
    assert "ok" not in {ln.get_label() for ln in low.lines}
    timeouts = np.bincount(idx[status == "timeout"], minlength=n)
    assert timeouts.sum() == (status == "timeout").sum()
    # the storm: after the spike, most windows are mostly timeouts
    assert np.median(timeouts[36:44] / total[36:44]) > 0.5
    # windows where requests ended and none succeeded are hatched in the latency panel
    ok = np.bincount(idx[status == "ok"], minlength=n)
    hatched = np.zeros(n, dtype=bool)
    band = [p for p in ax.patches if isinstance(p, Rectangle) and p.get_hatch() == "xx"]
    assert band[0].get_label() == "no successful request"
    for p in band:
        hatched[round(p.get_x()):round(p.get_x() + p.get_width())] = True
    assert np.array_equal(hatched, (total > 0) & (ok == 0))
    assert hatched.any()  # this storm has windows where nothing succeeded
    assert "successful requests only" in ax.get_title()


def test_a_run_without_failures_says_so(storm: simulator.Results) -> None:
    calm = simulator.simulate(simulator.parse_scenario({**TINY, "drain": 0}))
    assert set(calm.requests["status"].astype(str)) == {"ok"}
    low = _lower_panel(_draw(calm, "latency_over_time"))
    assert not low.lines
    assert [t.get_text() for t in low.texts] == ["every request succeeded"]


def test_latency_cdf_of_all_requests_stops_at_the_success_share(
        storm: simulator.Results) -> None:
    req = storm.measured_requests()
    share = float((req["status"] == "ok").mean())
    assert share < 0.8  # the storm's failures are a large part
    (curve,) = _draw(storm, "latency_cdf").lines
    y = curve.get_ydata()
    assert y[-1] == pytest.approx(share, rel=1e-12)
    assert f"{share:.1%} ok" in curve.get_label()
    (tail,) = _draw(storm, "latency_cdf", complementary=True).lines
    assert tail.get_ydata()[-1] == pytest.approx(1 - share, rel=1e-12)  # never below failures


def test_latency_cdf_of_successes_says_so(storm: simulator.Results) -> None:
    req = storm.measured_requests()
    share = float((req["status"] == "ok").mean())
    ax = _draw(storm, "latency_cdf", of="ok")
    (curve,) = ax.lines
    assert curve.get_ydata()[-1] == 1.0
    assert f"successful requests only ({share:.1%} of requests)" in ax.get_title()
    with pytest.raises(ValueError, match="of must be"):
        _draw(storm, "latency_cdf", of="failed")


def test_latency_cdf_overlay_counts_failures(storm: simulator.Results) -> None:
    from simulator.analysis.plots import latency_cdf_overlay

    calm = simulator.simulate(simulator.load_scenario(
        STORM, [*SHORT_STORM, "workloads.clients.target.retry.attempts=1"]))
    shares = [float((r.measured_requests()["status"] == "ok").mean()) for r in (storm, calm)]
    ax = latency_cdf_overlay({"retries": storm, "no retries": calm}, ax=Figure().subplots())
    assert [ln.get_ydata()[-1] for ln in ax.lines] == pytest.approx(shares, rel=1e-12)
    assert shares[0] < shares[1]  # retries make the storm; without them it drains
    assert "failures never done" in ax.get_title()
    ok_only = latency_cdf_overlay([storm, calm], ax=Figure().subplots(), of="ok")
    assert [ln.get_ydata()[-1] for ln in ok_only.lines] == [1.0, 1.0]
    assert "successful requests only" in ok_only.get_title()


@pytest.mark.parametrize("status", ["ok", "timeout", None])
def test_latency_quantiles_state_what_they_cover(storm: simulator.Results,
                                                 status: str | None) -> None:
    req = storm.measured_requests()
    label = req["status"].astype(str)
    chosen = label != "in_flight" if status is None else label == status
    q = storm.latency_quantiles([0.5, 0.99], status=status)
    row = q.iloc[0]
    assert row["covers"] == (status or "completed")
    assert row["requests"] == chosen.sum()
    assert row["share"] == pytest.approx(chosen.mean(), rel=1e-12)
    assert row["q0.99"] == pytest.approx(np.quantile(req.loc[chosen, "latency"], 0.99))
    by = storm.latency_quantiles([0.5], by=["workload"], status=status)
    assert by[["covers", "requests"]].iloc[0].tolist() == [row["covers"], row["requests"]]


def test_streamed_quantiles_count_what_they_cover(storm: simulator.Results) -> None:
    streamed = simulator.simulate(simulator.load_scenario(
        STORM, [*SHORT_STORM, "metrics.requests=streaming", "metrics.spans=false"]))
    for status in ("ok", "timeout"):
        exact = storm.latency_quantiles([0.5], status=status).iloc[0]
        approx = streamed.latency_quantiles([0.5], status=status).iloc[0]
        assert (approx["covers"], approx["requests"]) == (exact["covers"], exact["requests"])
        assert approx["share"] == pytest.approx(exact["share"], rel=1e-12)


def _coverage(text: str) -> tuple[int, int, int]:
    """(ok, created, timed out) from the summary's coverage sentence of ``clients``."""
    m = re.search(r"clients: latency columns cover successful requests only, (\d+) of (\d+) "
                  r"created \([\d.]+%\); not covered: (\d+) timed out", text)
    assert m, text
    return int(m[1]), int(m[2]), int(m[3])


def test_report_and_cli_agree_on_the_timeouts(storm: simulator.Results, tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.html"
    argv = ["run", str(STORM), "--report", str(report)]
    for o in SHORT_STORM:
        argv += ["--set", o]
    assert main(argv) == 0
    cli = capsys.readouterr().out
    page = html.unescape(report.read_text())
    req = storm.measured_requests()  # the same scenario and seed: the same run
    status = req["status"].astype(str)
    expected = (int((status == "ok").sum()), len(req), int((status == "timeout").sum()))
    assert _coverage(cli) == _coverage(page) == expected
    ratio = expected[2] / int((status != "in_flight").sum())
    assert f"{ratio:.2%}" in cli and f"{ratio:.2%}" in page  # timeout_ratio, of completed
    assert report_html(storm, plots=[]).count("cover successful requests only") == 1


# --------------------------------------------------------------------------------------------
# item 3: the end of the run


@pytest.mark.parametrize("name", ["throughput_over_time", "goodput_over_time",
                                  "latency_over_time"])
def test_over_time_plots_mark_arrivals_end_and_the_drain(name: str) -> None:
    r = simulator.simulate(simulator.parse_scenario(TINY))
    ax = _draw(r, name)
    (end,) = [ln for ln in ax.lines if ln.get_label() == "arrivals end (8s)"]
    assert list(end.get_xdata()) == [8, 8]
    (drain,) = _spans(ax, "drain (no arrivals)")
    assert drain == pytest.approx((8.0, 10.0))
    without = simulator.simulate(simulator.parse_scenario({**TINY, "drain": 0}))
    labels = {a.get_label() for a in [*_draw(without, name).lines, *_draw(without, name).patches]}
    assert not {"arrivals end (8s)", "drain (no arrivals)"} & labels


def test_a_fault_after_the_run_is_refused_where_it_is(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(STORM), "--set", "duration=20s"]) == 2
    err = capsys.readouterr().err
    assert re.search(r"retry_storm\.yaml:\d+: faults\.0\.at: starts at 30s, after arrivals end "
                     r"at 20s \(no drain\): it would never act", err), err


def test_a_fault_in_the_drain_is_warned_about(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.warns(simulator.ScenarioWarning, match=r"retry_storm\.yaml:\d+: faults\.0\.at: "
                      r"starts at 30s, after arrivals end at 20s: it acts on the drain only"):
        simulator.load_scenario(STORM, ["duration=20s", "drain=15s"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fault inside the arrivals is not warned about
        simulator.load_scenario(STORM, ["duration=31s"])
    assert main(["validate", str(STORM), "--set", "duration=20s", "--set", "drain=15s"]) == 0
    err = capsys.readouterr().err
    assert re.match(r"warning: \S*retry_storm\.yaml:\d+: faults\.0\.at: starts at 30s", err), err


def _recovery(*overrides: str) -> simulator.Results:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", simulator.ScenarioWarning)
        return simulator.simulate(simulator.load_scenario(STORM, list(overrides)))


@pytest.mark.parametrize(("overrides", "outcome"), [
    (["duration=20s", "drain=15s"], "starts after arrivals end (not measured)"),
    (["duration=32s"], "run ended during the fault"),
    (["duration=32s", "drain=10s"], "arrivals ended during the fault"),
])
def test_the_end_of_the_run_is_not_a_failure_to_recover(overrides: list[str],
                                                        outcome: str) -> None:
    r = _recovery(*overrides)
    row = r.recovery().iloc[0]
    assert row["outcome"] == outcome and not row["recovered"]
    assert np.isnan(row["recovery_time"])
    text = format_recovery(r.recovery()).to_string(index=False)
    assert outcome in text and "did not recover" not in text
    notes = " ".join(findings(r))
    assert "recovery not measured" in notes and "did not recover" not in notes


def test_a_storm_that_outlasts_the_spike_still_did_not_recover(storm: simulator.Results) -> None:
    row = storm.recovery().iloc[0]
    assert row["outcome"] == "did not recover" and not row["recovered"]
    assert "did not recover" in format_recovery(storm.recovery()).to_string(index=False)
