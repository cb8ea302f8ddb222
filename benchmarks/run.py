"""Framework vs hand-written SimPy, side by side (``make bench``).

Three systems, each run by a hand-written SimPy baseline and by ``simulator`` on a scenario
describing the same system:

* ``p2c``: Poisson clients -> power-of-two-choices balancer -> 8 services x 4 workers,
  exponential service time with mean 0.5 ms, per-worker utilisation 0.7
  (``baseline_p2c.py`` vs ``scenarios/p2c.yaml``);
* ``mmc``: M/M/c with c = 4, exponential service time with mean 0.5 ms, utilisation 0.7
  (``baseline_mmc.py`` vs ``scenarios/mmc.yaml``);
* ``cachedb``: Poisson clients -> power of two choices -> 8 services x 4 workers, Exp(0.5 ms)
  -> per-service LRU cache of 1000 keys (Zipf 0.9 over 100k keys) -> on a miss one of 4
  database shards (key hash mod 4, 4 connections, Exp(1 ms)), the worker held meanwhile
  (``baseline_cachedb.py`` vs ``scenarios/cachedb.yaml``).

For every (system, implementation) case it reports

* requests/s: requests completed in the timed run per wall-clock second, median over
  ``--repeat`` interleaved rounds (all six cases run once per round, in rotated order,
  after one untimed warm-up run each);
* time/request ratio (framework rows): framework wall time per completed request divided
  by the baseline's, computed per round (the two ran in the same round) and then the
  median over rounds; below 1 means the framework is faster;
* events/request: SimPy events processed per completed request, counted in a separate
  untimed run by temporarily wrapping ``simpy.core.Environment.step`` with a counter
  (the same counter for both implementations; never active in timed runs);
* peak memory: peak Python heap during one run, from ``tracemalloc``, in a separate run;
* mean latency: mean latency of completed requests (from the counting run), as a check
  that both implementations simulate the same system.

Spans (per-hop rows) are off in every bench scenario (``metrics: {spans: false}``): the
baselines store one latency per request and trace no hops, so the framework is asked to
record the same. Timed runs include building the result tables (framework) and the latency
summary (baselines), since that is what a user of either gets back.

Run ``python benchmarks/run.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import simpy

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import baseline_cachedb  # noqa: E402
import baseline_mmc  # noqa: E402
import baseline_p2c  # noqa: E402
import harness  # noqa: E402

import simulator  # noqa: E402

UTILISATION = 0.7
MEAN_SERVICE = 0.0005  # seconds
SERVICES = 8  # P2C: services behind the balancer
WORKERS = 4  # P2C: workers per service
SERVERS = 4  # M/M/c: c
CACHEDB_RATE = 16_000.0  # cache + database: database connections about 67% busy

HAND = "hand-written"
FRAMEWORK = "framework"


@dataclass(frozen=True)
class System:
    """One benchmarked system: its baseline, its scenario and its default durations."""

    name: str
    scenario: Path
    rate: float
    baseline: Callable[..., dict[str, Any]]
    """``baseline(duration, seed, count_events=...)`` -> the baseline's result dict."""
    duration: float
    """Default simulated seconds: sized so that one run takes about 1 s of wall time."""
    quick_duration: float
    """Simulated seconds with ``--quick``."""


P2C_RATE = UTILISATION * SERVICES * WORKERS / MEAN_SERVICE  # 44 800/s
MMC_RATE = UTILISATION * SERVERS / MEAN_SERVICE  # 5 600/s

# Every default duration gives about 112 000 requests per run.
SYSTEMS = (
    System(
        name="p2c",
        scenario=HERE / "scenarios" / "p2c.yaml",
        rate=P2C_RATE,
        baseline=lambda duration, seed, *, count_events: baseline_p2c.run(
            P2C_RATE, duration, seed, SERVICES, WORKERS, MEAN_SERVICE, count_events=count_events
        ),
        duration=2.5,
        quick_duration=0.05,
    ),
    System(
        name="mmc",
        scenario=HERE / "scenarios" / "mmc.yaml",
        rate=MMC_RATE,
        baseline=lambda duration, seed, *, count_events: baseline_mmc.run(
            MMC_RATE, duration, seed, SERVERS, MEAN_SERVICE, count_events=count_events
        ),
        duration=20.0,
        quick_duration=0.4,
    ),
    System(
        name="cachedb",
        scenario=HERE / "scenarios" / "cachedb.yaml",
        rate=CACHEDB_RATE,
        baseline=lambda duration, seed, *, count_events: baseline_cachedb.run(
            CACHEDB_RATE, duration, seed, count_events=count_events
        ),
        duration=7.0,
        quick_duration=0.15,
    ),
)


# ---- the two implementations as zero-argument callables ------------------------------------


