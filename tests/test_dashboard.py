"""The dashboard and the latency heatmap: panels, shared time axis, fault bands, counts, ticks.

The acceptance run is ``scenarios/retry_storm.yaml`` as shipped (the spike at 30-35 s, the
storm of retries after it, every request timing out), and the same with a breaker on the
clients' call (``BREAKER``), which opens during the spike and ends the storm.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest
from matplotlib.axes import Axes
from matplotlib.collections import QuadMesh
from matplotlib.figure import Figure

import simulator
from simulator.analysis.plots.dashboard import panels
from simulator.analysis.plots.heatmap import heatmap_counts
from simulator.analysis.plots.style import human_log_ticks, run_end
from simulator.analysis.report import report_html

ROOT = Path(__file__).resolve().parents[1]
BREAKER = ("workloads.clients.target.breaker={failure_rate_threshold: 50, "
           "sliding_window_size: 50, minimum_number_of_calls: 20, "
           "wait_duration_in_open_state: 5s}")


@pytest.fixture(scope="module")
def storm() -> simulator.Results:
    return simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / "retry_storm.yaml"))


@pytest.fixture(scope="module")
def broken() -> simulator.Results:
    """The retry storm with a breaker on the clients' call."""
    return simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / "retry_storm.yaml",
                                                      [BREAKER]))


def _board(r: simulator.Results, **options: object) -> dict[str, Axes]:
    fig = Figure(figsize=(13, 12))
    r.plot.dashboard(ax=fig.subplots(), **options)
    return {ax.get_label(): ax for ax in fig.axes}


def _line(ax: Axes, label: str) -> tuple[np.ndarray, np.ndarray]:
    (line,) = [ln for ln in ax.lines if ln.get_label() == label]
    return np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)


def _mean_over(x: np.ndarray, y: np.ndarray, a: float, b: float) -> float:
    """Mean of a step line's per-window values over windows starting in ``[a, b)`` (the
    last point repeats the last window, so it is left out)."""
    x, y = x[:-1], y[:-1]
    return float(y[(x >= a) & (x < b)].mean())


def test_retry_storm_panels_share_the_run_time_axis(storm: simulator.Results) -> None:
    axes = _board(storm)
    # no breaker, one workload, no regions: those panels are not drawn
    assert list(axes) == ["requests", "latency", "not ok", "utilisation", "queue length"]
    end = run_end(storm)
    assert end == 120.0
    top = axes["requests"]
    for ax in axes.values():
        assert ax.get_xlim() == (0.0, end)
        assert top.get_shared_x_axes().joined(top, ax)
    assert [ax.get_xaxis().get_label_text() for ax in axes.values()][-1] == "time (s)"


def test_fault_and_warmup_bands_are_where_the_scenario_puts_them(
        storm: simulator.Results) -> None:
    (fault,) = storm.scenario.faults
    assert (float(fault.at), float(fault.end)) == (30.0, 35.0)
    for ax in _board(storm).values():
        bands = [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches
                 if p.get_gid() == "fault"]
        assert bands == [(30.0, 35.0)]
        warm = [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches
                if p.get_gid() == "warmup"]
        assert warm == [(0.0, 10.0)]
    names = [t.get_text() for t in _board(storm)["requests"].texts]
    assert names == ["warm-up", "spike clients"]


