"""Experiments (``simulator.experiment``): replications, comparisons, sweeps, capacity, executors.

Acceptance checks of the experiment layer:

* the Student-t interval over replications covers the true M/M/1 mean response time in about
  95% of independent experiments;
* ``compare`` on ``scenarios/lb_strategies.yaml`` gives a ranked table with paired-difference
  intervals, and common random numbers make the paired interval narrower than the unpaired one;
* ``sweep`` gives one row per point x replication with the parameters as columns, a rerun
  reuses the cache and an interrupted (or killed) sweep resumes;
* ``capacity`` finds the M/M/c arrival rate at which p99 crosses a threshold, within tolerance
  of the Erlang-C value (``tests/theory.py``);
* the processes and Dask executors give the same tables as the serial one.
"""

from __future__ import annotations

import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

try:
    import theory as th
except ModuleNotFoundError:  # pragma: no cover - e.g. pytest --import-mode=importlib
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import theory as th

import simulator
from simulator.analysis.stats import t_interval
from simulator.cli import main
from simulator.errors import ScenarioError
from simulator.experiment import (
    DaskExecutor,
    ProcessExecutor,
    SerialExecutor,
    capacity,
    compare,
    parse_slo,
    replicate,
    sweep,
    vary,
)

T = TypeVar("T")
R = TypeVar("R")

ROOT = Path(__file__).resolve().parents[1]
LB = ROOT / "scenarios" / "lb_strategies.yaml"
LB_SHORT = ["duration=30s", "warmup=5s"]
STRATEGY = "components.lb.strategy"


def mmc(rate: float, workers: int = 1, duration: float = 10.0, warmup: float = 1.0,
        mean: float = 0.01) -> dict[str, Any]:
    """An M/M/c queue: Poisson arrivals at ``rate``, ``workers`` exponential servers."""
    return {
        "name": f"mm{workers}",
        "duration": duration,
        "warmup": warmup,
        "drain": 2.0,
        "metrics": {"interval": duration + 2.0, "spans": False},
        "workloads": {"users": {"arrivals": {"process": "poisson", "rate": rate},
                                "target": "api"}},
        "components": {"api": {"kind": "service", "workers": workers,
                               "service_time": {"dist": "exponential", "mean": mean}}},
    }


def workload_rows(df: pd.DataFrame) -> pd.DataFrame:
    return df[df["scope"] == "workload"]


def coverage(values: np.ndarray, truth: float) -> float:
    """Fraction of experiments (rows) whose t-interval covers ``truth``."""
    return float(np.mean([t_interval(row).covers(truth) for row in values]))


# --------------------------------------------------------------------------------------------
# replications


def mm1_experiments(experiments: int, replications: int, duration: float, seed: int,
                    executor: str) -> np.ndarray:
    """Mean response time of each replication, one row per experiment (rho = 0.5)."""
    reps = replicate(mmc(50.0, duration=duration), experiments * replications, seed=seed,
                     executor=executor, progress=False)
    wl = workload_rows(reps.runs).sort_values("replication")
    return wl["mean"].to_numpy().reshape(experiments, replications)


def test_t_interval_covers_the_true_mm1_mean_in_about_95_percent_of_experiments() -> None:
    # 100 independent experiments of 5 replications (8 s at 50/s, mean service 10 ms): the
    # true mean response time is 1 / (mu - lambda) = 20 ms.
    truth = th.mm1(50.0, 100.0)["mean_response_time"]
    means = mm1_experiments(100, 5, 8.0, seed=11, executor="serial")
    # binomial sd of the coverage over 100 experiments: 0.022
    assert 0.90 <= coverage(means, truth) <= 0.99


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_t_interval_coverage_of_the_mm1_mean_over_400_experiments() -> None:
    truth = th.mm1(50.0, 100.0)["mean_response_time"]
    means = mm1_experiments(400, 5, 10.0, seed=7, executor="processes")
    t_cover = coverage(means, truth)
    z_cover = float(np.mean(np.abs(means.mean(axis=1) - truth)
                            <= 1.96 * means.std(axis=1, ddof=1) / math.sqrt(5)))
    # binomial sd over 400 experiments: 0.011; a normal-quantile interval under-covers (~0.88)
    assert 0.925 <= t_cover <= 0.975
    assert z_cover < t_cover


def test_replications_are_independent_and_reproducible() -> None:
    spec = mmc(50.0, duration=5.0)
    a = replicate(spec, 3, seed=4, executor="serial", progress=False)
    b = replicate(spec, 3, seed=4, executor="serial", progress=False)
    pd.testing.assert_frame_equal(a.runs, b.runs)
    assert list(a.runs.columns[:5]) == ["seed", "replication", "warmup", "scope", "name"]
    wl = workload_rows(a.runs)
    assert wl["mean"].nunique() == 3  # independent streams per replication
    # replication r is simulate(scenario, seed, replication=r)
    direct = simulator.simulate(simulator.parse_scenario(spec), seed=4, replication=2).summary()
    row = wl[wl["replication"] == 2].iloc[0]
    assert row["mean"] == direct.iloc[0]["mean"] and row["count"] == direct.iloc[0]["count"]


