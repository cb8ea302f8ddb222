"""Arrivals replayed from a trace: exact, streamed, checked at load, verified before a run.

The replay's acceptance is exactness: the requests table holds one request per trace row,
created at the row's time (its offset from the first row), with the row's operation and key;
so the arrival count and every inter-arrival gap are the trace's, exactly (no tolerance).
"""

from __future__ import annotations

import csv
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import simulator
from simulator.cli import main
from simulator.tracefile import TraceError, rows

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "trace_replay.yaml"
TRACE = ROOT / "scenarios" / "traces" / "checkout.csv"


def _trace_times(path: Path, column: str, scale: float) -> list[float]:
    with path.open(newline="") as fh:
        raw = [float(r[column]) * scale for r in csv.DictReader(fh)]
    return [x - raw[0] for x in raw]


def test_the_shipped_trace_is_replayed_exactly() -> None:
    r = simulator.simulate(simulator.load_scenario(SCENARIO))
    req = r.requests.sort_values("request_id")
    times = _trace_times(TRACE, "timestamp_ms", 1e-3)
    duration = r.scenario.duration
    expected = [t for t in times if t < duration]
    assert len(req) == len(expected) == len(times)  # the trace spans the run
    assert req["start"].tolist() == expected  # same floats: every gap is the trace's
    with TRACE.open(newline="") as fh:
        table = list(csv.DictReader(fh))
    assert req["op"].astype(str).tolist() == [row["op"] for row in table]
    assert req["key"].tolist() == [int(row["user_id"]) for row in table]


def _write(tmp_path: Path, text: str, trace: str, extra: str = "") -> Path:
    (tmp_path / "t.csv").write_text(trace)
    path = tmp_path / "s.yaml"
    path.write_text("name: t\nduration: 10s\nworkloads:\n  w:\n    arrivals:\n"
                    f"      process: trace\n      file: t.csv\n{extra}    target: api\n"
                    "components:\n  api: {kind: service, service_time: 1ms}\n" + text)
    return path


@pytest.mark.parametrize(("trace", "extra", "message"), [
    ("t\n1\n3\n2\n", "", "line 4: time 2 is earlier than the row before"),
    ("t\n1\nx\n", "", "line 3: time 'x' is not a number"),
    ("t\n1\ninf\n", "", "line 3: time 'inf' is not finite"),
    ("t\n", "", "no arrivals"),
    ("t\n1\n", "      column: when\n", "no column 'when' (column)"),
    ("t,k\n1,a\n", "      key_column: k\n", "line 2: key 'a' is not an integer"),
    ("t\n5\n", "      origin: zero\n      unit: ms\n", None),
])
def test_a_bad_trace_is_refused_at_load_with_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], trace: str, extra: str,
        message: str | None) -> None:
    path = _write(tmp_path, "", trace, extra)
    code = main(["validate", str(path)])
    err = capsys.readouterr().err
    if message is None:
        assert code == 0, err
        return
    assert code == 2 and f"{path}:7: workloads.w.arrivals.file: trace 't.csv': " in err, err
    assert message in err and "Traceback" not in err


def test_a_missing_trace_and_a_batch_are_refused(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path, "", "t\n1\n")
    (tmp_path / "t.csv").unlink()
    assert main(["validate", str(path)]) == 2
    assert "cannot read trace 't.csv'" in capsys.readouterr().err
    path = _write(tmp_path, "", "t\n1\n", "    batch: 3\n")
    assert main(["validate", str(path)]) == 2
    assert "a trace replays each recorded arrival" in capsys.readouterr().err


def test_a_trace_changed_after_loading_is_refused_by_the_run(tmp_path: Path) -> None:
    path = _write(tmp_path, "", "t\n0\n1\n2\n")
    scenario = simulator.load_scenario(path)
    assert scenario.workloads["w"].arrivals.rows == 3
    (tmp_path / "t.csv").write_text("t\n0\n1\n2\n3\n")
    with pytest.raises(simulator.TopologyError, match="changed since the scenario was loaded"):
        simulator.simulate(scenario)


def test_the_reader_streams_without_holding_the_trace(tmp_path: Path) -> None:
    """A 200,000-row trace is read row by row: the reader's peak allocation stays a small
    fraction of the file (not a timing: tracemalloc counts bytes)."""
    path = tmp_path / "big.csv"
    times = np.cumsum(np.random.default_rng(1).exponential(1e-3, 200_000))
    path.write_text("t\n" + "\n".join(f"{t:.6f}" for t in times) + "\n")
    tracemalloc.start()
    n = sum(1 for _ in rows(path, None, "s", None, None))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 200_000
    assert peak < path.stat().st_size / 20, (peak, path.stat().st_size)


def test_trace_errors_carry_their_line() -> None:
    assert TraceError("x", 7).row == 7 and str(TraceError("x", 7)) == "line 7: x"


def test_a_parquet_trace_replays_as_its_csv_does(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import pandas as pd

    frame = pd.read_csv(TRACE)
    frame.head(2000).to_parquet(tmp_path / "t.parquet")
    frame.head(2000).to_csv(tmp_path / "t.csv", index=False)
    runs = {}
    for suffix in ("parquet", "csv"):
        path = tmp_path / f"{suffix}.yaml"
        path.write_text(SCENARIO.read_text().replace("traces/checkout.csv", f"t.{suffix}")
                        .replace("duration: 90s", "duration: 30s"))
        runs[suffix] = simulator.simulate(simulator.load_scenario(path)).requests
    assert len(runs["parquet"]) > 1000
    for column in ("start", "op", "key", "latency"):
        assert runs["parquet"][column].tolist() == runs["csv"][column].tolist(), column
    frame.iloc[[0, 2, 1]].to_parquet(tmp_path / "t.parquet")  # out of order at its 3rd row
    assert main(["validate", str(tmp_path / "parquet.yaml")]) == 2
    assert "line 4: time" in capsys.readouterr().err
