"""Plots, the HTML report and ``simulator plot``: every plot draws from a short run."""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.figure import Figure

import simulator
from simulator.analysis.plots import (
    ARRIVAL_PARTS,
    NoDataError,
    PlotAccessor,
    comparison_chart,
    fault_windows,
    figure,
    latency_cdf_overlay,
    latency_vs_load,
    plot_directory,
    write_plots,
)
from simulator.analysis.report import report_html, write_report
from simulator.cli import main

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"

TINY = {
    "name": "tiny",
    "duration": "8s",
    "warmup": "1s",
    "workloads": {"shoppers": {"arrivals": {"process": "poisson", "rate": "200/s"},
                               "target": "lb"}},
    "components": {
        "lb": {"kind": "load_balancer", "strategy": "least_connections", "backends": ["api"]},
        "api": {"kind": "service", "replicas": 3, "workers": 2,
                "service_time": {"dist": "exponential", "mean": "5ms"},
                "speed": [2.0, 1.0, 0.5]},
    },
    "faults": [{"at": "4s", "duration": "2s", "kind": "slow", "target": "api[0]", "factor": 5}],
}

BREAKER = ("workloads.clients.target.breaker={failure_rate_threshold: 50, "
           "minimum_number_of_calls: 20, sliding_window_size: 50, wait_duration_in_open_state: 2s}")


@pytest.fixture(scope="module")
def tiny() -> simulator.Results:
    return simulator.simulate(simulator.parse_scenario(TINY), seed=1)


@pytest.fixture(scope="module")
def storm() -> simulator.Results:
    """The retry storm cured by a breaker: faults, breaker transitions, retries."""
    return simulator.simulate(simulator.load_scenario(
        ROOT / "scenarios" / "retry_storm.yaml", ["duration=50s", BREAKER]))


def _with_samples(r: simulator.Results, rows: list[tuple[Any, ...]]) -> simulator.Results:
    """A copy of ``r`` with extra gauge rows (a cache, a queue) in its samples table."""
    cols = ["component", "instance", "metric", "label"]
    extra = pd.DataFrame(rows, columns=r.samples.columns)
    samples = pd.concat([r.samples.astype(dict.fromkeys(cols, object)), extra],
                        ignore_index=True).astype(dict.fromkeys(cols, "category"))
    return dataclasses.replace(r, tables={**r.tables, "samples": samples})


@pytest.fixture(scope="module")
def gauged(tiny: simulator.Results) -> simulator.Results:
    """``tiny`` plus a cache (hits/misses) and a queue (depth, published/acked) on the
    sampling timer; the hit ratio drops from 0.8 to 0.5 during [4, 6)."""
    times = np.sort(tiny.samples["time"].unique())
    dt = np.r_[0.0, np.diff(times)]
    ratio = np.where((times > 4) & (times <= 6), 0.5, 0.8)
    hits, misses = np.cumsum(100 * ratio * dt), np.cumsum(100 * (1 - ratio) * dt)
    published = np.cumsum(50 * dt)
    acked = np.minimum(np.cumsum(np.where(times > 5, 70, 30) * dt), published)
    rows: list[tuple[Any, ...]] = []
    for t, h, m, p, a in zip(times, hits, misses, published, acked, strict=True):
        rows += [(t, "cache", "cache[0]", "hits_total", "", h / 2),
                 (t, "cache", "cache[1]", "hits_total", "", h / 2),
                 (t, "cache", "cache[0]", "misses_total", "", m / 2),
                 (t, "cache", "cache[1]", "misses_total", "", m / 2),
                 (t, "jobs", "jobs", "published_total", "", p),
                 (t, "jobs", "jobs", "acked_total", "", a),
                 (t, "jobs", "jobs", "depth", "", p - a)]
    return _with_samples(tiny, rows)


def _draw(r: simulator.Results, name: str, **kwargs: Any) -> Axes:
    fig = Figure()
    ax = fig.subplots()
    out = getattr(r.plot, name)(ax=ax, **kwargs)
    assert out is ax
    assert ax.lines or ax.collections or ax.patches, f"{name} drew nothing"
    assert ax.get_title()
    return ax


# --------------------------------------------------------------------------------------------
# import cost