def test_sequential_stopping_reaches_the_target_relative_half_width() -> None:
    reps = replicate(mmc(50.0, duration=4.0), 3, seed=2, target_relative_half_width=0.1,
                     executor="serial", progress=False)
    iv = reps.interval("mean")
    assert reps.meta["stopped_by"] == "precision reached"
    assert reps.replications > 3
    assert iv.relative_half_width <= 0.1
    assert sorted(workload_rows(reps.runs)["replication"]) == list(range(reps.replications))
    capped = replicate(mmc(50.0, duration=4.0), 3, seed=2, target_relative_half_width=0.001,
                       max_replications=5, executor="serial", progress=False)
    assert capped.replications == 5 and capped.meta["stopped_by"] == "max_replications reached"


def test_warmup_auto_cuts_an_overload_transient_with_mser5() -> None:
    # 5 s at 150/s into one 100/s server, then 50/s: a backlog of ~250 requests drains by ~10 s
    spec = mmc(50.0, duration=60.0, warmup=0.0)
    spec["workloads"]["users"]["arrivals"] = {
        "process": "schedule", "steps": [{"at": 0, "rate": 150}, {"at": "5s", "rate": 50}]}
    auto = replicate(spec, 2, seed=3, warmup="auto", executor="serial", progress=False)
    none = replicate(spec, 2, seed=3, executor="serial", progress=False)
    wl, raw = workload_rows(auto.runs), workload_rows(none.runs)
    truth = th.mm1(50.0, 100.0)["mean_response_time"]
    assert ((wl["warmup"] > 5.0) & (wl["warmup"] < 25.0)).all()
    assert (raw["warmup"] == 0.0).all()
    assert (wl["mean"] < 1.3 * truth).all()
    assert (raw["mean"] > 3 * truth).all()  # the transient dominates the uncut mean


def test_warmup_auto_in_the_scenario_file() -> None:
    """``warmup: auto`` in the scenario: one run's summary and a replication cut the same
    transient as ``--warmup auto`` does."""
    spec = mmc(50.0, duration=60.0, warmup="auto")
    spec["workloads"]["users"]["arrivals"] = {
        "process": "schedule", "steps": [{"at": 0, "rate": 150}, {"at": "5s", "rate": 50}]}
    res = simulator.simulate(simulator.parse_scenario(spec), seed=3)
    t0 = res.window[0]
    assert 5.0 < t0 < 25.0
    row = res.summary().set_index("name").loc["users"]
    req = res.requests
    assert row["count"] == int(((req["start"] >= t0) & (req["start"] < 60.0)).sum())
    assert row["mean"] < 1.3 * th.mm1(50.0, 100.0)["mean_response_time"]
    reps = replicate(spec, 2, seed=3, executor="serial", progress=False)
    via_option = replicate({**spec, "warmup": 0.0}, 2, seed=3, warmup="auto",
                           executor="serial", progress=False)
    assert workload_rows(reps.runs)["warmup"].tolist() == \
        workload_rows(via_option.runs)["warmup"].tolist()


def test_fixed_warmup_overrides_the_scenarios() -> None:
    spec = mmc(50.0, duration=10.0, warmup=1.0)
    reps = replicate(spec, 1, seed=5, warmup="4s", executor="serial", progress=False)
    row = workload_rows(reps.runs).iloc[0]
    res = simulator.simulate(simulator.parse_scenario(spec), seed=5)
    req = res.requests
    assert row["warmup"] == 4.0
    assert row["count"] == int(((req["start"] >= 4.0) & (req["start"] < 10.0)).sum())
    with pytest.raises(ScenarioError, match="shorter than duration"):
        replicate(spec, 1, warmup="20s", executor="serial")
    with pytest.raises(ScenarioError, match="or 'auto'"):
        replicate(spec, 1, warmup="soon", executor="serial")


def two_workloads(warmup: Any) -> dict[str, Any]:
    """Two Poisson workloads (60/s and 40/s) into one M/M/1 server."""
    spec = mmc(60.0, duration=10.0, warmup=warmup)
    spec["workloads"]["batch"] = {"arrivals": {"process": "poisson", "rate": 40.0},
                                  "target": "api"}
    return spec


