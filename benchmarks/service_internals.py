"""CPU cost per request of a service's ``internals`` against the simple model
(``make bench-internals``).

Issue 17 asks that the step-based service model cost at most 1.5x per request of the simple
model on the same load. The model: Poisson clients -> ``api``, 8 instances (a plain group:
uniform random pick), 70% busy. The simple case is ``workers: 4`` with an exponential 2 ms
``service_time``; the step-based cases have ``internals: {cores: 4}`` and one step, ``{cpu:
<the same distribution>}``, as a thread pool (``threads: 16`` on the 4 cores, time-sliced:
they share a core whenever more than 4 are runnable) and as an event loop (a loop per core),
so the three do the same work per request.

What is reported is the *marginal* CPU time per request, as ``bench-fleet`` and
``overload_controls.py`` do: each case runs for ``T`` and for ``2T`` simulated seconds and the
cost is ``(cpu(2T) - cpu(T)) / (requests(2T) - requests(T))`` with ``time.process_time``, so
building the topology and the tables of the first T cancel out. Rounds are interleaved (the
order rotates), after one untimed warm-up; the figure is the median over ``--repeat`` rounds,
and a verdict is printed only when the rounds agree (each ratio's spread across rounds at
most ``--max-spread``, default 15%): otherwise the machine was too busy to say.

    .venv/bin/python benchmarks/service_internals.py [--repeat 5] [--duration 10]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

import harness

import simulator

BOUND = 1.5
RATE = 0.7 * 8 * 4 / 0.002  # 70% of 8 instances x 4 workers (cores) at 2 ms
WORK = {"dist": "exponential", "mean": 0.002}
CASES = ("simple", "thread_pool", "event_loop")


def scenario(case: str, duration: float) -> simulator.Scenario:
    """The simple model or a step-based one (see the module docstring)."""
    api: dict[str, Any] = {"kind": "service", "replicas": 8}
    if case == "simple":
        api.update(workers=4, service_time=WORK)
    else:
        api["internals"] = {"cores": 4, "threading": case, "steps": {"*": [{"cpu": WORK}]}}
        if case == "thread_pool":
            api["internals"]["threads"] = 16
    spec: dict[str, Any] = {
        "name": f"internals-{case}", "duration": duration, "drain": 0,
        "workloads": {"w": {"arrivals": {"process": "poisson", "rate": RATE},
                            "target": "api"}},
        "components": {"api": api},
        "metrics": {"spans": False, "interval": 2 * duration},
    }
    return simulator.parse_scenario(spec)


def main(argv: list[str] | None = None) -> int:
    """Run the cases in interleaved rounds; print µs per request, the ratios and a verdict."""
    args = harness.bench_parser(__doc__, 5, 10.0).parse_args(argv)
    t, load0, start = args.duration, os.getloadavg(), time.perf_counter()
    per = harness.marginal_cases(scenario, CASES, args, "internals")
    print(harness.machine_lines(args.seed, args.repeat,
                                f"T = {t:g} s at {RATE:g} requests/s, 70% busy", load0))
    print()
    print(f"{'case':<40}{'µs CPU / request':>18}{'ratio (median)':>16}")
    verdicts = []
    for c in CASES:
        ratios, ratio, spread, said = harness.ratio_verdict(per["simple"], per[c], BOUND,
                                                            args.max_spread)
        print(f"{c:<40}{statistics.median(per[c]) * 1e6:>18.2f}{ratio:>16.3f}")
        if c == "simple":
            continue
        print(f"  {c} / simple over rounds: {', '.join(f'{x:.3f}' for x in ratios)}, "
              f"spread {spread:.0%}")
        verdicts.append(f"{c}: {said}")
    for v in verdicts:
        print(f"verdict: {v}")
    print(f"Total {time.perf_counter() - start:.0f} s.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