def test_importing_simulator_does_not_import_matplotlib() -> None:
    code = ("import sys, simulator, simulator.cli, simulator.results, simulator.analysis.plots, "
            "simulator.analysis.report\n"
            "simulator.cli.build_parser()\n"
            "r = simulator.simulate(simulator.parse_scenario({'name': 'x', 'duration': '1s', "
            "'workloads': {'w': {'arrivals': {'process': 'poisson', 'rate': '10/s'}, "
            "'target': 'api'}}, 'components': {'api': {'kind': 'service'}}}))\n"
            "r.summary(); r.plot.available()\n"
            "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# --------------------------------------------------------------------------------------------
# one run


def test_available_lists_what_the_run_has(tiny: simulator.Results,
                                          gauged: simulator.Results,
                                          storm: simulator.Results) -> None:
    base = ["latency_cdf", "latency_over_time", "throughput_over_time", "goodput_over_time",
            "load_over_time"]
    board = ["dashboard", "latency_heatmap"]
    assert tiny.plot.available() == [*base, *board, "backend_share", "backend_share_over_time"]
    assert "hit_ratio_over_time" in gauged.plot.available()
    assert "queue_over_time" in gauged.plot.available()
    assert storm.plot.available() == [*base, "breaker_timeline", *board]
    assert set(PlotAccessor.names()) >= set(gauged.plot.available())


def test_plot_methods_are_the_declared_plots(tiny: simulator.Results) -> None:
    import inspect

    from simulator import registry

    assert PlotAccessor.NAMES == tuple(registry.plots()) == tuple(tiny.plot.names())
    assert set(PlotAccessor.NAMES) <= set(dir(tiny.plot))
    method = tiny.plot.latency_over_time  # bound to the run, with the plot's own doc
    assert list(inspect.signature(method).parameters)[:2] == ["ax", "window"]
    assert "Latency percentiles" in (method.__doc__ or "")
    with pytest.raises(AttributeError, match="no plot 'nothing'"):
        tiny.plot.nothing  # noqa: B018


def test_declaring_the_plots_loads_neither_pandas_nor_matplotlib() -> None:
    code = ("import sys, simulator.analysis.plots\n"
            "from simulator import registry\n"
            "assert len(registry.plots()) >= 6 and registry.plots()['latency_cdf'].caption\n"
            "bad = {'pandas', 'matplotlib'} & set(sys.modules)\n"
            "assert not bad, bad\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


@pytest.mark.parametrize("name", ["latency_cdf", "latency_over_time", "throughput_over_time",
                                  "goodput_over_time", "load_over_time", "backend_share",
                                  "backend_share_over_time"])
def test_run_plots_draw(tiny: simulator.Results, name: str) -> None:
    _draw(tiny, name)


def test_latency_cdf_complementary(tiny: simulator.Results) -> None:
    ax = _draw(tiny, "latency_cdf", complementary=True)
    assert ax.get_yscale() == "log" and ax.get_xscale() == "log"
    y = ax.lines[0].get_ydata()
    assert y.min() > 0 and y.max() < 1  # 1 - F, the zero at the largest sample left out


def test_fault_windows_are_shaded(tiny: simulator.Results) -> None:
    assert fault_windows(tiny) == [(4.0, 6.0, "slow api[0]")]
    for name in ("latency_over_time", "throughput_over_time", "goodput_over_time",
                 "backend_share_over_time"):
        ax = _draw(tiny, name)
        labels = ax.get_legend_handles_labels()[1]
        assert "fault: slow api[0]" in labels, name
        assert "warm-up" in labels or "end of warm-up" in labels, name
        assert ax.get_xlim() == (0.0, 8.0)


def test_goodput_over_time_counts(storm: simulator.Results) -> None:
    ax = _draw(storm, "goodput_over_time")
    lines = {line.get_label(): line for line in ax.lines}
    assert set(lines) == {"throughput", "goodput", "errors", "arrivals"}
    # window = 1 s; the last value is repeated to hold the last step over its window
    total = {k: float(np.sum(v.get_ydata()[:-1])) for k, v in lines.items()}
    req = storm.requests
    assert total["arrivals"] == pytest.approx(len(req))
    assert total["goodput"] == pytest.approx((req["status"] == "ok").sum())
    assert total["throughput"] == pytest.approx(req["end"].notna().sum())
    assert total["errors"] > 0


def test_load_over_time_shows_retries(storm: simulator.Results) -> None:
    ax = _draw(storm, "load_over_time")
    (api,) = ax.lines
    last = storm.samples[storm.samples["time"] == storm.samples["time"].max()]
    arrived = last.loc[last["metric"].isin(ARRIVAL_PARTS), "value"].sum()
    assert float(np.sum(api.get_ydata()[:-1])) == pytest.approx(arrived)  # 1 s windows
    assert arrived - len(storm.spans) == last.loc[last["metric"] == "in_system", "value"].sum()
    # without the breaker, retries make the api see several times what the clients send
    raw = simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / "retry_storm.yaml",
                                                     ["duration=40s"]))
    at_api = _draw(raw, "load_over_time").lines[0]
    clients = _draw(raw, "goodput_over_time").lines[-1]
    assert clients.get_label() == "arrivals"
    late = at_api.get_xdata() >= 36
    assert at_api.get_ydata()[late].sum() > 2.5 * clients.get_ydata()[late].sum()