def test_warmup_as_a_number_of_requests_starts_at_the_nth_creation() -> None:
    n = 300
    res = simulator.simulate(simulator.parse_scenario(two_workloads(f"{n} requests")), seed=7)
    start = np.sort(res.requests["start"].to_numpy())
    t0 = res.window[0]
    assert t0 == start[n]  # index n over both workloads: the first n are left out
    assert 2.0 < t0 < 4.0  # ~300 requests at 100/s
    rows = workload_rows(res.summary())
    assert set(rows["name"]) == {"users", "batch"}
    assert rows["count"].sum() == (start < 10.0).sum() - n
    assert len(res.measured_requests()) == (start < 10.0).sum() - n
    # the same rule from the experiment option, on a scenario that says 0 s, and a duration
    reps = replicate(two_workloads(0.0), 1, seed=7, warmup=f"{n} requests",
                     executor="serial", progress=False)
    row = workload_rows(reps.runs).set_index("name")
    assert (row["warmup"] == t0).all()
    assert row["count"].sum() == (start < 10.0).sum() - n
    assert reps.meta["warmup"] == f"{n} requests"
    # 0 requests: the window starts at the first request
    zero = simulator.simulate(simulator.parse_scenario(two_workloads("0 requests")), seed=7)
    assert zero.window[0] == start[0]


def test_warmup_in_requests_is_validated() -> None:
    for bad, message in (("-5 requests", "whole number at least 0"),
                         ("2.5 requests", "whole number at least 0")):
        with pytest.raises(ScenarioError, match=message):
            simulator.parse_scenario(two_workloads(bad))
        with pytest.raises(ScenarioError, match=message):
            replicate(two_workloads(0.0), 1, warmup=bad, executor="serial")
    streaming = {**two_workloads("100 requests"), "metrics": {"requests": "streaming"}}
    with pytest.raises(ScenarioError, match=r"100 requests .*needs the requests table"):
        simulator.parse_scenario(streaming)
    streaming["warmup"] = 0.0
    with pytest.raises(ScenarioError, match="needs the requests table"):
        replicate(streaming, 1, warmup="100 requests", executor="serial")
    # far more than the run can create (about 1,000 here): refused at validation
    with pytest.raises(ScenarioError, match=r"warmup \(1000000 requests\) is more than"):
        simulator.parse_scenario(two_workloads("1M requests"))
    # more than this run created, within the estimate's margin: said when the window is asked
    res = simulator.simulate(simulator.parse_scenario(two_workloads("1300 requests")), seed=7)
    with pytest.raises(ScenarioError, match="warmup: 1300 requests, but the run created"):
        res.summary()


# --------------------------------------------------------------------------------------------
# comparisons


def test_common_random_numbers_make_the_paired_interval_narrower() -> None:
    cmp = compare(LB, vary({STRATEGY: ["least_connections", "power_of_two"]}), 5,
                  overrides=LB_SHORT, executor="serial", progress=False)
    ratios = {}
    for metric in ("mean", "p50", "throughput"):
        paired = cmp.difference(metric, "power_of_two")
        unpaired = cmp.unpaired_difference(metric, "power_of_two")
        assert paired.n == unpaired.n == 5
        assert paired.mean == pytest.approx(unpaired.mean)  # same estimate, other spread
        ratios[metric] = paired.half_width / unpaired.half_width
    assert ratios["mean"] < 0.9 and ratios["p50"] < 0.9
    assert ratios["throughput"] < 0.2  # both variants serve the very same arrivals


def test_variants_of_one_replication_see_the_same_requests() -> None:
    cmp = compare(LB, vary({STRATEGY: ["least_connections", "random"]}), 2,
                  overrides=LB_SHORT, executor="serial", progress=False)
    wl = workload_rows(cmp.runs).set_index(["variant", "replication"])
    for r in range(2):  # requests created in the window: the same arrivals in both variants
        assert wl.loc[("random", r), "count"] == wl.loc[("least_connections", r), "count"]
    assert wl.loc[("random", 0), "count"] != wl.loc[("random", 1), "count"]


