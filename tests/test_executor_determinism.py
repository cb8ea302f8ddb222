"""Every shipped scenario gives identical tables on the serial, processes and Dask executors.

Each scenario of ``scenarios/`` (shortened to at most ``LONGEST`` simulated seconds, its
faults moved earlier to fall inside the run) is replicated twice through
:func:`simulator.experiment.replicate` on each executor, asking for every table a run can send
back (raw and derived). The three experiments are three independent runs: the serial
one in this process, the others in worker processes that import, build and seed everything
themselves and send their tables back pickled. They must agree bit for bit, table by table
(``benchmarks/table_hashes.py:table_hash``: columns, dtypes, values, row order). That two runs
in one process agree, and agree with earlier code, is ``tests/test_table_hashes.py``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import simulator
from simulator.experiment import DaskExecutor, Executor, ProcessExecutor, replicate
from simulator.experiment.runs import run_tables

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from table_hashes import table_hash  # noqa: E402

SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
#: every table a table-mode run sends back (the other two exist in streaming runs only)
TABLES = [t for t in run_tables() if t not in ("request_stats", "latency_histogram")]
REPLICATIONS = 2
#: simulated seconds kept after the last fault (and at least this long in all)
TAIL = 4.0
#: no shortened run is longer than this (s): three passes over every scenario must stay cheap
LONGEST = 10.0


def short(path: Path) -> list[str]:
    """Overrides that shorten a scenario to a few seconds but keep its faults inside the run."""
    scenario = simulator.load_scenario(path)
    last = max([f.at for f in scenario.faults] + [0.0])
    duration = min(scenario.duration, max(TAIL, last + TAIL), LONGEST)
    # faults keep their order and spacing, squeezed to start before the shortened end
    squeeze = min(1.0, (duration - TAIL) / last) if last > 0 else 1.0
    moved = [f"faults.{i}.at={f.at * squeeze}" for i, f in enumerate(scenario.faults)
             if squeeze < 1.0]
    return [f"duration={duration}", f"warmup={min(scenario.warmup_time, duration / 4)}", *moved]


def fingerprints(executor: str | Executor) -> Iterator[tuple[str, dict[str, str]]]:
    """(scenario, hash of each table of its experiment) for every shipped scenario."""
    for path in SCENARIOS:
        rep = replicate(path, REPLICATIONS, overrides=short(path), tables=TABLES,
                        executor=executor, progress=False)
        tables: dict[str, pd.DataFrame] = {"runs": rep.runs, **rep.tables}
        yield path.name, {name: table_hash(df) for name, df in sorted(tables.items())}


@pytest.fixture(scope="module")
def serial() -> dict[str, dict[str, str]]:
    return dict(fingerprints("serial"))


def test_the_experiments_cover_every_table() -> None:
    """The comparison is not vacuous: every scenario runs, and each table is sent back."""
    assert len(SCENARIOS) >= 17
    assert {"requests", "spans", "samples", "events", "findings", "summary"} <= set(TABLES)


@pytest.mark.timeout(600)  # starts worker processes: fail rather than hang
def test_processes_executor_matches_serial(serial: dict[str, dict[str, str]]) -> None:
    with ProcessExecutor(workers=2) as ex:
        got = dict(fingerprints(ex))
    assert got == serial


@pytest.mark.timeout(600)  # starts a local Dask cluster: fail rather than hang
def test_dask_executor_matches_serial(serial: dict[str, dict[str, str]]) -> None:
    # dask[distributed] is a dev dependency (pyproject.toml): missing, this fails, never skips
    with DaskExecutor(workers=2) as ex:
        got = dict(fingerprints(ex))
    assert got == serial


def test_workers_running_other_code_are_refused() -> None:
    """A remote cluster whose workers run other simulator code would return other tables."""
    from simulator.experiment import ExecutorError, code_version
    from simulator.experiment.executors import check_versions

    check_versions({"tcp://a:1": code_version(), "tcp://b:1": code_version()})  # same: fine
    with pytest.raises(ExecutorError, match=r"1 of 2 Dask worker\(s\) run other simulator code"):
        check_versions({"tcp://a:1": code_version(), "tcp://b:1": "0.0.1+deadbeef"})


@pytest.mark.timeout(120)
def test_an_unreachable_scheduler_is_a_clear_error() -> None:
    """`--scheduler` to nowhere: exit 2 with the address and the reason, no traceback."""
    import subprocess

    spec = ROOT / "scenarios" / "quickstart.yaml"
    proc = subprocess.run(
        [sys.executable, "-m", "simulator", "replicate", str(spec), "-n", "2", "--set",
         "duration=2s", "--set", "warmup=0s", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:9"],
        capture_output=True, text=True, timeout=110)
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:9" in proc.stderr
    assert "Traceback" not in proc.stderr