def test_the_spike_the_storm_and_the_timeouts_show(storm: simulator.Results) -> None:
    axes = _board(storm)
    req = axes["requests"]
    t, arrivals = _line(req, "arrivals")
    # the spike doubles 70/s: Poisson over 5 s, sd of the mean rate sqrt(140 / 5) = 5.3/s
    assert _mean_over(t, arrivals, 30, 35) == pytest.approx(140, rel=0.15)
    assert _mean_over(t, arrivals, 40, 110) == pytest.approx(70, rel=0.1)
    # the storm: after the spike every request times out after its 4 attempts, so the api
    # gets 4 times the clients' arrivals (the attempts of a request fall within 1 s of it)
    after = storm.requests[storm.requests["start"].between(40, 110)]
    assert (after["status"] == "timeout").all() and (after["attempts"] == 4).all()
    t, at_api = _line(req, "arriving at api (retries included)")
    assert _mean_over(t, at_api, 41, 110) == pytest.approx(
        4 * _mean_over(*_line(req, "arrivals"), 41, 110), rel=0.05)
    t, timeouts = _line(req, "timeout")
    assert _mean_over(t, timeouts, 41, 110) == pytest.approx(70, rel=0.1)
    t, goodput = _line(req, "goodput (ok)")
    assert _mean_over(t, goodput, 40, 120) == 0
    _, share = _line(axes["not ok"], "timeout")
    assert share[45] == 100.0
    # the client timeout line, on a log latency axis in milliseconds
    lat = axes["latency"]
    assert lat.get_yscale() == "log"
    (limit,) = [ln for ln in lat.lines if ln.get_label().startswith("clients timeout")]
    assert list(limit.get_ydata()) == [200.0, 200.0]
    assert limit.get_label() == "clients timeout (200 ms)"
    # the api saturates and its queue grows without bound
    t, util = _line(axes["utilisation"], "api")
    assert _mean_over(t, util, 40, 120) == pytest.approx(100, abs=0.01)
    q = axes["queue length"].lines[0].get_ydata()
    assert q[-1] > 10_000


def test_the_breaker_panel_shows_its_states(broken: simulator.Results) -> None:
    axes = _board(broken)
    assert list(axes)[-1] == "breakers"
    ev = broken.events[broken.events["event"] == "breaker"]
    changes = list(zip(ev["time"].round(9), ev["detail"].astype(str), strict=True))
    opened = [t for t, d in changes if d.endswith("->open")]
    half = [t for t, d in changes if d.endswith("->half_open")]
    assert opened and 30 < opened[0] < 35 and half[0] == pytest.approx(opened[0] + 5)
    bars = axes["breakers"].collections
    open_bars = [b for b in bars if np.allclose(b.get_facecolor()[0][:3],
                                                matplotlib.colors.to_rgb("#e57373"))]
    (bar,) = open_bars
    (path,) = bar.get_paths()
    xs = path.vertices[:, 0]
    assert (xs.min(), xs.max()) == pytest.approx((opened[0], half[0]))
    assert [ax.get_yticklabels()[0].get_text() for ax in [axes["breakers"]]] == \
        ["clients → api"]


def test_heatmap_counts_every_request(storm: simulator.Results) -> None:
    counts = heatmap_counts(storm)
    req = storm.requests
    status = req["status"].astype(str)
    assert counts.total == len(req)
    assert int(counts.ok.sum()) == int((status == "ok").sum())
    assert int(counts.other["timeout"].sum()) == int((status == "timeout").sum())
    assert int(counts.other["unfinished"].sum()) == int((status == "in_flight").sum())
    assert set(counts.other) == {"timeout", "unfinished"}
    # log-spaced buckets, five per decade, covering the fastest and slowest success
    ratios = counts.latency_edges[1:] / counts.latency_edges[:-1]
    assert np.allclose(ratios, 10 ** 0.2)
    ok = req.loc[status == "ok", "latency"]
    assert counts.latency_edges[0] <= ok[ok > 0].min()
    assert counts.latency_edges[-1] >= ok.max()
    # requests per creation window: the spike's windows have twice the others
    per_window = counts.ok.sum(axis=0) + sum(counts.other.values())
    assert per_window[30:35].mean() == pytest.approx(140, rel=0.15)
    # what is drawn adds up to the same number
    fig = Figure()
    storm.plot.latency_heatmap(ax=fig.subplots())
    drawn = [m for ax in fig.axes if ax.get_label() != "scale"
             for m in ax.collections if isinstance(m, QuadMesh)]
    assert sum(int(np.ma.filled(m.get_array(), 0).sum()) for m in drawn) == len(req)


def test_heatmap_ticks_are_milliseconds(storm: simulator.Results) -> None:
    fig = Figure()
    ax = storm.plot.latency_heatmap(ax=fig.subplots())
    fig.canvas.draw()
    labels = {t.get_text() for t in ax.get_yticklabels() if t.get_text()}
    assert {"1 ms", "10 ms", "100 ms"} <= labels
    assert all(text.endswith(" ms") for text in labels)