def test_compare_cli_on_lb_strategies_prints_a_ranked_table_with_paired_intervals(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "cmp"
    code = main(["compare", str(LB), "--vary",
                 f"{STRATEGY}=round_robin,least_connections,power_of_two", "-n", "3",
                 "--set", "duration=20s", "--set", "warmup=5s", "--metric", "p99",
                 "--metric", "mean", "--executor", "serial", "--no-progress",
                 "--out", str(out_dir)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "3 variants x 3 replications" in out and "common random numbers" in out
    p99_block = out.split("users: p99 (ms)")[1].split("users: mean (ms)")[0]
    lines = [ln.split() for ln in p99_block.strip().splitlines()[1:]]
    # round robin overloads the half-speed machines: shown last, unranked; the baseline
    # becomes the first variant that reached a steady state
    assert [ln[:2] for ln in lines] == [["1", "least_connections"], ["2", "power_of_two"],
                                       ["-", "round_robin"]]
    assert lines[2][2] == "(unstable)"
    assert "baseline" in lines[0]
    assert "users: power_of_two trails least_connections at p99 by" in out
    assert "95% CI [+" in out
    # the folder: tables, resolved scenarios, seeds and versions
    table = pd.read_parquet(out_dir / "comparison.parquet")
    assert {"rank", "variant", "mean", "low", "high", "diff", "diff_low", "diff_high",
            "significant"} <= set(table.columns)
    runs = pd.read_parquet(out_dir / "runs.parquet")
    assert len(workload_rows(runs)) == 3 * 3
    assert list(runs.columns[:4]) == ["variant", "seed", "replication", "warmup"]
    meta = json.loads((out_dir / "manifest.json").read_text())
    assert meta["kind"] == "compare" and meta["seed"] == 7 and meta["replications"] == [0, 1, 2]
    assert meta["variants"]["power_of_two"] == [f"{STRATEGY}=power_of_two"]
    assert {"simulator", "numpy", "pandas", "simpy", "python"} <= set(meta["versions"])
    assert meta["code_version"].startswith(simulator.__version__)
    variant = json.loads((out_dir / "scenarios" / "power_of_two.json").read_text())
    assert variant["components"]["lb"]["strategy"] == "power_of_two"
    assert variant["duration"] == 20.0


VARIANTS_YAML = """\
name: fleet
duration: 6s
warmup: 1s
workloads:
  users:
    arrivals: {process: poisson, rate: 150/s}
    target: api
components:
  api: {kind: service, workers: 2, service_time: {dist: exponential, mean: 10ms}}
variants:
  two: []
  three: [components.api.workers=3]
  four_fast:
    - components.api.workers=4
    - "components.api.service_time={dist: exponential, mean: 5ms}"
"""


def test_compare_uses_the_variants_block(tmp_path: Path) -> None:
    path = tmp_path / "fleet.yaml"
    path.write_text(VARIANTS_YAML)
    cmp = compare(path, replications=2, executor="serial", progress=False)
    assert cmp.baseline == "two" and list(cmp.variants) == ["two", "three", "four_fast"]
    assert cmp.scenarios["four_fast"].components["api"].workers == 4
    table = cmp.table(["mean"])
    assert list(table["variant"]) == ["four_fast", "three", "two"]
    assert (table.set_index("variant").loc[["three", "four_fast"], "diff"] < 0).all()
    other = compare(path, replications=2, baseline="three", executor="serial", progress=False)
    assert other.baseline == "three"


def test_bad_variants_are_reported_with_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(VARIANTS_YAML.replace("workers=3", "wrokers=3")
                    + "  broken: [components.db.workers=2]\n")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert f"{path}:12: variants.three.0: variant 'three' gives an invalid scenario: " \
           "components.api.wrokers: unknown key 'wrokers'; did you mean 'workers'?" in err
    assert f"{path}:16: variants.broken.0: bad override 'components.db.workers=2': no key " \
           "'components.db'" in err
    assert main(["compare", str(path), "--executor", "serial"]) == 2
    assert "variants.three.0" in capsys.readouterr().err


def test_compare_cli_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(VARIANTS_YAML.split("variants:")[0])
    assert main(["compare", str(path), "--executor", "serial"]) == 2
    assert "nothing to compare" in capsys.readouterr().err
    assert main(["compare", str(path), "--vary", "components.api.workers"]) == 2
    assert "expected key.path=v1,v2" in capsys.readouterr().err
    assert main(["compare", str(path), "--vary", "components.api.wrkers=1,2"]) == 2
    assert "did you mean 'workers'" in capsys.readouterr().err
    assert main(["compare", str(path), "--vary", "components.api.workers=2,3",
                 "--baseline", "9"]) == 2
    assert "baseline '9' is not one of the variants (2, 3)" in capsys.readouterr().err
    assert main(["compare", str(path), "--vary", "components.api.workers=2,3",
                 "--scheduler", "tcp://127.0.0.1:1"]) == 2
    assert "--scheduler needs --executor dask" in capsys.readouterr().err
    assert main(["compare", str(path), "--vary", "components.api.workers=2,3",
                 "--metric", "p98"]) == 2
    assert "unknown --metric p98" in capsys.readouterr().err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "notes.txt").write_text("mine")
    assert main(["compare", str(path), "--vary", "components.api.workers=2,3",
                 "--out", str(junk)]) == 2
    assert "refusing to replace it" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(path), "--replications", "0"])
    assert exc.value.code == 2


# --------------------------------------------------------------------------------------------
# sweeps