def load(system: System, duration: float) -> simulator.Scenario:
    """Load the system's scenario with ``duration`` and check it matches the baseline's rate."""
    scenario = simulator.load_scenario(system.scenario, [f"duration={duration!r}"])
    rates = [w.arrivals.mean_rate() for w in scenario.workloads.values()]
    if len(rates) != 1 or not math.isclose(rates[0], system.rate, rel_tol=1e-9):
        raise SystemExit(
            f"{system.scenario}: arrival rate {rates} differs from the baseline's {system.rate:g}/s"
        )
    if scenario.record_spans():
        raise SystemExit(f"{system.scenario}: spans must be off (metrics: {{spans: false}})")
    return scenario


def completed(results: simulator.Results) -> int:
    """Requests of a framework run that completed (any status but ``in_flight``)."""
    return int((results.requests["status"] != "in_flight").sum())


def mean_latency(results: simulator.Results) -> float:
    """Mean latency of the completed requests of a framework run, in seconds."""
    r = results.requests
    return float(r.loc[r["status"] != "in_flight", "latency"].mean())


def cases(system: System, duration: float, seed: int) -> dict[str, Callable[[], tuple[int, float]]]:
    """Implementation -> callable running one simulation, returning (completed, mean latency)."""
    scenario = load(system, duration)

    def hand() -> tuple[int, float]:
        res = system.baseline(duration, seed, count_events=False)
        return res["requests"], res["mean_latency"]

    def framework() -> tuple[int, float]:
        res = simulator.simulate(scenario, seed=seed)
        return completed(res), mean_latency(res)

    return {HAND: hand, FRAMEWORK: framework}


# ---- the separate, untimed measurements ---------------------------------------------------


@contextlib.contextmanager
def counting_steps() -> Iterator[list[int]]:
    """Count ``simpy.core.Environment.step`` calls (one per event processed) while active.

    Yields a one-element list holding the count. The original method is restored on exit,
    so timed runs never pay for the counter.
    """
    original = simpy.core.Environment.step
    count = [0]

    def step(self: simpy.core.Environment) -> None:
        count[0] += 1
        original(self)

    simpy.core.Environment.step = step  # type: ignore[method-assign]
    try:
        yield count
    finally:
        simpy.core.Environment.step = original  # type: ignore[method-assign]


def count_events(fn: Callable[[], tuple[int, float]]) -> tuple[int, int, float]:
    """Run ``fn`` once with the step counter; return (events, completed, mean latency)."""
    gc.collect()
    with counting_steps() as count:
        done, latency = fn()
    return count[0], done, latency


def peak_mib(fn: Callable[[], Any]) -> float:
    """Peak Python heap allocated during one call of ``fn``, in MiB (tracemalloc)."""
    gc.collect()
    peak, _ = harness.peak_memory(fn)
    return peak / 2**20


def requests_table_bytes(scenario: simulator.Scenario, seed: int) -> float:
    """Bytes per row of a framework run's ``requests`` table (pandas, deep)."""
    requests = simulator.simulate(scenario, seed=seed).requests
    return float(requests.memory_usage(deep=True).sum()) / max(len(requests), 1)


# ---- theory, for the sanity footnote --------------------------------------------------------


def mmc_mean_response(lam: float, mean_service: float, c: int) -> float:
    """Mean response time of an M/M/c queue (Erlang C), in seconds."""
    a = lam * mean_service
    rho = a / c
    term = 1.0
    total = 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1.0 - rho)  # a^c / c! / (1 - rho)
    p_wait = last / (total + last)
    return mean_service + p_wait * mean_service / (c - a)


# ---- driver ---------------------------------------------------------------------------------


def run(repeat: int, durations: dict[str, float], seed: int, warmup: bool) -> pd.DataFrame:
    """Measure every case; return the table (numeric, indexed by system and implementation)."""
    timed: dict[str, Callable[[], int]] = {}
    plain: dict[tuple[str, str], Callable[[], tuple[int, float]]] = {}
    for system in SYSTEMS:
        for impl, fn in cases(system, durations[system.name], seed).items():
            plain[system.name, impl] = fn
            timed[f"{system.name}/{impl}"] = lambda fn=fn: fn()[0]

    log(
        f"timing: {len(timed)} cases x {repeat} interleaved rounds"
        + (" after one warm-up run each" if warmup else "")
    )
    runs = harness.interleave_runs(timed, repeat, warmup=warmup)
    summary = harness.summarise_runs(runs, list(timed))

    log("counting events (separate run per case)")
    counted = {key: count_events(fn) for key, fn in plain.items()}
    log("measuring peak memory with tracemalloc (separate run per case)")
    memory = {key: peak_mib(fn) for key, fn in plain.items()}
    log("measuring the framework's requests table (separate run per system)")
    table_bytes = {
        system.name: requests_table_bytes(load(system, durations[system.name]), seed)
        for system in SYSTEMS
    }

    # time per request, paired within each round, framework / hand-written
    per_request = runs.assign(spr=runs["seconds"] / runs["requests"]).pivot(
        index="round", columns="case", values="spr"
    )
    rows = []
    for system in SYSTEMS:
        ratio = (
            per_request[f"{system.name}/{FRAMEWORK}"] / per_request[f"{system.name}/{HAND}"]
        ).median()
        for impl in (HAND, FRAMEWORK):
            key = (system.name, impl)
            case = summary.loc[f"{system.name}/{impl}"]
            events, done, latency = counted[key]
            rows.append(
                {
                    "system": system.name,
                    "implementation": impl,
                    "sim_seconds": durations[system.name],
                    "runs": int(case["runs"]),
                    "requests": int(case["requests"]),
                    "requests_per_s": float(case["requests_per_second"]),
                    "time_per_request_ratio": float(ratio) if impl == FRAMEWORK else math.nan,
                    "events_per_request": events / done if done else math.nan,
                    "peak_mib": memory[key],
                    "table_bytes_per_request": table_bytes[system.name]
                    if impl == FRAMEWORK
                    else math.nan,
                    "mean_latency_ms": latency * 1e3,
                }
            )
    return pd.DataFrame(rows).set_index(["system", "implementation"])


