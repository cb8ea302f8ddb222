"""Parallel replications: 8 replications serially against a process pool on every core.

Runs ``simulator.experiment.replicate`` on ``scenarios/cachedb.yaml`` (about 1 s of wall time
per replication, summary tables only shipped back) with ``executor="serial"`` and with a
:class:`~simulator.experiment.ProcessExecutor` of ``--workers`` processes (default: every
core), in interleaved rounds, and reports medians:

* ``serial s``: 8 replications one after the other in this process;
* ``pool s (cold)``: a fresh pool per round, so its start-up (forkserver, importing the
  simulator once per worker) is included;
* ``pool s (warm)``: the same pool reused, start-up already paid: what every later step of
  a sweep or capacity search costs;
* ``start-up s``: wall time of a fresh pool's first trivial task (worker start-up, paid once
  per experiment, not per run);
* speed-ups: serial / pool.

The tables of the serial and the parallel runs are checked to be identical (same seeds).
Acceptance: speed-up of at least 1.8 on 2 cores, on a machine with nothing else running.

    .venv/bin/python benchmarks/parallel.py [--replications 8] [--rounds 3] [--workers N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import pandas as pd

import simulator
from simulator.experiment import ProcessExecutor, replicate

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenarios" / "cachedb.yaml"


def _noop(x: int) -> int:
    return x


def timed_replicate(replications: int, executor: str | ProcessExecutor, duration: float
                    ) -> tuple[float, pd.DataFrame]:
    """Wall seconds of one ``replicate`` call, and its per-replication table."""
    t0 = time.perf_counter()
    reps = replicate(SCENARIO, replications, executor=executor, progress=False,
                     overrides=[f"duration={duration!r}"])
    return time.perf_counter() - t0, reps.runs


def main(argv: list[str] | None = None) -> int:
    """Interleave serial, cold-pool and warm-pool rounds; print medians and speed-ups."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--replications", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=None, help="default: every core")
    parser.add_argument("--duration", type=float, default=7.0,
                        help="simulated seconds per replication (default 7: ~1 s of wall)")
    args = parser.parse_args(argv)
    workers = args.workers or os.cpu_count() or 1

    serial: list[float] = []
    cold: list[float] = []
    warm: list[float] = []
    startup: list[float] = []
    reference: pd.DataFrame | None = None
    with ProcessExecutor(workers) as kept:
        timed_replicate(args.replications, kept, args.duration)  # start the kept pool once
        for r in range(args.rounds):
            print(f"[parallel] round {r + 1}/{args.rounds}", file=sys.stderr, flush=True)
            t, table = timed_replicate(args.replications, "serial", args.duration)
            serial.append(t)
            reference = table if reference is None else reference
            with ProcessExecutor(workers) as fresh:
                t0 = time.perf_counter()
                list(fresh.map_unordered(_noop, list(range(workers))))
                startup.append(time.perf_counter() - t0)
            with ProcessExecutor(workers) as fresh:
                t, table_cold = timed_replicate(args.replications, fresh, args.duration)
                cold.append(t)
            t, table_warm = timed_replicate(args.replications, kept, args.duration)
            warm.append(t)
            for other in (table_cold, table_warm):
                pd.testing.assert_frame_equal(other.reset_index(drop=True),
                                              reference.reset_index(drop=True))

    med = statistics.median
    print(f"simulator {simulator.__version__} | {os.cpu_count()} CPUs | {workers} workers | "
          f"{args.replications} replications of {SCENARIO.name} ({args.duration:g} s simulated "
          f"each) | {args.rounds} round(s), medians")
    print(f"serial s        {med(serial):7.2f}   runs {[round(x, 2) for x in serial]}")
    print(f"pool s (cold)   {med(cold):7.2f}   runs {[round(x, 2) for x in cold]}")
    print(f"pool s (warm)   {med(warm):7.2f}   runs {[round(x, 2) for x in warm]}")
    print(f"start-up s      {med(startup):7.2f}   (a fresh pool's first trivial task)")
    print(f"speed-up: cold x{med(serial) / med(cold):.2f}, warm x{med(serial) / med(warm):.2f}"
          f" (bound: 1.8 on 2 cores); tables identical: yes")
    try:
        load = os.getloadavg()
        print(f"load average at the end: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    except OSError:  # pragma: no cover - not on every platform
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
