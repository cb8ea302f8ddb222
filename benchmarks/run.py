"""Framework vs the fastest hand-written SimPy, CPU time side by side (``make bench``).

Two systems (``timed_run.SYSTEMS``), each run by three implementations:

* ``fast``: the fastest plain-SimPy model we can write (``fast_cachedb.py``, ``fast_mmc.py``:
  worker processes pulling from a hand FIFO, one process for all arrivals, no Process per
  request or hop, one event per wait, batched numpy draws);
* ``idiomatic``: the usual SimPy style, a ``simpy.Resource`` and a Process per request
  (``baseline_cachedb.py``, ``baseline_mmc.py``), a second reference;
* ``framework``: ``simulator`` on the system's scenario (``scenarios/cachedb.yaml``,
  ``scenarios/mmc8.yaml``).

Steps, in order:

1. **Agreement.** Over ``--seeds`` seeds, the fast baseline and the framework each run the
   system in this process; the mean latency (and, for cachedb, the cache hit ratio) of the
   requests arriving after the warm-up must agree within ``--tolerance`` standard errors of
   the difference (per-seed values, independent streams). If not, the script prints the
   figures and exits 1 before timing anything. M/M/8 is also set against Erlang C.
2. **Events per request**, counted in separate untimed runs by wrapping
   ``simpy.core.Environment.step`` (the same counter for all three).
3. **Timing.** Every (system, implementation) runs as a fresh process
   (``timed_run.py``), pinned to CPU 0 with ``taskset -c 0`` when available, once untimed
   then ``--repeat`` interleaved rounds in an order rotated each round. Per run: the whole
   process's user + system CPU (``os.wait4``), the CPU of the model run alone
   (``time.process_time`` inside the child, after imports and scenario loading), and the
   peak resident set (the child's ``VmHWM``; ``ru_maxrss`` where there is none). Framework /
   fast ratios are taken per round, then the median; when the rounds' ratios spread by more
   than ``--max-spread`` of their median no verdict is printed. The load average is printed
   per round and before / after.

Run ``python benchmarks/run.py --help`` for the options.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import simpy

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import harness  # noqa: E402
import timed_run  # noqa: E402
from timed_run import IMPLS, SYSTEMS  # noqa: E402

BOUNDS = {("cachedb", "whole"): 0.75, ("cachedb", "in"): 0.6, ("mmc8", "in"): 0.6}
"""Issue 15's acceptance bounds on framework / fast CPU time."""


def log(message: str) -> None:
    """Progress on stderr, so that stdout holds only the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def load_now() -> str:
    """The 1-minute load average, for the line it is printed on."""
    return f"load {os.getloadavg()[0]:.2f}"


# ---- 1. agreement ------------------------------------------------------------------------


def mean_se(values: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean of per-seed values."""
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def erlang_c_response(lam: float, mean_service: float, c: int) -> float:
    """Mean response time of an M/M/c queue (Erlang C), in seconds."""
    a = lam * mean_service
    term = total = 1.0
    for k in range(1, c):
        term *= a / k
        total += term
    last = term * a / c / (1.0 - a / c)  # a^c / c! / (1 - rho)
    return mean_service + last / (total + last) * mean_service / (c - a)


def agreement(durations: dict[str, float], seeds: int, tolerance: float, quick: bool) -> bool:
    """Print the fast baseline and the framework's per-seed steady-state figures; True when
    every figure agrees within ``tolerance`` standard errors of the difference."""
    ok = True
    for name, spec in SYSTEMS.items():
        warm = spec.quick_warmup if quick else spec.warmup
        runs = {impl: timed_run.prepare(name, impl, durations[name])
                for impl in ("fast", "framework")}
        figures = ["steady_mean_latency"] + (["steady_hit_ratio"] if name == "cachedb" else [])
        got: dict[str, dict[str, list[float]]] = {i: {f: [] for f in figures} for i in runs}
        for seed in range(1, seeds + 1):
            for impl, fn in runs.items():
                res = fn(seed, warmup=warm)
                for f in figures:
                    got[impl][f].append(res[f])
        print(f"agreement, {name}: {seeds} seeds x {durations[name]:g} s, arrivals after "
              f"{warm:g} s; bound {tolerance:g} standard errors of the difference ({load_now()})")
        for f in figures:
            (mf, sf), (mb, sb) = mean_se(got["framework"][f]), mean_se(got["fast"][f])
            se = math.hypot(sf, sb)
            diff = mf - mb
            good = abs(diff) <= tolerance * se
            ok &= good
            scale = 1e3 if "latency" in f else 1.0
            unit = " ms" if "latency" in f else ""
            print(f"  {f:20s} framework {mf * scale:.5f} ± {sf * scale:.5f}{unit}, fast "
                  f"{mb * scale:.5f} ± {sb * scale:.5f}{unit}: difference {diff / mb:+.3%} "
                  f"= {diff / se if se else 0.0:+.2f} SE -> {'agree' if good else 'DISAGREE'}")
        if name == "mmc8":
            theory = erlang_c_response(spec.rate, 0.0005, 8)
            for impl in runs:
                m, s = mean_se(got[impl]["steady_mean_latency"])
                print(f"  Erlang C {theory * 1e3:.5f} ms; {impl} {(m - theory) / theory:+.3%} "
                      f"= {(m - theory) / s if s else 0.0:+.2f} SE")
    return ok


