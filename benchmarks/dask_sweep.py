"""A sweep on a real Dask cluster: a scheduler and two workers started with the ``dask`` CLI.

What it does, in order:

1. starts ``dask scheduler`` (localhost, a free port, no dashboard) and two ``dask worker``
   processes of one thread each, every one its own process group, and waits until the
   scheduler sees both workers;
2. runs the same ``simulator sweep`` command line twice per round, interleaved: once with
   ``--executor serial`` and once with ``--executor dask --scheduler tcp://...``, each as a
   fresh ``simulator`` process (so the Dask side pays its client's connection and the code
   version check on every run, as a user's command does);
3. checks that the tables the two write (``--out DIR --format csv``: every CSV but the
   manifest, which names the executor) are byte for byte identical;
4. prints the wall seconds of each side (medians over rounds), the speed-up serial / Dask and
   the machine's load average before and after; stops the cluster whatever happens.

The sweep: ``benchmarks/scenarios/cachedb.yaml`` (about 112,000 requests and 1 s of CPU per
run at the default 7 s) over ``components.lb.strategy`` = power_of_two, least_connections,
with ``--replications 4``: 8 runs. Two workers on two cores can at best halve the serial time;
the client, the scheduler and pickling the summary tables back are the overhead measured.

    .venv/bin/python benchmarks/dask_sweep.py [--rounds 3] [--replications 4] [--duration 7]
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenarios" / "cachedb.yaml"
BIN = Path(sys.executable).parent


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """Start one cluster process in its own process group, its output to ``log``."""
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """Terminate the cluster's process groups, killing what does not exit within 10 s."""
    for p in procs:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@contextlib.contextmanager
def dask_cluster(workdir: Path, workers: int) -> Iterator[str]:
    """A scheduler and ``workers`` one-thread worker processes from the ``dask`` CLI; yields
    the scheduler's address once every worker has registered."""
    from distributed import Client

    sched_file = workdir / "scheduler.json"
    procs = [_spawn([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                     "--no-dashboard", "--scheduler-file", str(sched_file)],
                    workdir / "scheduler.log")]
    try:
        deadline = time.monotonic() + 60
        while not sched_file.exists():
            if time.monotonic() > deadline or procs[0].poll() is not None:
                raise RuntimeError(f"the scheduler did not start: see {workdir / 'scheduler.log'}")
            time.sleep(0.1)
        for i in range(workers):
            procs.append(_spawn([str(BIN / "dask"), "worker", "--scheduler-file", str(sched_file),
                                 "--nthreads", "1", "--nworkers", "1", "--no-dashboard",
                                 "--local-directory", str(workdir / f"worker-{i}")],
                                workdir / f"worker-{i}.log"))
        address = json.loads(sched_file.read_text())["address"]
        with Client(address, timeout=30) as client:
            client.wait_for_workers(workers, timeout=120)
        yield address
    finally:
        _stop(procs)


def sweep_command(out: Path, replications: int, duration: float, executor: list[str]) -> list[str]:
    """The ``simulator sweep`` command line of one side."""
    return [str(BIN / "simulator"), "sweep", str(SCENARIO),
            "--grid", "components.lb.strategy=power_of_two,least_connections",
            "--replications", str(replications), "--set", f"duration={duration:g}s",
            "--out", str(out), "--format", "csv", "--no-progress", "--no-cache", *executor]


def timed(cmd: list[str]) -> float:
    """Wall seconds of one command, which must succeed."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr}")
    return wall


def same_tables(a: Path, b: Path) -> list[str]:
    """Names of the CSV tables that differ between two ``--out`` folders (or exist in one)."""
    names = {p.name for p in a.glob("*.csv")} | {p.name for p in b.glob("*.csv")}
    return sorted(n for n in names
                  if not ((a / n).exists() and (b / n).exists()
                          and filecmp.cmp(a / n, b / n, shallow=False)))


def main(argv: list[str] | None = None) -> int:
    """Start the cluster, interleave serial and Dask sweeps, compare tables, print speed-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--replications", type=int, default=4, help="per point (2 points)")
    parser.add_argument("--duration", type=float, default=7.0, help="simulated s per run")
    parser.add_argument("--workers", type=int, default=2, help="dask worker processes")
    args = parser.parse_args(argv)
    load0 = os.getloadavg()
    serial: list[float] = []
    dask: list[float] = []
    with tempfile.TemporaryDirectory(prefix="dask-bench-") as tmp:
        work = Path(tmp)
        with dask_cluster(work, args.workers) as address:
            sides = {"serial": ["--executor", "serial"],
                     "dask": ["--executor", "dask", "--scheduler", address]}
            for r in range(args.rounds):
                order = list(sides) if r % 2 == 0 else list(sides)[::-1]
                for side in order:
                    print(f"[dask] round {r + 1}/{args.rounds}: {side}", file=sys.stderr,
                          flush=True)
                    out = work / f"{side}-{r}"
                    wall = timed(sweep_command(out, args.replications, args.duration,
                                               sides[side]))
                    (serial if side == "serial" else dask).append(wall)
                differ = same_tables(work / f"serial-{r}", work / f"dask-{r}")
                if differ:
                    print(f"tables differ between serial and Dask: {differ}")
                    return 1
            tables = sorted(p.name for p in (work / "serial-0").glob("*.csv"))
    load1 = os.getloadavg()
    med = statistics.median
    runs = 2 * args.replications
    print(f"{os.cpu_count()} CPUs | dask scheduler + {args.workers} `dask worker` processes "
          f"(1 thread each) | sweep of {SCENARIO.name}: 2 strategies x {args.replications} "
          f"replications = {runs} runs of {args.duration:g} s simulated | {args.rounds} "
          "round(s), medians of whole `simulator sweep` commands")
    print(f"load average (1, 5, 15 min): before {load0[0]:.2f} {load0[1]:.2f} {load0[2]:.2f}, "
          f"after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")
    print(f"serial s   {med(serial):7.2f}   runs {[round(x, 2) for x in serial]}")
    print(f"dask s     {med(dask):7.2f}   runs {[round(x, 2) for x in dask]}")
    print(f"speed-up serial / dask: x{med(serial) / med(dask):.2f}; tables identical to the "
          f"serial run's in every round: yes ({', '.join(tables)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