GRID = {"components.api.workers": ["1", "2"], "workloads.users.arrivals.rate": ["40/s", "70/s"]}


def test_sweep_has_one_row_per_point_and_replication_with_the_parameters_as_columns() -> None:
    result = sweep(mmc(40.0, duration=5.0), GRID, 2, executor="serial", progress=False)
    table = result.table()
    assert len(table) == 4 * 2
    assert list(table.columns[:5]) == [*GRID, "seed", "replication", "warmup"]
    assert table["components.api.workers"].dtype == np.int64  # YAML values keep their type
    assert list(table["components.api.workers"]) == [1, 1, 1, 1, 2, 2, 2, 2]
    assert list(table["workloads.users.arrivals.rate"]) == ["40/s", "40/s", "70/s", "70/s"] * 2
    assert list(table["replication"]) == [0, 1] * 4
    assert (table["name"] == "users").all()
    # more work, or fewer servers, means longer waits
    means = table.groupby(list(GRID))["mean"].mean()
    assert means[(1, "70/s")] > means[(1, "40/s")] > means[(2, "40/s")]
    iv = result.intervals(["mean"])
    assert len(iv) == 4 and {"low", "high"} <= set(iv.columns)


def test_sweep_rerun_reuses_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = sweep(mmc(40.0, duration=5.0), GRID, 2, cache=cache, executor="serial",
                  progress=False)
    again = sweep(mmc(40.0, duration=5.0), GRID, 2, cache=cache, executor="serial",
                  progress=False)
    assert (first.computed, first.reused) == (8, 0)
    assert (again.computed, again.reused) == (0, 8)
    pd.testing.assert_frame_equal(first.runs, again.runs)
    # a new point runs; the old ones are reused; the same scenario written with other units too
    grid = {**GRID, "workloads.users.arrivals.rate": ["40", "70/s", "100/s"]}
    more = sweep(mmc(40.0, duration=5.0), grid, 2, cache=cache, executor="serial",
                 progress=False)
    assert (more.computed, more.reused) == (4, 8)


class InterruptAfter(SerialExecutor):
    """A serial executor that is interrupted (as by Ctrl-C) after ``n`` runs."""

    def __init__(self, n: int) -> None:
        self.n = n

    def map_unordered(self, fn: Callable[[T], R], items: Sequence[T]) -> Iterator[tuple[int, R]]:
        for k, pair in enumerate(super().map_unordered(fn, items)):
            if k == self.n:
                raise KeyboardInterrupt
            yield pair


def test_interrupted_sweep_resumes_from_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        sweep(mmc(40.0, duration=5.0), GRID, 2, cache=cache, executor=InterruptAfter(3),
              progress=False)
    resumed = sweep(mmc(40.0, duration=5.0), GRID, 2, cache=cache, executor="serial",
                    progress=False)
    assert (resumed.computed, resumed.reused) == (5, 3)
    fresh = sweep(mmc(40.0, duration=5.0), GRID, 2, executor="serial", progress=False)
    pd.testing.assert_frame_equal(resumed.runs, fresh.runs)


