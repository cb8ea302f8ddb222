"""One run of one implementation of one benchmarked system (``make bench``'s unit of work).

``python benchmarks/timed_run.py SYSTEM IMPL --seed K --duration S`` imports only what that
implementation needs (the baselines: numpy and SimPy; the framework: ``simulator``), runs
the model once and prints one JSON line: ``cpu`` (CPU seconds of the model run alone,
:func:`time.process_time` around it, after imports, loading the scenario and one tiny
untimed run, see :func:`prepare`), ``requests`` (completed), ``mean_latency`` (seconds),
``peak_rss`` (MiB, the process's high-water resident set) and, with ``--trace``,
``peak_heap`` (bytes, the run's peak Python heap from tracemalloc, which slows the run).
``benchmarks/run.py`` starts it as a fresh process per timed run and takes the whole
process's CPU time from :func:`os.wait4`.

:data:`SYSTEMS` is the single description of the benchmarked systems.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

IMPLS = ("fast", "idiomatic", "framework")
"""The fast hand-written baseline, the idiomatic one (Resource and a Process per request),
the framework on the system's scenario."""


@dataclass(frozen=True)
class System:
    """One benchmarked system and its default sizes."""

    name: str
    title: str
    scenario: Path
    rate: float
    """Arrivals per second (the scenario's rate is checked against it)."""
    duration: float
    """Simulated seconds of a timed run."""
    quick_duration: float
    warmup: float
    """Arrivals before this time are left out of the agreement check (cachedb: both models
    start with empty caches, and the cold start's backlog varies a lot from seed to seed)."""
    quick_warmup: float


SYSTEMS = {
    "cachedb": System(
        "cachedb",
        "Poisson 16000/s -> power of two -> 8 services x 4 workers, Exp(0.5 ms) -> per-service "
        "LRU cache (1000 keys, Zipf 0.9 over 100k) -> on a miss 4 DB shards (md5 mod 4) x 4 "
        "connections, Exp(1 ms), the worker held",
        HERE / "scenarios" / "cachedb.yaml", 16_000.0, 12.5, 1.5, 1.0, 0.5),
    "mmc8": System(
        "mmc8", "M/M/8, Poisson 14400/s, Exp(0.5 ms), utilisation 0.9",
        HERE / "scenarios" / "mmc8.yaml", 14_400.0, 34.75, 1.0, 1.0, 0.0),
}


def _baseline(system: str, impl: str, duration: float, seed: int, warmup: float,
              count_events: bool) -> dict[str, Any]:
    rate = SYSTEMS[system].rate
    if system == "cachedb" and impl == "fast":
        import fast_cachedb
        return fast_cachedb.run(rate, duration, seed, warmup=warmup, count_events=count_events)
    if system == "cachedb":
        import baseline_cachedb
        return dict(baseline_cachedb.run(rate, duration, seed, count_events=count_events))
    if impl == "fast":
        import fast_mmc
        return fast_mmc.run(rate, duration, seed, 8, warmup=warmup, count_events=count_events)
    import baseline_mmc
    return dict(baseline_mmc.run(rate, duration, seed, 8, count_events=count_events))


def prepare(system: str, impl: str, duration: float) -> Callable[..., dict[str, Any]]:
    """The model run as a callable ``(seed, warmup=0, count_events=False) -> summary``, with
    everything done once per process before it: imports, loading the scenario, and one tiny
    run (lazy imports, per-process lookup tables such as the key CDF and the shard hashes;
    the fast cachedb baseline caches the same two)."""
    if impl != "framework":
        def go(seed: int, warmup: float = 0.0, count_events: bool = False) -> dict[str, Any]:
            return _baseline(system, impl, duration, seed, warmup, count_events)
        # import now, not in the timed region
        _baseline(system, impl, 0.001, 0, 0.0, False)
        return go

    import math

    import simulator

    spec = SYSTEMS[system]
    scenario = simulator.load_scenario(spec.scenario, [f"duration={duration!r}"])
    rates = [w.arrivals.mean_rate() for w in scenario.workloads.values()]
    if len(rates) != 1 or not math.isclose(rates[0], spec.rate, rel_tol=1e-9):
        raise SystemExit(f"{spec.scenario}: arrival rate {rates}, the baselines' {spec.rate:g}")
    if scenario.record_spans():
        raise SystemExit(f"{spec.scenario}: spans must be off (the baselines trace no hops)")

    # one tiny run first, as for the baselines: simulate() imports numpy, SimPy, pandas and
    # the components' modules on first use, and builds its per-process tables (key CDF, key
    # hashes); the in-process figure is the model run with that one-off work done
    simulator.simulate(simulator.load_scenario(spec.scenario, ["duration=0.001"]), seed=0)

    def framework(seed: int, warmup: float = 0.0, count_events: bool = False
                  ) -> dict[str, Any]:
        r = simulator.simulate(scenario, seed=seed).requests
        done = r[r["status"] != "in_flight"]
        steady = done[done["start"] >= warmup]
        return {"requests": len(done), "mean_latency": float(done["latency"].mean()),
                "steady_requests": len(steady),
                "steady_mean_latency": float(steady["latency"].mean()),
                "hit_ratio": float((done["cache"] == "hit").mean()),
                "steady_hit_ratio": float((steady["cache"] == "hit").mean()),
                "events": None}

    return framework


def main(argv: list[str] | None = None) -> None:
    """Run once, print the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("system", choices=list(SYSTEMS))
    parser.add_argument("impl", choices=IMPLS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duration", type=float, required=True)
    parser.add_argument("--trace", action="store_true", help="also the peak heap (tracemalloc)")
    args = parser.parse_args(argv)
    fn = prepare(args.system, args.impl, args.duration)
    peak = None
    if args.trace:
        import tracemalloc
        tracemalloc.start()
    t0 = time.process_time()
    res = fn(args.seed)
    cpu = time.process_time() - t0
    if args.trace:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    print(json.dumps({"cpu": cpu, "requests": res["requests"],
                      "mean_latency": res["mean_latency"], "peak_heap": peak,
                      "peak_rss": peak_rss_mib()}))


def peak_rss_mib() -> float | None:
    """This process's peak resident set in MiB (``VmHWM``, Linux), or None elsewhere.

    Not ``ru_maxrss``: Linux carries that over from the parent through fork and exec, so a
    child of a large parent would report the parent's size.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


if __name__ == "__main__":
    main()
