"""Nothing lost: results are written whatever happens to standard output, a write that fails
says so with a non-zero exit, killed writes leave nothing behind, and directories follow the
user's umask (issue 13, item 1)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

import simulator
from simulator.outdir import PARTIAL, replacing

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--set", "duration=3s", "--set", "warmup=1s"]


def _closed_stdout(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the CLI with a standard output whose reader has gone before anything is printed
    (what ``| head -1`` does to every line after the first)."""
    proc = subprocess.Popen([sys.executable, "-m", "simulator", *argv], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()
    err = proc.stderr.read()
    code = proc.wait(timeout=300)
    return subprocess.CompletedProcess(argv, code, "", err)


def test_run_writes_its_results_whole_when_nobody_reads_stdout(tmp_path: Path) -> None:
    out = tmp_path / "res"
    done = _closed_stdout(["run", str(ROOT / "scenarios" / "quickstart.yaml"), *QUICK,
                           "--out", str(out)], ROOT)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    written = simulator.Results.read(out)
    direct = simulator.simulate(simulator.load_scenario(
        ROOT / "scenarios" / "quickstart.yaml", ["duration=3s", "warmup=1s"]))
    assert written.requests.equals(direct.requests)
    assert pd.read_parquet(out / "summary.parquet").equals(direct.summary())


def test_sweep_writes_its_results_whole_when_nobody_reads_stdout(tmp_path: Path) -> None:
    out = tmp_path / "sweep"
    done = _closed_stdout(["sweep", str(ROOT / "scenarios" / "quickstart.yaml"), *QUICK,
                           "--grid", "components.api.workers=4,8", "-n", "2", "--no-cache",
                           "--no-progress", "--out", str(out)], ROOT)
    assert done.returncode == 0, done.stderr
    runs = pd.read_parquet(out / "runs.parquet")
    assert sorted(runs["components.api.workers"].unique()) == [4, 8]


def test_a_run_whose_output_cannot_be_written_fails_with_the_reason(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = _closed_stdout(["run", str(ROOT / "scenarios" / "quickstart.yaml"), *QUICK,
                           "--out", str(blocker / "res")], ROOT)
    assert done.returncode == 2
    assert "cannot write" in done.stderr and "Traceback" not in done.stderr


def test_stale_partial_directories_of_killed_writes_are_removed(tmp_path: Path) -> None:
    target = tmp_path / "res"
    dead = tmp_path / f".res{PARTIAL}999999999-abc"  # no such process
    dead.mkdir()
    (dead / "half.parquet").write_text("x")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".res{PARTIAL}{sleeper.pid}-def"  # a write still going on
        live.mkdir()
        with replacing(target) as tmp:
            (tmp / "manifest.json").write_text("{}")
        assert not dead.exists()
        assert live.exists()
        assert (target / "manifest.json").is_file()
    finally:
        sleeper.kill()
        sleeper.wait()
    leftovers = [p.name for p in tmp_path.iterdir() if PARTIAL in p.name]
    assert leftovers == [live.name]


def test_a_failed_write_leaves_the_previous_results_and_no_partial(tmp_path: Path) -> None:
    target = tmp_path / "res"
    with replacing(target) as tmp:
        (tmp / "manifest.json").write_text("old")
    try:
        with replacing(target) as tmp:
            (tmp / "manifest.json").write_text("new")
            raise RuntimeError("killed half way")
    except RuntimeError:
        pass
    assert (target / "manifest.json").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["res"]


def test_result_directories_follow_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        with replacing(tmp_path / "res") as tmp:
            (tmp / "manifest.json").write_text("{}")
    finally:
        os.umask(old)
    assert (tmp_path / "res").stat().st_mode & 0o777 == 0o750