def test_breaker_timeline(storm: simulator.Results) -> None:
    ax = _draw(storm, "breaker_timeline")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["clients → api"]
    from simulator.analysis.plots.run import breaker_rows

    rows = breaker_rows(storm)
    changes = rows[("clients", "api")]
    assert changes and {s for _, s in changes} <= {"open", "half_open", "closed"}
    assert len(changes) == int((storm.events["event"] == "breaker").sum())
    # time open in the timeline = time open in the breaker summary over the whole run
    edges = [0.0, *(t for t, _ in changes), 50.0]
    states = ["closed", *(s for _, s in changes)]
    open_s = sum(b - a for s, a, b in zip(states, edges[:-1], edges[1:], strict=True)
                 if s == "open")
    from simulator.analysis.diagnostics import breaker_summary

    assert open_s == pytest.approx(breaker_summary(storm.events, 0, 50)["open_s"].iloc[0])


def test_breaker_that_never_opened_is_drawn_closed(tiny: simulator.Results) -> None:
    quiet = _with_samples(tiny, [(t, "api", "api[0]", "breaker_state", "db", 0.0)
                                 for t in (0.0, 1.0)])
    assert "breaker_timeline" in quiet.plot.available()
    ax = _draw(quiet, "breaker_timeline")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["api[0] → db"]


def test_hit_ratio_over_time(gauged: simulator.Results) -> None:
    ax = _draw(gauged, "hit_ratio_over_time")
    (line,) = [ln for ln in ax.lines if ln.get_label() == "cache"]
    x, y = line.get_xdata(), line.get_ydata()
    assert y[(x >= 4) & (x < 6)] == pytest.approx(0.5)
    assert y[(x < 4) | (x >= 6)] == pytest.approx(0.8)
    wide = _draw(gauged, "hit_ratio_over_time", window=2.0)
    assert np.diff(wide.lines[0].get_xdata()) == pytest.approx(2.0)


def test_hit_ratio_from_the_requests_without_gauges(tiny: simulator.Results) -> None:
    req = tiny.requests.copy()
    req["cache"] = pd.Categorical(np.where(req["request_id"] % 4 == 0, "miss", "hit"),
                                  categories=["", "hit", "miss"])
    r = dataclasses.replace(tiny, tables={**tiny.tables, "requests": req})
    ax = _draw(r, "hit_ratio_over_time")
    assert np.nanmean(ax.lines[0].get_ydata()) == pytest.approx(0.75, abs=0.02)


def test_queue_over_time(gauged: simulator.Results) -> None:
    ax = _draw(gauged, "queue_over_time")
    lines = {ln.get_label(): ln for ln in ax.lines}
    assert {"jobs depth", "jobs lag"} <= set(lines)
    lag = lines["jobs lag"].get_ydata()
    assert lag[0] == 0 and lag.max() == pytest.approx(100) and lag[-1] < lag.max()  # drains