@pytest.mark.parametrize(("low", "high", "expected"), [
    (15.0, 300.0, ["20 ms", "50 ms", "100 ms", "200 ms"]),
    (0.5, 5000.0, ["1 ms", "10 ms", "100 ms", "1,000 ms"]),
])
def test_human_log_ticks(low: float, high: float, expected: list[str]) -> None:
    fig = Figure()
    ax = fig.subplots()
    ax.set_yscale("log")
    ax.set_ylim(low, high)
    human_log_ticks(ax.yaxis, "ms")
    fig.canvas.draw()
    shown = [t.get_text() for t, v in zip(ax.get_yticklabels(), ax.get_yticks(), strict=True)
             if low <= v <= high]
    assert shown == expected


def test_a_panel_with_nothing_to_show_is_not_drawn(storm: simulator.Results) -> None:
    samples = storm.samples.copy()
    samples.loc[samples["metric"] == "queue_length", "value"] = 0.0
    quiet = dataclasses.replace(storm, tables={**storm.tables, "samples": samples})
    assert "queue length" not in [p.name for p in panels(quiet)]
    req = storm.requests.copy()
    req["status"] = req["status"].where(req["status"] == "ok", "ok")
    healthy = dataclasses.replace(storm, tables={**storm.tables, "requests": req})
    assert "not ok" not in [p.name for p in panels(healthy)]
    # a few requests left in flight by the end are nothing to show either
    req.loc[req.index[-5:], "status"] = "in_flight"
    assert "not ok" not in [p.name for p in panels(dataclasses.replace(
        storm, tables={**storm.tables, "requests": req}))]


def test_panels_per_workload_and_region(storm: simulator.Results) -> None:
    req = storm.requests.copy()
    odd = (req["request_id"] % 2).to_numpy(dtype=bool)
    req["region"] = np.where(odd, "eu", "us")
    req["workload"] = np.where(odd, "mobile", "web")
    split = dataclasses.replace(storm, tables={**storm.tables, "requests": req})
    axes = _board(split)
    assert {"p99 by workload", "p99 by region"} <= set(axes)
    ax = axes["p99 by region"]
    assert [ln.get_label() for ln in ax.lines] == ["eu", "us"]
    t, p99 = _line(ax, "eu")
    ok = req[(req["status"] == "ok") & odd & (req["end"] >= 20) & (req["end"] < 21)]
    assert p99[list(t).index(20.0)] == pytest.approx(ok["latency"].quantile(0.99) * 1e3)


def test_slo_lines(storm: simulator.Results) -> None:
    axes = _board(storm, slo={"p99": 0.15, "error_ratio": 0.01})
    (line,) = [ln for ln in axes["latency"].lines if ln.get_label().startswith("SLO")]
    assert line.get_label() == "SLO p99 < 150 ms" and line.get_ydata()[0] == 150.0
    (line,) = [ln for ln in axes["not ok"].lines if ln.get_label().startswith("SLO")]
    assert line.get_label() == "SLO errors < 1.00%" and line.get_ydata()[0] == 1.0
    with pytest.raises(ValueError, match="unknown key 'p42'"):
        panels(storm, slo={"p42": 0.1})


def test_the_report_has_a_dashboard_section(storm: simulator.Results) -> None:
    page = report_html(storm, plots=["latency_cdf", "dashboard", "latency_heatmap"])
    board, plots = page.index('<h2 id="dashboard">'), page.index('<h2 id="plots">')
    assert board < page.index('alt="dashboard"') < page.index('alt="latency_heatmap"') < plots
    assert page.index('alt="latency_cdf"') > plots
    assert '<a href="#dashboard">' in page
    assert {"dashboard", "latency_heatmap"} <= set(storm.plot.available())


