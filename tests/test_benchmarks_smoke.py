"""Smoke tests of ``benchmarks/run.py`` (``make bench``), its fast baselines, and the other
benchmarks.

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


def test_quick_run_checks_agreement_and_reports_every_case(tmp_path: Path) -> None:
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
    assert out.count("-> agree") == 3 and "DISAGREE" not in out, out  # 2 cachedb, 1 mmc8
    assert "load average (1, 5, 15 min): before" in out
    assert out.count("no verdict (--quick)") == 4, out  # whole and in-process, 2 systems
    assert out.count("at loads [") == 8, out

    table = pd.read_csv(csv)
    assert list(zip(table["system"], table["impl"], strict=True)) == [
        (s, i) for s in ("cachedb", "mmc8") for i in ("fast", "idiomatic", "framework")]
    assert (table["requests"] > 0).all()
    assert (table["whole_cpu_s"] > table["in_process_cpu_s"]).all()
    events = table.set_index(["system", "impl"])["events_per_request"]
    # fast M/M/c: an arrival and a service end per customer (33 process starts aside)
    assert events["mmc8", "fast"] == pytest.approx(2.0, rel=0.01)
    # idiomatic: arrival, process start, request, service, release, process end
    assert events["mmc8", "idiomatic"] == pytest.approx(6.0, rel=0.01)
    # fast cachedb: 2 + one query end per miss (about two thirds miss once warm)
    assert 2.5 < events["cachedb", "fast"] < 3.0
    assert 2.0 <= events["mmc8", "framework"] < 3.0


def test_fast_mmc_is_the_idiomatic_model_draw_for_draw() -> None:
    """Same seed, same streams: the fast M/M/c must complete the same customers with the
    same latencies as the Resource-and-Process one (exact equality, not a tolerance)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import baseline_mmc
    import fast_mmc

    for seed in (1, 2):
        fast = fast_mmc.run(14_400.0, 0.5, seed, 8)
        idiomatic = baseline_mmc.run(14_400.0, 0.5, seed, 8, count_events=False)
        assert fast["requests"] == idiomatic["requests"] > 6000
        assert fast["mean_latency"] == pytest.approx(idiomatic["mean_latency"], rel=1e-12)
        assert fast["p99_latency"] == pytest.approx(idiomatic["p99_latency"], rel=1e-12)


def test_the_three_mmc_worker_styles_serve_the_same_customers() -> None:
    """``fast_variants.py``: Store workers, succeed-woken workers and the Handoff ones draw
    the same variates in the same order, so they must agree exactly."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import fast_variants

    runs = [fast_variants.store_run(14_400.0, 0.3, 5), fast_variants.succeed_run(14_400.0, 0.3, 5),
            fast_variants.fast_mmc.run(14_400.0, 0.3, 5, 8)]
    assert len({r["requests"] for r in runs}) == 1 and runs[0]["requests"] > 3000
    assert all(r["mean_latency"] == pytest.approx(runs[0]["mean_latency"], rel=1e-12)
               for r in runs)


def test_fast_cachedb_shards_keys_as_the_framework_does() -> None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import fast_cachedb

    from simulator.components.database.sharding import ShardMap

    shards = ShardMap("mod", 4)
    assert fast_cachedb.shard_table(2000, 4) == [shards.shard_of(k) for k in range(2000)]


def test_step_counter_matches_the_baselines_own_count() -> None:
    bench = _load_run()
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import baseline_mmc
    import fast_mmc

    original = simpy.core.Environment.step
    for run in (lambda c: baseline_mmc.run(5600.0, 0.2, 3, count_events=c),
                lambda c: fast_mmc.run(5600.0, 0.2, 3, 4, count_events=c)):
        counted = run(True)
        with bench.counting_steps() as count:
            plain = run(False)
        assert simpy.core.Environment.step is original
        assert plain["requests"] == counted["requests"]
        assert count[0] == counted["events"]


def test_disagreeing_models_stop_before_any_timing(monkeypatch: pytest.MonkeyPatch,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """A framework 10% slower than the baseline, with 1% seed-to-seed noise, is caught."""
    import numpy as np

    bench = _load_run()
    noise = np.random.default_rng(0)

    def prepare(system: str, impl: str, duration: float):  # type: ignore[no-untyped-def]
        scale = 1.1 if impl == "framework" else 1.0

        def go(seed: int, warmup: float = 0.0) -> dict[str, float]:
            value = 0.001 * scale * (1 + 0.01 * noise.standard_normal())
            return {"steady_mean_latency": value, "steady_hit_ratio": 0.34}
        return go

    def no_timing(*args: object, **kwargs: object) -> None:
        raise AssertionError("timed after a disagreement")

    monkeypatch.setattr(bench.timed_run, "prepare", prepare)
    monkeypatch.setattr(bench, "events_per_request", no_timing)
    monkeypatch.setattr(bench, "rounds", no_timing)
    assert bench.main(["--quick"]) == 1
    out = capsys.readouterr().out
    assert "DISAGREE" in out and "no timing" in out


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