def test_hit_ratio_of_a_real_cache() -> None:
    r = simulator.simulate(simulator.parse_scenario({
        "name": "cached", "duration": "6s", "warmup": "1s",
        "workloads": {"users": {"arrivals": {"process": "poisson", "rate": "400/s"},
                                "keys": {"popularity": "zipf", "n": 2000, "s": 1.0},
                                "target": "api"}},
        "components": {
            "api": {"kind": "service", "workers": 8, "service_time": "1ms",
                    "calls": {"*": ["cache"]}},
            "cache": {"kind": "cache", "policy": "lru", "capacity": 200, "backing": "db"},
            "db": {"kind": "service", "workers": 8, "service_time": "2ms"},
        }}))
    assert "hit_ratio_over_time" in r.plot.available()
    y = _draw(r, "hit_ratio_over_time").lines[0].get_ydata()
    hits = (r.requests["cache"] == "hit").sum() / r.requests["cache"].isin(["hit", "miss"]).sum()
    assert 0 < np.nanmean(y) < 1 and np.nanmean(y) == pytest.approx(hits, abs=0.05)


def test_queue_plot_of_a_real_queue() -> None:
    r = simulator.simulate(simulator.load_scenario(ROOT / "scenarios" / "order_pipeline.yaml",
                                                   ["duration=30s"]))
    assert "queue_over_time" in r.plot.available()
    labels = [ln.get_label() for ln in _draw(r, "queue_over_time").lines]
    assert "orders depth" in labels and "orders lag" in labels


def test_missing_data_is_refused_clearly(tiny: simulator.Results) -> None:
    for name in ("hit_ratio_over_time", "queue_over_time", "breaker_timeline"):
        assert name not in tiny.plot.available()
        with pytest.raises(NoDataError, match="no "):
            getattr(tiny.plot, name)(ax=Figure().subplots())


def test_plot_without_ax_uses_pyplot(tiny: simulator.Results) -> None:
    import matplotlib.pyplot as plt

    ax = tiny.plot.latency_cdf()
    assert isinstance(ax, Axes) and ax.lines
    plt.close("all")


def test_write_plots_skips_what_is_missing(gauged: simulator.Results, tmp_path: Path) -> None:
    paths = write_plots(gauged, tmp_path)
    assert [p.stem for p in paths] == gauged.plot.available()
    for p in paths:
        assert p.read_bytes()[:8] == PNG


# --------------------------------------------------------------------------------------------
# several runs, experiments


def test_latency_cdf_overlay(tiny: simulator.Results) -> None:
    other = simulator.simulate(simulator.parse_scenario(TINY), seed=2)
    ax = Figure().subplots()
    latency_cdf_overlay({"seed 1": tiny, "seed 2": other}, ax=ax)
    shares = [float((r.measured_requests()["status"] == "ok").mean()) for r in (tiny, other)]
    assert [ln.get_label() for ln in ax.lines] == [f"seed {i} ({s:.1%} ok)"
                                                  for i, s in enumerate(shares, 1)]
    ax = Figure().subplots()
    latency_cdf_overlay([tiny, other], ax=ax, workload="shoppers", complementary=True)
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"


COMPARISON = pd.DataFrame({
    "scope": "workload", "name": "users", "metric": "p99", "rank": [1, 2, 3],
    "variant": ["least_connections", "power_of_two", "round_robin"],
    "n": 3, "mean": [0.08, 0.15, 8.0], "low": [0.07, 0.12, 7.0], "high": [0.09, 0.18, 9.0],
    "diff": [-7.9, -7.85, 0.0], "diff_low": [-8.5, -8.4, 0.0], "diff_high": [-7.3, -7.2, 0.0],
    "significant": [True, True, False],
})


def test_comparison_chart() -> None:
    ax = Figure().subplots()
    comparison_chart(COMPARISON, "p99", ax=ax)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["least_connections",
                                                            "power_of_two", "round_robin"]
    assert ax.get_xscale() == "log"  # 80 ms against 8 s: a linear axis would hide the best
    assert "ms" in ax.get_xlabel()
    ax = Figure().subplots()
    comparison_chart(COMPARISON.rename(columns={"low": "ci_low", "high": "ci_high"}), "p99",
                     ax=ax, log=False)
    assert ax.get_xscale() == "linear"
    ax = Figure().subplots()
    comparison_chart(COMPARISON, "p99", ax=ax, difference=True)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["least_connections",
                                                            "power_of_two"]  # baseline out
    assert "round_robin" in ax.get_title()
    with pytest.raises(ValueError, match="no rows for metric"):
        comparison_chart(COMPARISON, "p50", ax=Figure().subplots())


