"""Smoke test of ``benchmarks/run.py`` (``make bench``): it runs and reports both systems.

No timing assertions: timings belong to the benchmark itself, not to the test suite.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
import simpy

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT / "benchmarks" / "run.py"


def _load_run() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_run", RUN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_quick_run_prints_both_systems(tmp_path: Path) -> None:
    csv = tmp_path / "bench.csv"
    proc = subprocess.run(
        [sys.executable, str(RUN), "--quick", "--csv", str(csv)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    rows = [line.split() for line in out.splitlines()]
    for system in ("p2c", "mmc", "cachedb"):
        assert [system, "hand-written"] in [r[:2] for r in rows], out
    assert sum(r[:1] == ["framework"] for r in rows) == 3, out
    assert "spans off" in out

    table = pd.read_csv(csv, index_col=["system", "implementation"])
    assert list(table.index) == [
        ("p2c", "hand-written"),
        ("p2c", "framework"),
        ("mmc", "hand-written"),
        ("mmc", "framework"),
        ("cachedb", "hand-written"),
        ("cachedb", "framework"),
    ]
    assert (table["requests"] > 0).all()
    events = table["events_per_request"]
    for system in ("p2c", "mmc"):
        # a Process per request in the baselines: arrival timeout, process start, resource
        # request, service timeout, release, process end (2% for requests cut off at the end)
        assert events[system, "hand-written"] == pytest.approx(6.0, rel=0.02), system
        # the framework: arrival and service timers, plus a wake-up for those that wait
        assert 2.0 <= events[system, "framework"] < 3.0, system
    for system in ("p2c", "mmc", "cachedb"):  # the README's claim: fewer events per request
        assert events[system, "framework"] < events[system, "hand-written"] / 1.5, system


def test_step_counter_matches_the_baselines_own_count() -> None:
    bench = _load_run()
    original = simpy.core.Environment.step
    counted = bench.baseline_mmc.run(5600.0, 0.2, 3, count_events=True)
    with bench.counting_steps() as count:
        plain = bench.baseline_mmc.run(5600.0, 0.2, 3, count_events=False)
    assert simpy.core.Environment.step is original
    assert plain["requests"] == counted["requests"]
    assert count[0] == counted["events"]


def test_fleet_size_reports_every_size_and_the_ratio() -> None:
    """``benchmarks/fleet_size.py`` (``make bench-fleet``) on two tiny fleets, two strategies."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "fleet_size.py"), "--repeat", "1",
         "--duration", "0.05", "--skip", "0.01", "--sizes", "8", "16", "--only", "least"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "load average" in out
    rows = [line.split() for line in out.splitlines()
            if line.startswith(("least_connections", "least_response_time"))]
    assert [r[0] for r in rows] == ["least_connections", "least_response_time"]
    # name, one figure per size, the ratio (no sign check: at these tiny durations the
    # figure is mostly noise)
    assert all(len(r) == 4 and all(isinstance(float(x), float) for x in r[1:]) for r in rows)


def test_service_internals_reports_each_case_and_its_ratio() -> None:
    """``benchmarks/service_internals.py`` (``make bench-internals``), one tiny round."""
    out = _tiny_round("service_internals.py")
    assert "load average" in out
    rows = [line.split() for line in out.splitlines()
            if line.startswith(("simple", "thread_pool ", "event_loop "))]
    assert [r[0] for r in rows] == ["simple", "thread_pool", "event_loop"]
    assert all(len(r) == 3 and all(isinstance(float(x), float) for x in r[1:]) for r in rows)
    assert out.count("verdict:") == 2


def test_overload_controls_reports_both_cases_and_a_verdict() -> None:
    """``benchmarks/overload_controls.py`` (``make bench-overload``), one tiny round."""
    out = _tiny_round("overload_controls.py")
    assert "load average" in out and "ratio controlled / plain: median" in out
    assert out.count("verdict:") == 1
    rows = [line for line in out.splitlines() if line.startswith(("plain", "controlled"))]
    assert len(rows) == 2 and all(float(r.split()[-1]) > 0 for r in rows)


def _tiny_round(script: str) -> str:
    """The output of one tiny round (T = 0.05 s) of a marginal-CPU benchmark script."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), "--repeat", "1", "--duration",
         "0.05"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