# ---- 2. events per request ---------------------------------------------------------------


@contextlib.contextmanager
def counting_steps() -> Iterator[list[int]]:
    """Count ``simpy.core.Environment.step`` calls (one per event processed) while active.

    Yields a one-element list holding the count; the original method is restored on exit,
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


def events_per_request(system: str, impl: str, duration: float, seed: int) -> float:
    """SimPy events per completed request of one untimed run (nan if none were seen: a
    framework loop that bypasses ``Environment.step``)."""
    fn = timed_run.prepare(system, impl, duration)
    gc.collect()
    with counting_steps() as count:
        res = fn(seed)
    return count[0] / res["requests"] if count[0] and res["requests"] else math.nan


# ---- 3. timing -----------------------------------------------------------------------------


def timed(system: str, impl: str, duration: float, seed: int, pin: list[str],
          trace: bool = False) -> dict[str, Any]:
    """One fresh, pinned process: whole CPU, in-process CPU, requests, peak RSS (MiB)."""
    argv = [*pin, sys.executable, str(HERE / "timed_run.py"), system, impl, "--seed",
            str(seed), "--duration", repr(duration)] + (["--trace"] if trace else [])
    whole, rss, out = harness.child_run(argv)
    child = json.loads(out.strip().splitlines()[-1])
    if child["peak_rss"] is not None:
        rss = child["peak_rss"]  # ru_maxrss would include this (large) parent's
    return {"whole": whole, "in": child["cpu"], "requests": child["requests"], "rss": rss,
            "heap": child["peak_heap"]}


def rounds(durations: dict[str, float], repeat: int, seed: int, pin: list[str], warmup: bool
           ) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every case once untimed (if ``warmup``), then ``repeat`` rotated rounds."""
    cases = [(s, i) for s in SYSTEMS for i in IMPLS]
    if warmup:
        log("one untimed run per case")
        for s, i in cases:
            timed(s, i, durations[s], seed, pin)
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {c: [] for c in cases}
    for r in range(repeat):
        load = os.getloadavg()[0]
        log(f"round {r + 1} / {repeat}  load {load:.2f}")
        turn = r % len(cases)
        for case in cases[turn:] + cases[:turn]:
            row = timed(*case, durations[case[0]], seed, pin)
            row["load"] = load
            runs[case].append(row)
    return runs


def verdict(system: str, which: str, ratios: list[float], max_spread: float, quick: bool
            ) -> str:
    """What may be said of the median of per-round ratios."""
    bound = BOUNDS.get((system, which))
    if quick:
        return "no verdict (--quick)"
    if len(ratios) < harness.MIN_VERDICT_ROUNDS:
        return (f"no verdict (fewer than {harness.MIN_VERDICT_ROUNDS} rounds: no spread to "
                "judge the noise by)")
    if harness.spread_of(ratios) > max_spread:
        return (f"no verdict (rounds spread by more than {max_spread:.0%}: a busy machine; "
                "rerun on a quiet one)")
    if bound is None:
        return "no bound set"
    return f"{'within' if statistics.median(ratios) <= bound else 'OVER'} the {bound:g}x bound"


