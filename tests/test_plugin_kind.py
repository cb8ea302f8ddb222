"""A component kind from outside the simulator's package: found through its entry point, with
its own raw table, derived table and timeline event, in-process, in processes-executor
workers and from the CLI (``tests/plugin_kind/meterkind``)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import simulator
from simulator import registry

PLUGIN = Path(__file__).resolve().parent / "plugin_kind"
SCENARIO = PLUGIN / "scenario.yaml"
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def plugin(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The plug-in's folder on the import path (as a pip install would put it), here and in
    child processes."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(PLUGIN), str(ROOT), os.environ.get("PYTHONPATH", "")]))
    yield
    # a kind stays registered in this process: later tests in the same worker (the table
    # hashes of every shipped scenario) must not see its raw table
    if "meter" in registry.kinds():
        registry.unregister("meter")


def test_without_the_plugin_the_kind_is_a_located_error(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-m", "simulator", "validate", str(SCENARIO)],
                         capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert out.returncode == 2
    assert "scenario.yaml:" in out.stderr and "meter" in out.stderr


def test_the_kind_runs_in_process(plugin: None, tmp_path: Path) -> None:
    scenario = simulator.load_scenario(SCENARIO)
    assert registry.kind("meter").component_class().kind == "meter"
    r = simulator.simulate(scenario, seed=3)
    req = r.requests
    ok = req[req["status"] == "ok"]
    readings = r.meter_readings
    # every request served is one reading, no other
    assert len(readings) == len(ok) > 0
    assert set(readings["request_id"]) == set(ok["request_id"])
    # the crash (8 s to 9 s) refuses exactly the requests arriving while it lasts
    failed = req[req["status"] == "error"]
    assert len(failed) > 0
    assert failed["start"].between(8, 9).all()
    assert (req.loc[req["start"].between(8.001, 8.999), "status"] == "error").all()
    # the reset at 5 s sets meter[0] back: its first reading after it is 1
    after = readings[readings["time"] >= 5]
    assert list(readings.columns) == ["meter", "instance", "request_id", "time", "reading"]
    assert int(after.loc[after["instance"] == "meter[0]", "reading"].iloc[0]) == 1
    assert int(after.loc[after["instance"] == "meter[1]", "reading"].iloc[0]) > 100
    summary = r.meter_summary()
    assert int(summary["readings"].sum()) == len(readings)
    # written and read back like any table
    r.write(tmp_path / "out")
    assert (tmp_path / "out" / "meter_readings.parquet").is_file()
    assert (tmp_path / "out" / "meter_summary.parquet").is_file()
    back = simulator.Results.read(tmp_path / "out")
    pd.testing.assert_frame_equal(back.meter_readings, readings)


def test_the_kind_runs_in_worker_processes(plugin: None) -> None:
    from simulator.experiment import ProcessExecutor, compare

    with ProcessExecutor(workers=2) as executor:
        cmp = compare(SCENARIO, replications=2, executor=executor, tables=["meter_summary"])
    collected = cmp.tables["meter_summary"]
    assert set(collected["variant"]) == set(cmp.variants) == {"base", "slow"}
    assert (collected["readings"] > 0).all()
    assert len(collected) == 2 * 2 * 2  # two instances, two replications, two variants


def test_the_kind_runs_from_the_cli(plugin: None, tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "simulator", "run", str(SCENARIO),
                          "--out", str(tmp_path / "run")], capture_output=True, text=True,
                         env=os.environ, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "meters (readings per instance)" in out.stdout
    assert (tmp_path / "run" / "meter_readings.parquet").is_file()
    kinds = subprocess.run([sys.executable, "-m", "simulator", "kinds"], capture_output=True,
                           text=True, env=os.environ, cwd=tmp_path, timeout=120)
    assert "meter: A counter that serves requests" in kinds.stdout
