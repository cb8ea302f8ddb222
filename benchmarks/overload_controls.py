"""CPU cost per request of the elasticity and overload controls (``make bench-overload``).

Issue 16 asks that an autoscaler, a priority discipline and an adaptive concurrency limit
together cost at most 1.3x per request of the same scenario without them. The model: Poisson
clients in two classes (``critical``, priority 0, and ``batch``, priority 2, half the load
each) -> a power-of-two balancer -> ``api``, 8 instances x 4 workers, exponential 2 ms of work,
70% busy. The controlled case adds, on ``api``:

- ``queue: {discipline: priority}`` (head-of-line priority between the two classes);
- ``admission: {policy: aimd, ...}`` (Netflix's AIMD limit on the requests in flight);
- ``autoscaling`` (the Kubernetes HPA on utilisation, target 70%, 8 to 16 instances, 15 s
  sync period; at 70% busy it mostly holds, so both cases serve the same requests).

What is reported is the *marginal* CPU time per request, as ``bench-fleet`` does: each case
runs for ``T`` and for ``2T`` simulated seconds and the cost is ``(cpu(2T) - cpu(T)) /
(requests(2T) - requests(T))`` with ``time.process_time``, so building the topology and the
tables of the first T cancel out. Rounds are interleaved (plain, controlled, then the other
way round), after one untimed warm-up; the figure is the median over ``--repeat`` rounds and
the verdict is printed only when the rounds agree (the ratio's spread across rounds is at most
``--max-spread``, default 15%): otherwise the machine was too busy to say. ``--parts`` also
runs each control alone, to say what each costs.

    .venv/bin/python benchmarks/overload_controls.py [--repeat 5] [--duration 20] [--parts]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

import harness

import simulator

BOUND = 1.3
RATE = 0.7 * 8 * 4 / 0.002  # 70% of 8 instances x 4 workers at 2 ms


#: the controls, by the letter a case names them with (``--parts``)
PARTS = {"p": "priority", "a": "aimd", "s": "autoscaling"}


def scenario(controlled: bool | str, duration: float) -> simulator.Scenario:
    """The plain (False) or the controlled (True) model (see the module docstring), or the
    plain one with the controls whose letters of :data:`PARTS` ``controlled`` lists."""
    on = "pas" if controlled is True else controlled or ""
    api: dict[str, Any] = {"kind": "service", "replicas": 8, "workers": 4,
                           "service_time": {"dist": "exponential", "mean": 0.002}}
    if "p" in on:
        api["queue"] = {"discipline": "priority"}
    if "a" in on:
        api["admission"] = {"policy": "aimd", "initial_limit": 8, "min_limit": 4,
                            "max_limit": 64, "backoff_ratio": 0.9, "timeout": 0.05}
    if "s" in on:
        api["autoscaling"] = {"min_replicas": 8, "max_replicas": 16,
                              "metrics": [{"type": "utilization", "average_utilization": 70}]}
    half = {"process": "poisson", "rate": RATE / 2}
    spec: dict[str, Any] = {
        "name": "overload-controls" if controlled else "overload-plain",
        "duration": duration, "drain": 0,
        "workloads": {"critical": {"arrivals": half, "target": "lb", "priority": 0},
                      "batch": {"arrivals": half, "target": "lb", "priority": 2}},
        "components": {"lb": {"kind": "load_balancer", "strategy": "power_of_two",
                              "backends": ["api"]}, "api": api},
        "metrics": {"spans": False, "interval": 2 * duration},
    }
    return simulator.parse_scenario(spec)


def main(argv: list[str] | None = None) -> int:
    """Run both cases in interleaved rounds; print µs per request, the ratio and a verdict."""
    parser = harness.bench_parser(__doc__, 5, 10.0)
    parser.add_argument("--parts", action="store_true",
                        help="also run each control alone (three more cases a round)")
    args = parser.parse_args(argv)
    t, load0, start = args.duration, os.getloadavg(), time.perf_counter()
    cases: tuple[bool | str, ...] = (False, True, *PARTS) if args.parts else (False, True)
    per = harness.marginal_cases(scenario, cases, args, "overload")
    ratios, ratio, spread, said = harness.ratio_verdict(per[False], per[True], BOUND,
                                                        args.max_spread)
    print(harness.machine_lines(args.seed, args.repeat,
                                f"T = {t:g} s at {RATE:g} requests/s, 70% busy", load0))
    print()
    print(f"{'case':<44}{'µs CPU / request':>18}")
    print(f"{'plain (fifo, fixed fleet)':<44}{statistics.median(per[False]) * 1e6:>18.2f}")
    print(f"{'controlled (priority + aimd + autoscaling)':<44}"
          f"{statistics.median(per[True]) * 1e6:>18.2f}")
    for part in PARTS if args.parts else ():
        alone = statistics.median(b / a for a, b in zip(per[False], per[part], strict=True))
        print(f"{'  ' + PARTS[part] + ' alone':<44}{statistics.median(per[part]) * 1e6:>18.2f}"
              f"  (x{alone:.3f})")
    print(f"ratio controlled / plain: median {ratio:.3f} over rounds "
          f"({', '.join(f'{x:.3f}' for x in ratios)}), spread {spread:.0%}")
    print(f"verdict: {said}")
    print(f"Total {time.perf_counter() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