def test_comparison_chart_of_a_real_comparison() -> None:
    from simulator.experiment import compare, vary

    cmp = compare(simulator.parse_scenario({**TINY, "duration": "3s", "faults": []}),
                  vary({"components.lb.strategy": ["round_robin", "least_connections"]}),
                  replications=2, executor="serial", progress=False)
    ax = Figure().subplots()
    comparison_chart(cmp, "mean", ax=ax, difference=True)
    assert "95%" in ax.get_title() and "round_robin" in ax.get_title()


SWEEP = pd.DataFrame([
    {"workloads.users.arrivals.rate": rate, "components.lb.strategy": strategy,
     "scope": "workload", "name": "users", "metric": metric, "n": 3, "mean": m,
     "low": m * 0.9, "high": m * 1.1}
    for rate, f in (("300/s", 1.0), ("500/s", 2.0), ("700/s", 8.0))
    for strategy, g in (("round_robin", 40.0), ("power_of_two", 1.0))
    for metric, m in (("p50", 0.01 * f * g), ("p99", 0.05 * f * g))
])


def test_latency_vs_load() -> None:
    ax = Figure().subplots()
    latency_vs_load(SWEEP, ax=ax, confidence=0.95)
    assert len(ax.lines) == 4 and len(ax.collections) == 4  # 2 strategies x 2 metrics, bands
    assert list(ax.lines[0].get_xdata()) == [300.0, 500.0, 700.0]
    assert "per second" in ax.get_xlabel() and "95%" in ax.get_title()
    assert ax.get_yscale() == "log"  # one strategy 40x the other
    ax = Figure().subplots()
    latency_vs_load(SWEEP[SWEEP["components.lb.strategy"] == "power_of_two"], ax=ax,
                    metrics=["p99"])
    assert ax.get_yscale() == "linear" and ax.lines[0].get_ydata()[-1] == pytest.approx(400)


def test_latency_vs_load_of_a_plain_table() -> None:
    table = pd.DataFrame({"load": [100, 200, 300] * 2, "variant": ["a"] * 3 + ["b"] * 3,
                          "mean": [0.01, 0.02, 0.05, 0.01, 0.015, 0.02],
                          "ci_low": [0.009, 0.018, 0.04, 0.009, 0.014, 0.018],
                          "ci_high": [0.011, 0.022, 0.06, 0.011, 0.016, 0.022]})
    ax = Figure().subplots()
    latency_vs_load(table, metrics=["p99"], ax=ax)
    assert [ln.get_label() for ln in ax.lines] == ["a", "b"]
    assert ax.get_xlabel() == "load" and ax.get_ylabel() == "p99 latency (ms)"
    with pytest.raises(ValueError, match="no metric column"):
        latency_vs_load(table, ax=Figure().subplots())


# --------------------------------------------------------------------------------------------
# files: results directories, the report, the CLI


def test_plot_directory_of_a_run_takes_the_run(tiny: simulator.Results,
                                                tmp_path: Path) -> None:
    tiny.write(tmp_path / "out")
    with pytest.raises(ValueError, match="holds a run"):
        plot_directory(tmp_path / "out")
    paths = plot_directory(tmp_path / "out", results=simulator.Results.read(tmp_path / "out"))
    assert [p.stem for p in paths] == tiny.plot.available()
    assert all(p.parent == tmp_path / "out" / "plots" for p in paths)


@pytest.mark.parametrize("fmt", ["parquet", "csv"])
def test_results_read_round_trip(tiny: simulator.Results, tmp_path: Path, fmt: str) -> None:
    tiny.write(tmp_path / "out", fmt=fmt)  # type: ignore[arg-type]
    back = simulator.Results.read(tmp_path / "out")
    assert back.scenario == tiny.scenario and back.seed == tiny.seed
    pd.testing.assert_frame_equal(back.summary(), tiny.summary())
    pd.testing.assert_frame_equal(back.backend_share(), tiny.backend_share())
    assert back.plot.available() == tiny.plot.available()