def report(durations: dict[str, float], runs: dict[tuple[str, str], list[dict[str, Any]]],
           events: dict[tuple[str, str], float], heaps: dict[tuple[str, str], float],
           max_spread: float, quick: bool) -> list[dict[str, Any]]:
    """Print the per-case table and the ratios; return the table's rows."""
    rows = []
    for system in SYSTEMS:
        print(f"\n{system}: {SYSTEMS[system].title}; {durations[system]:g} simulated s")
        print(f"  {'impl':10s} {'requests':>9s} {'whole CPU s':>11s} {'in-proc s':>9s} "
              f"{'req/CPU s whole':>15s} {'req/CPU s in':>12s} {'events/req':>10s} "
              f"{'peak RSS MiB':>12s}" + ("  heap MiB" if heaps else ""))
        for impl in IMPLS:
            rs = runs[system, impl]
            whole = statistics.median(r["whole"] for r in rs)
            inner = statistics.median(r["in"] for r in rs)
            req = statistics.median(r["requests"] for r in rs)
            row = {"system": system, "impl": impl, "requests": req, "whole_cpu_s": whole,
                   "in_process_cpu_s": inner, "requests_per_cpu_s_whole": req / whole,
                   "requests_per_cpu_s_in": req / inner, "events_per_request":
                   events[system, impl], "peak_rss_mib": statistics.median(
                       r["rss"] for r in rs), "peak_heap_mib": heaps.get((system, impl))}
            rows.append(row)
            print(f"  {impl:10s} {req:9,.0f} {whole:11.3f} {inner:9.3f} "
                  f"{row['requests_per_cpu_s_whole']:15,.0f} {row['requests_per_cpu_s_in']:12,.0f}"
                  f" {row['events_per_request']:10.2f} {row['peak_rss_mib']:12.1f}"
                  + (f" {heaps[system, impl]:9.1f}" if heaps else ""))
        for ref in ("fast", "idiomatic"):
            for which, label in (("whole", "whole-process"), ("in", "in-process")):
                # per round, CPU per completed request, framework over the reference
                ratios = [(f[which] / f["requests"]) / (b[which] / b["requests"]) for f, b in
                          zip(runs[system, "framework"], runs[system, ref], strict=True)]
                loads = " ".join(f"{r['load']:.2f}" for r in runs[system, ref])
                said = (verdict(system, which, ratios, max_spread, quick) if ref == "fast"
                        else "reference only")
                print(f"  framework / {ref:9s} CPU per request, {label:13s}: median "
                      f"{statistics.median(ratios):.3f}, spread "
                      f"{harness.spread_of(ratios):.1%}, rounds "
                      f"[{' '.join(f'{x:.3f}' for x in ratios)}] at loads [{loads}]: {said}")
    return rows


def main(argv: list[str] | None = None) -> int:
    """Parse the options, check agreement, time, print; return the exit code."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=None,
                        help="interleaved timed rounds (default 5; 1 with --quick)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds of the agreement check (default 5; 3 with --quick)")
    parser.add_argument("--tolerance", type=float, default=4.0,
                        help="agreement bound, in standard errors of the difference (default 4)")
    parser.add_argument("--max-spread", type=float, default=0.15,
                        help="largest spread of per-round ratios, relative to their median, "
                             "for which a verdict is printed (default 0.15)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the timed runs")
    parser.add_argument("--quick", action="store_true",
                        help="tiny runs, one round, no warm-up: a smoke test, no verdict")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="also the peak Python heap of each case (one more run each)")
    parser.add_argument("--no-pin", action="store_true", help="do not use taskset")
    parser.add_argument("--csv", type=Path, default=None, help="also write the table to PATH")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 5)
    seeds = args.seeds or (3 if args.quick else 5)
    if seeds < 2:
        parser.error("--seeds must be at least 2 (a standard error needs two)")
    durations = {n: s.quick_duration if args.quick else s.duration for n, s in SYSTEMS.items()}
    pin, pin_note = ([], "NOT pinned (--no-pin)") if args.no_pin else harness.pin_prefix()

    load0 = os.getloadavg()
    start = time.perf_counter()
    print(f"simpy {simpy.__version__} | {pin_note}"
          + (" | QUICK (timings meaningless)" if args.quick else ""))
    log(f"agreement check, {seeds} seeds")
    if not agreement(durations, seeds, args.tolerance, args.quick):
        print("the fast baseline and the framework DISAGREE: not the same model, no timing")
        return 1
    log("counting events (untimed runs)")
    events = {(s, i): events_per_request(s, i, durations[s], args.seed)
              for s in SYSTEMS for i in IMPLS}
    runs = rounds(durations, repeat, args.seed, pin, warmup=not args.quick)
    heaps: dict[tuple[str, str], float] = {}
    if args.tracemalloc:
        log("peak heap (tracemalloc, one more run per case)")
        heaps = {(s, i): timed(s, i, durations[s], args.seed, pin, trace=True)["heap"] / 2**20
                 for s in SYSTEMS for i in IMPLS}
    rows = report(durations, runs, events, heaps, args.max_spread, args.quick)
    print("\n" + harness.machine_lines(args.seed, repeat, f"framework vs fast and idiomatic "
                                       f"SimPy, {seeds}-seed agreement", load0))
    print(f"total {time.perf_counter() - start:.0f} s")
    if args.csv is not None:
        import pandas as pd

        pd.DataFrame(rows).to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