def test_an_autoscaled_instance_counts_only_while_it_serves(storm: simulator.Results) -> None:
    import pandas as pd

    states = pd.DataFrame({"time": [0.0, 50.0, 90.0], "component": ["api"] * 3,
                           "instance": ["api"] * 3,
                           "state": ["provisioning", "ready", "stopped"]})
    scaled = dataclasses.replace(storm, tables={**storm.tables, "instance_states": states})
    axes = _board(scaled)
    t, util = _line(axes["utilisation"], "api")
    # a window is drawn when the instance serves at its end: those ending in (50, 90]
    assert np.isnan(util[t < 50]).all() and np.isnan(util[(t >= 90) & (t < 120)]).all()
    assert (util[(t >= 50) & (t < 89)] == pytest.approx(100, abs=0.01))
    q = axes["queue length"].lines[0]
    qt, qv = np.asarray(q.get_xdata(), float), np.asarray(q.get_ydata(), float)
    assert np.isnan(qv[qt < 50]).all() and not np.isnan(qv[(qt >= 50) & (qt < 90)]).any()


RESHARD = {
    "name": "reshard", "duration": "6s", "drain": "1s",
    "workloads": {"users": {"arrivals": {"process": "poisson", "rate": "200/s"},
                            "keys": {"popularity": "zipf", "n": 1000, "s": 0.8},
                            "target": "db"}},
    "components": {"db": {"kind": "database", "shards": {"count": 2},
                          "service_time": {"dist": "exponential", "mean": "2ms"}}},
    "faults": [{"at": "3s", "kind": "reshard", "target": "db", "shards": 3},
               {"at": "1s", "duration": "1s", "kind": "slow", "target": "db", "factor": 4}],
}


def test_timeline_events_are_lines_and_the_drain_is_marked() -> None:
    r = simulator.simulate(simulator.parse_scenario(RESHARD), seed=1)
    axes = _board(r)
    assert run_end(r) == 7.0
    for ax in axes.values():
        assert ax.get_xlim() == (0.0, 7.0)
        (event,) = [ln for ln in ax.lines if ln.get_gid() == "event"]
        assert list(event.get_xdata()) == [3.0, 3.0]
        bands = [(p.get_x(), p.get_x() + p.get_width()) for p in ax.patches
                 if p.get_gid() == "fault"]
        assert bands == [(1.0, 2.0)]
        drain = [p for p in ax.patches if p.get_gid() == "drain"]
        assert [(p.get_x(), p.get_x() + p.get_width()) for p in drain] == [(6.0, 7.0)]
    names = [t.get_text() for t in axes["requests"].texts]
    assert names == ["slow db", "reshard db", " drain"]


def test_the_late_breaker_shows_spike_storm_timeouts_and_breaker_in_one_picture() -> None:
    """The acceptance picture: retry_storm's late_breaker variant (a breaker judging 2,000
    calls) lets the storm start, then trips: one dashboard holds the spike band, the api's
    arrivals at several times the clients' (the storm), the timeouts and the open breaker."""
    path = ROOT / "scenarios" / "retry_storm.yaml"
    base = simulator.load_scenario(path)
    r = simulator.simulate(simulator.load_scenario(path, base.variants["late_breaker"]))
    axes = _board(r)
    assert {"requests", "latency", "not ok", "utilisation", "queue length", "breakers"} <= set(
        axes)
    ev = r.events[r.events["event"] == "breaker"]
    opened = ev.loc[ev["detail"].astype(str).str.endswith("->open"), "time"]
    first = float(opened.iloc[0])
    assert 30 < first < 40  # it trips during the storm the spike set off
    req = axes["requests"]
    t, at_api = _line(req, "arriving at api (retries included)")
    t_c, arrivals = _line(req, "arrivals")
    storm = (t >= 30) & (t < first)
    assert at_api[storm].max() > 3 * arrivals[(t_c >= 30) & (t_c < first)].mean()  # the storm
    t, timeouts = _line(req, "timeout")
    assert timeouts[(t >= 30) & (t < first + 1)].max() > 50  # the timeouts
    bars = [b for b in axes["breakers"].collections
            if np.allclose(b.get_facecolor()[0][:3], matplotlib.colors.to_rgb("#e57373"))]
    starts = sorted(p.vertices[:, 0].min() for b in bars for p in b.get_paths())
    assert starts[0] == pytest.approx(first)  # the breaker, open from the moment it tripped
    assert r.recovery()["recovered"].iloc[0]  # and it ends the storm