def render(table: pd.DataFrame) -> str:
    """The table as fixed-width text."""
    headers = {
        "sim_seconds": "sim s",
        "runs": "runs",
        "requests": "requests",
        "requests_per_s": "requests/s",
        "time_per_request_ratio": "time/req vs hand",
        "events_per_request": "events/req",
        "peak_mib": "peak MiB",
        "table_bytes_per_request": "table B/req",
        "mean_latency_ms": "mean lat ms",
    }

    def fmt(spec: str) -> Callable[[float], str]:
        return lambda x: "-" if pd.isna(x) else format(x, spec)

    formatters = {
        "sim_seconds": fmt("g"),
        "runs": fmt("d"),
        "requests": fmt(",d"),
        "requests_per_s": fmt(",.0f"),
        "time_per_request_ratio": fmt(".2f"),
        "events_per_request": fmt(".2f"),
        "peak_mib": fmt(".1f"),
        "table_bytes_per_request": fmt(".1f"),
        "mean_latency_ms": fmt(".4f"),
    }
    shown = table.rename(columns=headers)
    return shown.to_string(formatters={headers[k]: f for k, f in formatters.items()}, na_rep="-")


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Parse the options, run the benchmark, print the table; return the exit code."""
    parser = argparse.ArgumentParser(
        description="Framework vs hand-written SimPy on P2C, M/M/c and cache + database, "
        "side by side."
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="interleaved timed rounds (default 5; 1 with --quick)",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=None,
        help="simulated seconds per run, for every system (default: "
        + ", ".join(f"{s.name} {s.duration:g}" for s in SYSTEMS)
        + ", about 1 s of wall time per run)",
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of every run (default 1)")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny runs and no warm-up, for a smoke test (timings meaningless)",
    )
    parser.add_argument("--csv", type=Path, default=None, help="also write the table to PATH")
    args = parser.parse_args(argv)

    repeat = args.repeat if args.repeat is not None else (1 if args.quick else 5)
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    if args.duration is not None and args.duration <= 0:
        parser.error("--duration must be positive")
    durations = {
        s.name: args.duration
        if args.duration is not None
        else (s.quick_duration if args.quick else s.duration)
        for s in SYSTEMS
    }

    start = time.perf_counter()
    table = run(repeat, durations, args.seed, warmup=not args.quick)
    elapsed = time.perf_counter() - start

    print(
        f"simulator {simulator.__version__} vs hand-written SimPy {simpy.__version__} | "
        f"Python {platform.python_version()} | {platform.machine()} | "
        f"{os.cpu_count()} CPUs | seed {args.seed} | {repeat} round(s)"
        + (" | QUICK (timings meaningless)" if args.quick else "")
    )
    print(
        f"p2c: Poisson {P2C_RATE:g}/s -> power of two -> {SERVICES} services x {WORKERS} "
        f"workers, Exp({MEAN_SERVICE * 1e3:g} ms), utilisation {UTILISATION:g}"
    )
    print(
        f"mmc: M/M/{SERVERS}, Poisson {MMC_RATE:g}/s, Exp({MEAN_SERVICE * 1e3:g} ms), "
        f"utilisation {UTILISATION:g}"
    )
    print(
        f"cachedb: Poisson {CACHEDB_RATE:g}/s -> power of two -> {SERVICES} services x {WORKERS} "
        "workers, Exp(0.5 ms) -> per-service LRU cache (1000 keys, Zipf 0.9 over 100k) -> "
        "4 DB shards x 4 connections, Exp(1 ms)"
    )
    print("spans off in every scenario (the baselines trace no hops)")
    print()
    print(render(table))
    print()
    print(
        "requests/s: completed requests per wall second, median of the timed runs; "
        "time/req vs hand: framework / hand-written wall time per request, median of the "
        "per-round ratios (< 1: framework faster); events/req and peak MiB from separate "
        "untimed runs; table B/req: bytes per row of the framework's requests table."
    )
    theory = mmc_mean_response(MMC_RATE, MEAN_SERVICE, SERVERS)
    print(f"M/M/{SERVERS} theory: mean latency {theory * 1e3:.4f} ms.  Total {elapsed:.1f} s.")

    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv)
        log(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
