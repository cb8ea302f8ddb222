"""Per-request CPU cost of each balancer strategy at 8 / 64 / 512 / 4096 backends
(``make bench-fleet``).

The model, per strategy and fleet size n: Poisson clients at a fixed total rate (``--rate``,
default 20 000/s) -> one ``load_balancer`` -> ``api``, n single-worker services, exponential
service time with mean ``0.7 x 8 / rate`` (0.28 ms): the same total load at every n, 70%
utilisation at 8 backends, so a run holds the same number of requests and the same number
in flight (about 5.6, Little's law), and only the fleet the balancer chooses from grows
(at 4096 most backends are idle, so the least-loaded rules have thousands of ties to draw
from). Keys uniform over
100 000 (``consistent_hash`` hashes them); weights alternate 1, 2 for the weighted rules;
``power_of_d`` draws 3; ``geo`` places every backend in one region (so it round-robins within
it). Spans off, as in ``make bench``.

What is reported is the CPU time per request *inside the run*: each case runs for
``--duration`` simulated seconds (default 3) and ``time.process_time`` is read at the
simulator's progress stops after the first ``--skip`` seconds (default 0.5) and at the end;
the CPU between them over the requests created between them. So building n services and the
balancer (O(n) once per run, not per request), the first random blocks each instance draws
and the end-of-run tables are all outside the figure. (The figure used to be the marginal
``(cpu(2T) - cpu(T)) / (requests(2T) - requests(T))`` of whole runs: at 4096 backends the
run-to-run noise of building the fleet, tens of milliseconds, moved it by several
microseconds a request, from 0.9 to 10.5 µs for one case in one process.) The per-backend
gauges (O(n) per sample) are sampled every ``metrics.interval``, set to the run's length so
that they are sampled only at 0 and at the end: sampling is not a cost of picking.
``join_shortest_queue`` scans every backend per pick (its definition), so its runs are
shortened by 64 / n above 64 backends (with at least 0.5 s measured) to keep the benchmark
minutes long.

Rounds are interleaved: every (strategy, n) case runs once per round, in an order rotated
each round, after one untimed warm-up; the figure is the median over ``--repeat`` rounds.
``os.getloadavg()`` is printed before and after, since other jobs on the machine inflate
CPU time too (cache misses, frequency scaling).

    .venv/bin/python benchmarks/fleet_size.py [--repeat 3] [--duration 3] [--only least]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from typing import Any

import harness

import simulator

SIZES = (8, 64, 512, 4096)
UTILISATION = 0.7
#: name shown -> load_balancer settings beyond ``backends``
CASES: dict[str, dict[str, Any]] = {
    "round_robin": {"strategy": "round_robin"},
    "weighted_round_robin": {"strategy": "weighted_round_robin"},
    "random": {"strategy": "random"},
    "weighted_random": {"strategy": "weighted_random"},
    "least_connections": {"strategy": "least_connections"},
    "weighted_least_connections": {"strategy": "weighted_least_connections"},
    "shortest_expected_delay": {"strategy": "shortest_expected_delay"},
    "join_shortest_queue": {"strategy": "join_shortest_queue"},
    "power_of_two": {"strategy": "power_of_two"},
    "power_of_d(3)": {"strategy": "power_of_d", "choice_count": 3},
    "peak_ewma": {"strategy": "peak_ewma"},
    "least_response_time": {"strategy": "least_response_time"},
    "consistent_hash": {"strategy": "consistent_hash"},
    "geo": {"strategy": "geo"},
}
WEIGHTED = {"weighted_round_robin", "weighted_random", "weighted_least_connections",
            "shortest_expected_delay"}


def scenario(case: str, n: int, rate: float, duration: float, interval: float
             ) -> simulator.Scenario:
    """The model of one case (see the module docstring)."""
    lb: dict[str, Any] = {"kind": "load_balancer", "backends": ["api"], **CASES[case]}
    if lb["strategy"] in WEIGHTED:
        lb["weights"] = [1.0 + (i % 2) for i in range(n)]
    api: dict[str, Any] = {"kind": "service", "replicas": n, "workers": 1,
                           "service_time": {"dist": "exponential",
                                            "mean": UTILISATION * SIZES[0] / rate}}
    spec: dict[str, Any] = {
        "name": f"fleet-{case}-{n}", "duration": duration, "drain": 0,
        "workloads": {"clients": {"arrivals": {"process": "poisson", "rate": rate},
                                  "keys": {"popularity": "uniform", "n": 100_000},
                                  "target": "lb"}},
        "components": {"lb": lb, "api": api},
        "metrics": {"spans": False, "interval": interval},
    }
    if lb["strategy"] == "geo":
        spec["regions"] = {"names": ["r1", "r2"],
                           "latency": {"r1": {"r2": {"dist": "constant", "value": 0.01}}},
                           "local": 0.0}
        spec["workloads"]["clients"]["regions"] = {"r1": 1.0}
        api["region"] = "r1"
    return simulator.parse_scenario(spec)


def main(argv: list[str] | None = None) -> int:
    """Run every case in interleaved rounds; print µs per request and the 4096 / 8 ratio."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--duration", type=float, default=3.0,
                        help="simulated seconds of a run (default 3)")
    parser.add_argument("--skip", type=float, default=0.5,
                        help="simulated seconds at the start left out of the figure "
                             "(default 0.5)")
    parser.add_argument("--rate", type=float, default=20_000.0,
                        help="total arrival rate, per second (default 20000)")
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--only", default=None, help="cases whose name contains this")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if not 0 <= args.skip < args.duration:
        parser.error("--skip must be at least 0 and less than --duration")

    names = [c for c in CASES if args.only is None or args.only in c]
    keys = [(c, n) for c in names for n in args.sizes]
    runs = {}
    for c, n in keys:
        t = args.duration
        if CASES[c]["strategy"] == "join_shortest_queue" and n > 64:
            t = args.skip + max(0.5, (t - args.skip) * 64 / n)
        runs[c, n] = (scenario(c, n, args.rate, t, t), args.skip)
    load0 = os.getloadavg()
    start = time.perf_counter()
    per = harness.window_rounds(runs, args.repeat, args.seed, "fleet")
    print(harness.machine_lines(
        args.seed, args.repeat, f"runs of {args.duration:g} s measured after {args.skip:g} s, "
        f"{args.rate:g} requests/s, "
        f"utilisation {UTILISATION:g} at {SIZES[0]} backends (the same total load at every "
        "size)", load0))
    print()
    width = max(len(c) for c in names)
    head = "".join(f"{n:>9}" for n in args.sizes)
    last = f"{args.sizes[-1]}/{args.sizes[0]}"
    print(f"{'µs CPU / request':<{width}}{head}{last:>11}")
    for c in names:
        med = [statistics.median(per[c, n]) * 1e6 for n in args.sizes]
        cells = "".join(f"{m:9.2f}" for m in med)
        print(f"{c:<{width}}{cells}{med[-1] / med[0]:11.2f}")
    print()
    print("µs CPU / request: process_time between the progress stops at the skip and at the "
          "end over the requests created between them, median over the rounds; the last "
          "column is the largest fleet's "
          f"figure over the smallest's.  Total {time.perf_counter() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