def test_report_is_self_contained(storm: simulator.Results, tmp_path: Path) -> None:
    path = write_report(storm, tmp_path / "r" / "report.html")
    text = path.read_text()
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 1 + len(storm.plot.available())  # the topology, then the plots
    assert all(base64.b64decode(i)[:8] == PNG for i in images)
    assert not re.search(r'(src|href)="(https?:)?//', text)  # nothing fetched
    for words in ("retry-storm", "Summary", "p99_ms", "clients", "Circuit breakers",
                  "Faults and recovery", "spike clients", "breaker clients → api",
                  "retry amplification", "<pre>name: retry-storm"):
        assert words in text, words


def test_report_without_plots(tiny: simulator.Results) -> None:
    text = report_html(tiny, plots=[])
    assert text.count("data:image") == 1  # the topology only
    assert "api[0]" in text and "Per-backend share" in text


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    import yaml

    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(TINY))
    return path


def test_run_report(tiny_file: Path, tmp_path: Path,
                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code, stdout, err = _cli(capsys, "run", str(tiny_file), "--out", str(out), "--report")
    assert code == 0, err
    assert f"report written to {out / 'report.html'}" in stdout
    text = (out / "report.html").read_text()
    assert text.count("data:image/png;base64,") == 1 + 9 and "shoppers" in text  # topology


def test_plot_a_results_directory(tiny_file: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert _cli(capsys, "run", str(tiny_file), "--out", str(out), "--format", "csv")[0] == 0
    code, stdout, err = _cli(capsys, "plot", str(out), "--out", str(tmp_path / "pngs"),
                             "--report", str(tmp_path / "again.html"))
    assert code == 0, err
    pngs = sorted(p.name for p in (tmp_path / "pngs").glob("*.png"))
    assert pngs == sorted(f"{n}.png" for n in simulator.Results.read(out).plot.available())
    assert len(pngs) == 9 and all(str(tmp_path / "pngs" / p) in stdout for p in pngs)
    assert (tmp_path / "again.html").read_text().count("data:image/png") == 1 + 9


def test_run_report_to_a_file(tiny_file: Path, tmp_path: Path,
                              capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _cli(capsys, "run", str(tiny_file), "--report",
                        str(tmp_path / "x" / "tiny.html"))
    assert code == 0, err
    assert (tmp_path / "x" / "tiny.html").is_file()


@pytest.mark.parametrize(("argv", "message"), [
    (("run", "{file}", "--report", "{tmp}/report.txt"), "give a name ending in .html"),
    (("run", "{file}", "--report", "{tmp}"), "is a directory"),
    (("plot", "{tmp}/nowhere"), "not a results directory"),
])
def test_cli_refuses_bad_paths(tiny_file: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str], argv: tuple[str, ...],
                               message: str) -> None:
    args = [a.format(file=tiny_file, tmp=tmp_path) for a in argv]
    code, _, err = _cli(capsys, *args)
    assert code == 2 and message in err


def test_plot_experiment_directories(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    cmp_dir, sweep_dir = tmp_path / "cmp", tmp_path / "sweep"
    cmp_dir.mkdir()
    sweep_dir.mkdir()
    COMPARISON.to_csv(cmp_dir / "comparison.csv", index=False)
    (cmp_dir / "manifest.json").write_text(json.dumps(
        {"kind": "compare", "baseline": "round_robin", "confidence": 0.9}))
    SWEEP.to_parquet(sweep_dir / "intervals.parquet", index=False)
    (sweep_dir / "manifest.json").write_text(json.dumps({"kind": "sweep", "confidence": 0.95}))
    assert sorted(p.name for p in plot_directory(cmp_dir)) == [
        "comparison_p99.png", "comparison_p99_difference.png"]
    assert [p.name for p in plot_directory(sweep_dir)] == ["sweep_latency.png"]
    code, _, err = _cli(capsys, "plot", str(cmp_dir), "--report")
    assert code == 2 and "reports are made for a single run" in err


def test_figure_needs_no_pyplot() -> None:
    fig = figure(lambda ax: ax.plot([0, 1], [0, 1]))
    assert isinstance(fig, Figure) and fig.axes[0].lines