@pytest.mark.timeout(180)  # starts processes: fail rather than hang
def test_killed_sweep_resumes(tmp_path: Path) -> None:
    scenario = tmp_path / "lb.yaml"
    scenario.write_text(LB.read_text())
    cache = tmp_path / "cache"
    argv = ["sweep", str(scenario), "--grid", f"{STRATEGY}=least_connections,power_of_two",
            "--grid", "workloads.users.arrivals.rate=500/s,600/s,700/s", "-n", "2",
            "--set", "duration=10s", "--set", "warmup=2s", "--executor", "serial",
            "--cache", str(cache), "--no-progress"]
    proc = subprocess.Popen([sys.executable, "-m", "simulator", *argv], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60  # a guard against a hang, not a measurement
        while len(list(cache.glob("*/*/meta.json"))) < 2 and time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    done = len(list(cache.glob("*/*/meta.json")))
    assert 2 <= done <= 12
    # a new process, as a user would rerun it (the cache key includes the code version, which
    # each process reads from the source files)
    rerun = subprocess.run([sys.executable, "-m", "simulator", *argv], cwd=tmp_path,
                           capture_output=True, text=True, check=True)
    assert f"6 points x 2 replications = 12 runs: {12 - done} run now, {done} reused" \
        in rerun.stdout


def test_sweep_cli_writes_the_tidy_table(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "mm1.yaml"
    path.write_text(json.dumps(mmc(40.0, duration=4.0)))  # JSON is YAML
    out_dir = tmp_path / "out"
    monkeypatch.chdir(tmp_path)  # the default cache goes to ./.simulator-cache
    argv = ["sweep", str(path), "--grid", "workloads.users.arrivals.rate=30,60", "-n", "2",
            "--executor", "serial", "--out", str(out_dir), "--format", "csv", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "2 points x 2 replications = 4 runs: 4 run now, 0 reused" in out
    assert "mean (ms)" in out and "±" in out
    table = pd.read_csv(out_dir / "sweep.csv")
    assert len(table) == 4 and table.columns[0] == "workloads.users.arrivals.rate"
    assert (tmp_path / ".simulator-cache").is_dir()
    assert main([*argv, "--no-cache"]) == 0
    assert "4 run now, 0 reused" in capsys.readouterr().out
    assert main(["sweep", str(path), "--grid", "seed=1,2"]) == 2
    assert "also a column of the results" in capsys.readouterr().err
    assert main(["sweep", str(path)]) == 2
    assert "nothing to sweep" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# capacity


def erlang_c_rate(threshold: float, mu: float, c: int, p: float = 0.99) -> float:
    """Arrival rate at which the M/M/c ``p`` quantile of the response time is ``threshold``."""
    return float(optimize.brentq(
        lambda lam: th.mmc_response_quantile(lam, mu, c, p) - threshold, 1e-6, c * mu * 0.9999))


def test_capacity_finds_the_mmc_rate_where_p99_crosses_the_threshold() -> None:
    expected = erlang_c_rate(0.1, 100.0, 2)  # about 151.6/s
    result = capacity(mmc(100.0, workers=2, duration=100.0, warmup=10.0),
                      "workloads.users.arrivals.rate", 50.0, 195.0, "p99 < 100ms",
                      confidence=None, replications=4, tolerance=1.0, executor="serial",
                      progress=False)
    assert result.value is not None and result.failing is not None
    assert result.failing - result.value <= 1.0
    assert result.value == pytest.approx(expected, rel=0.03)
    ev = result.evaluations
    assert list(ev.columns) == ["workloads.users.arrivals.rate", "passes", "p99_mean",
                                "p99_bound", "steady"]
    assert ev.loc[ev["passes"], "p99_bound"].max() < 0.1 <= ev.loc[~ev["passes"],
                                                                   "p99_bound"].min()


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_capacity_at_95_percent_confidence_is_close_and_conservative() -> None:
    expected = erlang_c_rate(0.1, 100.0, 2)
    result = capacity(mmc(100.0, workers=2, duration=200.0, warmup=20.0),
                      "workloads.users.arrivals.rate", 50.0, 195.0, "p99 < 100ms",
                      confidence=0.95, replications=5, tolerance=0.5, executor="processes",
                      progress=False)
    assert result.value is not None
    assert expected * 0.94 <= result.value <= expected * 1.01


def test_capacity_finds_the_fewest_servers() -> None:
    lam, mu, threshold = 250.0, 100.0, 0.07
    p99 = {c: th.mmc_response_quantile(lam, mu, c, 0.99) for c in range(3, 7)}
    expected = min(c for c, q in p99.items() if q < threshold)  # 98.9 ms with 3, 50.7 with 4
    assert expected == 4 and p99[4] < 0.8 * threshold and p99[3] > 1.3 * threshold
    result = capacity(mmc(lam, workers=3, duration=30.0, warmup=3.0), "components.api.workers",
                      1, 12, "p99 < 70ms and errors < 0.1%", find="min", replications=3,
                      executor="serial", progress=False)
    assert result.value == expected and result.failing == expected - 1
    assert result.meta["integer"] is True
    assert result.runs["components.api.workers"].dtype == np.int64


def test_capacity_minimizing_cost_prices_every_point_and_names_the_cheapest() -> None:
    # replicas single-worker instances behind the random spread: each an M/M/1 at lam / c,
    # p99 = ln(100) / (mu - lam / c): 276 ms with 3, 123 ms with 4 (a 200 ms SLO: 4)
    lam, mu, threshold, price = 250.0, 100.0, 0.2, 0.36
    p99 = {c: math.log(100) / (mu - lam / c) for c in (3, 4)}
    assert p99[3] > 1.3 * threshold and p99[4] < 0.7 * threshold
    spec = mmc(lam, workers=1, duration=20.0, warmup=2.0)
    spec["components"]["api"].update(replicas=3, cost={"per_instance_hour": price})
    result = capacity(spec, "components.api.replicas", 1, 8, "p99 < 200ms", find="min",
                      minimize="cost", replications=2, executor="serial", progress=False)
    assert result.value == 4 and result.cheapest == 4
    ev = result.evaluations
    # a fixed fleet is billed for every instance over the measured window, exactly
    expected = ev["components.api.replicas"] * price * (20.0 - 2.0) / 3600.0
    np.testing.assert_allclose(ev["cost_mean"], expected, rtol=1e-12)
    with pytest.raises(simulator.ScenarioError, match="price"):
        capacity(mmc(lam, workers=1), "components.api.replicas", 1, 8, "p99 < 200ms",
                 find="min", minimize="cost", replications=2, executor="serial",
                 progress=False)


def test_capacity_reports_a_range_that_all_passes_or_all_fails() -> None:
    spec = mmc(50.0, duration=5.0)
    ok = capacity(spec, "workloads.users.arrivals.rate", 10.0, 30.0, "p99 < 1s",
                  replications=2, executor="serial", progress=False)
    assert ok.value == 30.0 and ok.failing is None and len(ok.evaluations) == 2
    bad = capacity(spec, "workloads.users.arrivals.rate", 10.0, 30.0, "p99 < 1ms",
                   replications=2, executor="serial", progress=False)
    assert bad.value is None and bad.failing == 10.0 and len(bad.evaluations) == 1


def test_capacity_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mm2.yaml"
    path.write_text(json.dumps(mmc(100.0, workers=2, duration=20.0, warmup=2.0)))
    out_dir = tmp_path / "cap"
    assert main(["capacity", str(path), "--param", "workloads.users.arrivals.rate",
                 "--low", "50/s", "--high", "190", "--slo", "p99 < 100ms and errors < 1%",
                 "-n", "2", "--tolerance", "10", "--executor", "serial", "--no-progress",
                 "--out", str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "highest workloads.users.arrivals.rate meeting p99 < 100ms and errors < 1% at 95% " \
           "confidence:" in out
    assert "p99 upper 95%" in out
    ev = pd.read_parquet(out_dir / "evaluations.parquet")
    assert ev["passes"].iloc[0] and not ev["passes"].iloc[1]
    meta = json.loads((out_dir / "manifest.json").read_text())
    assert meta["kind"] == "capacity" and meta["slo"] == ["p99 < 100ms", "errors < 1%"]
    assert main(["capacity", str(path), "--param", "workloads.users.arrivals.rate",
                 "--low", "50", "--high", "190", "--slo", "p99 < fast"]) == 2
    assert "--slo: bad value in 'p99 < fast'" in capsys.readouterr().err


def test_parse_slo() -> None:
    conds = parse_slo("p99 < 200ms and errors < 0.1%, goodput >= 5k/s; mean<=0.05")
    assert [(c.metric, c.op, c.threshold) for c in conds] == [
        ("p99", "<", pytest.approx(0.2)), ("error_ratio", "<", pytest.approx(0.001)),
        ("goodput", ">=", 5000.0), ("mean", "<=", 0.05)]
    assert conds[0].holds(0.15) and not conds[0].holds(0.2) and not conds[0].holds(math.nan)
    assert conds[0].bound(np.array([0.1, np.nan]), 0.95) == math.inf  # a missing p99 fails
    assert conds[2].bound(np.array([5100.0, 5300.0, 5200.0]), None) == pytest.approx(5200.0)
    for text, message in [("p98 < 1s", "unknown metric 'p98'"), ("p99 200ms", "cannot read"),
                          ("p99 < 5%", "a percentage fits a ratio"), ("", "empty SLO")]:
        with pytest.raises(ScenarioError, match=message):
            parse_slo(text)


# --------------------------------------------------------------------------------------------
# executors, progress, command line


@pytest.mark.timeout(180)  # starts processes: fail rather than hang
def test_processes_executor_gives_the_same_tables_as_serial() -> None:
    variants = vary({"components.api.workers": [1, 2]})
    serial = compare(mmc(60.0, duration=5.0), variants, 3, executor="serial", progress=False)
    with ProcessExecutor(workers=2) as ex:
        procs = compare(mmc(60.0, duration=5.0), variants, 3, executor=ex, progress=False)
        again = sweep(mmc(60.0, duration=5.0), {"components.api.workers": [1, 2]}, 3,
                      executor=ex, progress=False)  # one pool serves several experiments
    pd.testing.assert_frame_equal(serial.runs, procs.runs)
    pd.testing.assert_frame_equal(serial.table(), procs.table())
    assert again.table()["mean"].tolist() == workload_rows(serial.runs)["mean"].tolist()


@pytest.mark.timeout(180)  # starts processes: fail rather than hang
def test_dask_executor_gives_the_same_tables_as_serial() -> None:
    # dask[distributed] is a dev dependency (pyproject.toml): missing, this fails, never skips
    spec = mmc(60.0, duration=5.0)
    grid = {"components.api.workers": [1, 2]}
    serial = sweep(spec, grid, 2, executor="serial", progress=False)
    with DaskExecutor(workers=1) as ex:  # a local cluster of one worker process
        dask = sweep(spec, grid, 2, executor=ex, progress=False)
        assert ex.describe() == {"executor": "dask", "scheduler": "local", "workers": 1}
    pd.testing.assert_frame_equal(serial.runs, dask.runs)


def test_progress_bar_shows_runs(capsys: pytest.CaptureFixture[str]) -> None:
    replicate(mmc(40.0, duration=2.0), 2, executor="serial", progress=True)
    err = capsys.readouterr().err
    assert "mm1 replications" in err and "2/2" in err
    replicate(mmc(40.0, duration=2.0), 2, executor="serial", progress=False)
    assert capsys.readouterr().err == ""


def test_replicate_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mm1.yaml"
    path.write_text(json.dumps(mmc(50.0, duration=6.0)))
    out_dir = tmp_path / "reps"
    assert main(["replicate", str(path), "-n", "3", "--warmup", "auto", "--metric", "mean",
                 "--metric", "p99", "--executor", "serial", "--no-progress", "--out",
                 str(out_dir)]) == 0
    out = capsys.readouterr().out
    assert "mm1: 3 replications (seed 1, warm-up " in out
    assert "mean (ms)" in out and "p99 (ms)" in out
    meta = json.loads((out_dir / "manifest.json").read_text())
    assert meta["warmup"] == "auto" and meta["replications"] == [0, 1, 2]
    assert json.loads((out_dir / "scenarios" / "scenario.json").read_text())["name"] == "mm1"
    intervals = pd.read_parquet(out_dir / "intervals.parquet")
    assert {"metric", "mean", "low", "high", "half_width"} <= set(intervals.columns)
    assert main(["replicate", str(path), "--warmup", "10s"]) == 2
    assert "shorter than duration" in capsys.readouterr().err


# --------------------------------------------------------------------------------------------
# further tables collected from every run


def _cached(capacity: int) -> dict[str, Any]:
    return {
        "duration": 20, "warmup": 5,
        "workloads": {"users": {"arrivals": {"process": "poisson", "rate": 200},
                                "keys": {"popularity": "zipf", "n": 1000, "s": 0.9},
                                "target": "c"}},
        "components": {"c": {"kind": "cache", "backing": "store", "capacity": capacity},
                       "store": {"kind": "service", "service_time": 0.001, "workers": 8}},
    }


def test_sweep_collects_cache_summaries_per_point() -> None:
    """A sweep over cache capacity returns each run's cache summary, tagged with its point;
    every row is the cache summary of that very run."""
    result = sweep(_cached(10), {"components.c.capacity": [10, 200]}, 2, seed=4,
                   executor="serial", progress=False, tables=["cache_summary"])
    caches = result.tables["cache_summary"]
    assert list(caches.columns[:4]) == ["components.c.capacity", "seed", "replication", "warmup"]
    for (cap, rep), got in caches.groupby(["components.c.capacity", "replication"]):
        direct = simulator.simulate(simulator.parse_scenario(_cached(int(cap))), seed=4,
                                    replication=int(rep)).cache_summary()
        assert got[direct.columns].reset_index(drop=True).equals(direct)
    rows = caches[caches["scope"] == "cache"]
    hit = rows.groupby("components.c.capacity")["hit_ratio"].mean()
    assert hit[200] > hit[10]


def test_replicate_and_compare_collect_tables(tmp_path: Path) -> None:
    reps = replicate(_cached(50), 2, executor="serial", progress=False,
                     tables=["cache_summary", "events"])
    # the steady-state findings come back from every run, asked for or not
    assert set(reps.tables) == {"cache_summary", "events", "findings"}
    assert sorted(reps.tables["cache_summary"]["replication"].unique()) == [0, 1]
    cmp = compare(_cached(50), {"small": [], "big": ["components.c.capacity=500"]}, 2,
                  executor="serial", progress=False, tables=["cache_summary"])
    table = cmp.tables["cache_summary"]
    assert set(table["variant"]) == {"small", "big"}
    written = cmp.write(tmp_path / "cmp", fmt="csv")
    assert (written / "cache_summary.csv").is_file()
    with pytest.raises(ScenarioError, match="did you mean 'cache_summary'"):
        replicate(_cached(50), 2, executor="serial", tables=["cache_sumary"])


def test_cli_table_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(_cached(50)))
    out_dir = tmp_path / "out"
    assert main(["replicate", str(path), "-n", "2", "--executor", "serial", "--no-progress",
                 "--table", "cache_summary", "--out", str(out_dir), "--format", "csv"]) == 0
    assert len(pd.read_csv(out_dir / "cache_summary.csv")) > 0
    capsys.readouterr()
    assert main(["replicate", str(path), "-n", "2", "--table", "nope"]) == 2
    assert "unknown table 'nope'" in capsys.readouterr().err
