"""Small timing and memory helpers for comparing baselines with framework scenarios.

The helpers are deliberately simple: wall-clock time with :func:`time.perf_counter`,
peak Python heap with :mod:`tracemalloc`, and a round-robin :func:`interleave` so that
slow drift of the machine (thermal, other load) affects every case alike.

Time and memory should be measured in separate runs: :mod:`tracemalloc` slows Python
code down considerably.
"""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any, TypeVar

import pandas as pd

T = TypeVar("T")


def time_call(fn: Callable[[], T]) -> tuple[float, T]:
    """Call ``fn()`` once and measure its wall-clock time.

    Parameters
    ----------
    fn : Callable[[], T]
        Zero-argument callable (use :func:`functools.partial` or a lambda to bind args).

    Returns
    -------
    tuple[float, T]
        Elapsed seconds and the value returned by ``fn``.
    """
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def peak_memory(fn: Callable[[], T]) -> tuple[int, T]:
    """Call ``fn()`` once and measure the peak Python heap it allocated, via tracemalloc.

    The peak is measured relative to the memory traced when the call starts. If
    tracemalloc is already tracing, it is left running; otherwise it is started and
    stopped around the call.

    Parameters
    ----------
    fn : Callable[[], T]
        Zero-argument callable.

    Returns
    -------
    tuple[int, T]
        Peak additional traced memory in bytes, and the value returned by ``fn``.
    """
    started_here = not tracemalloc.is_tracing()
    if started_here:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base, _ = tracemalloc.get_traced_memory()
        result = fn()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        if started_here:
            tracemalloc.stop()
    return max(peak - base, 0), result


def measure(fn: Callable[..., Any], *args: Any, repeat: int = 5) -> dict[str, Any]:
    """Call ``fn(*args)`` ``repeat`` times back to back and summarise the wall times.

    Interleaving with other cases is not done here; use :func:`interleave` (or loop
    over cases yourself) when comparing several implementations.

    Parameters
    ----------
    fn : Callable[..., Any]
        Callable to time.
    *args : Any
        Positional arguments passed to ``fn`` on every call.
    repeat : int, default 5
        Number of timed calls (at least 1).

    Returns
    -------
    dict[str, Any]
        ``{"seconds": list of per-call times, "median_seconds", "min_seconds",
        "max_seconds", "result": value returned by the last call}``.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    times: list[float] = []
    result: Any = None
    for _ in range(repeat):
        gc.collect()
        seconds, result = time_call(lambda: fn(*args))
        times.append(seconds)
    return {
        "seconds": times,
        "median_seconds": statistics.median(times),
        "min_seconds": min(times),
        "max_seconds": max(times),
        "result": result,
    }


def interleave_runs(
    cases: dict[str, Callable[[], int]], repeat: int, *, warmup: bool = True
) -> pd.DataFrame:
    """Run every case once per round, round-robin, and return one row per timed run.

    In round ``r`` the cases run in their dict order rotated by ``r`` positions, so no
    case is always first or always last. Each run is timed with :func:`time_call` after
    a :func:`gc.collect`.

    Parameters
    ----------
    cases : dict[str, Callable[[], int]]
        Case name -> zero-argument callable returning the number of requests completed.
    repeat : int
        Number of rounds (timed runs per case, at least 1).
    warmup : bool, default True
        If true, run every case once, untimed, before the first round.

    Returns
    -------
    pandas.DataFrame
        Columns ``case``, ``round``, ``seconds``, ``requests`` and
        ``requests_per_second``, one row per timed run in the order the runs happened.
    """
    if repeat < 1:
        raise ValueError("repeat must be at least 1")
    names = list(cases)
    if warmup:
        for name in names:
            cases[name]()
    rows: list[dict[str, Any]] = []
    for r in range(repeat):
        k = r % len(names) if names else 0
        for name in names[k:] + names[:k]:
            gc.collect()
            seconds, requests = time_call(cases[name])
            rows.append(
                {
                    "case": name,
                    "round": r,
                    "seconds": seconds,
                    "requests": requests,
                    "requests_per_second": requests / seconds,
                }
            )
    columns = ["case", "round", "seconds", "requests", "requests_per_second"]
    return pd.DataFrame(rows, columns=columns)


def summarise_runs(runs: pd.DataFrame, names: list[str] | None = None) -> pd.DataFrame:
    """Per-case medians of the rows returned by :func:`interleave_runs`.

    Parameters
    ----------
    runs : pandas.DataFrame
        Rows from :func:`interleave_runs`.
    names : list[str], optional
        Cases to report, in this order; default: in order of first appearance.

    Returns
    -------
    pandas.DataFrame
        Indexed by case name, with columns ``runs``, ``seconds`` (median wall time),
        ``requests`` (median requests completed) and ``requests_per_second`` (median
        over runs of requests / seconds).
    """
    columns = ["seconds", "requests", "requests_per_second"]
    if runs.empty:
        return pd.DataFrame(columns=["runs", *columns], index=pd.Index([], name="case"))
    summary = runs.groupby("case", sort=False)[columns].median()
    summary.insert(0, "runs", runs.groupby("case", sort=False).size())
    return summary.reindex(names) if names is not None else summary


def interleave(
    cases: dict[str, Callable[[], int]], repeat: int, *, warmup: bool = True
) -> pd.DataFrame:
    """Run every case once per round, round-robin, and report per-case medians.

    Same runs as :func:`interleave_runs`, summarised by :func:`summarise_runs`.

    Parameters
    ----------
    cases : dict[str, Callable[[], int]]
        Case name -> zero-argument callable returning the number of requests completed.
    repeat : int
        Number of rounds (timed runs per case, at least 1).
    warmup : bool, default True
        If true, run every case once, untimed, before the first round.

    Returns
    -------
    pandas.DataFrame
        Indexed by case name (in the given order), with columns ``runs``, ``seconds``
        (median wall time), ``requests`` (median requests completed) and
        ``requests_per_second`` (median over runs of requests / seconds).
    """
    runs = interleave_runs(cases, repeat, warmup=warmup)
    return summarise_runs(runs, list(cases))


# ---- marginal CPU per request of simulator scenarios (bench-fleet, -overload, -internals) ----

def cpu_run(scenario: Any, seed: int) -> tuple[float, int]:
    """(CPU seconds of one whole ``simulator.simulate`` run, requests it ended)."""
    import simulator

    gc.collect()
    t0 = time.process_time()
    res = simulator.simulate(scenario, seed=seed)
    cpu = time.process_time() - t0
    return cpu, int((res.requests["status"] != "in_flight").sum())


def window_run(scenario: Any, seed: int, skip: float) -> tuple[float, int]:
    """(CPU seconds, requests created) of one run's simulation after its first ``skip``
    simulated seconds, up to its end: the part of the run that scales with requests.

    Read at :func:`simulator.simulate`'s progress stops, so building the topology, the first
    draws of every instance's random blocks and the end-of-run tables are all outside the
    window, and their noise (page faults of a fresh 4096-instance fleet vary by tens of
    milliseconds from run to run) does not swamp the per-request figure."""
    import simulator

    marks: list[tuple[float, int]] = []

    def mark(now: float, end: float, footprint: tuple[int, int]) -> None:
        if (not marks and now >= skip) or now >= end:
            marks.append((time.process_time(), footprint[0]))

    gc.collect()
    simulator.simulate(scenario, seed=seed, progress=mark)
    if len(marks) < 2:  # the first stop at or after ``skip`` was the end: an empty window
        raise ValueError(f"skip {skip:g} s leaves no progress stop before the run's end")
    (c0, n0), (c1, n1) = marks[0], marks[-1]
    return c1 - c0, n1 - n0


def window_rounds(runs: dict[Any, tuple[Any, float]], repeat: int, seed: int, tag: str
                  ) -> dict[Any, list[float]]:
    """CPU seconds per request of each case inside its run's window (:func:`window_run`),
    one figure per round; ``runs`` maps a case to (scenario, skip). A warm-up run each, then
    ``repeat`` rounds in an order rotated each round; progress to stderr."""
    def per_request(k: Any) -> float:
        cpu, n = window_run(runs[k][0], seed, runs[k][1])
        return cpu / n

    return _rotated_rounds(list(runs), lambda k: window_run(runs[k][0], seed, runs[k][1]),
                           per_request, repeat, tag)


def _rotated_rounds(keys: list[Any], warm: Callable[[Any], object],
                    measure: Callable[[Any], float], repeat: int, tag: str
                    ) -> dict[Any, list[float]]:
    """``warm(k)`` once per case, then ``repeat`` rounds of ``measure(k)`` for every case in an
    order rotated each round (slow drift of the machine hits every case alike); a progress
    line per round, with the load average, to stderr."""
    import os
    import sys

    for k in keys:
        warm(k)
    per: dict[Any, list[float]] = {k: [] for k in keys}
    for r in range(repeat):
        print(f"[{tag}] round {r + 1} / {repeat}  load {os.getloadavg()[0]:.2f}",
              file=sys.stderr, flush=True)
        turn = r % len(keys)
        for k in keys[turn:] + keys[:turn]:
            per[k].append(measure(k))
    return per


def marginal_rounds(runs: dict[Any, tuple[Any, Any]], repeat: int, seed: int, tag: str
                    ) -> dict[Any, list[float]]:
    """Marginal CPU seconds per request of each case, one figure per round.

    ``runs`` maps a case to its scenario for ``T`` and for ``2T`` simulated seconds; a case's
    figure is ``(cpu(2T) - cpu(T)) / (requests(2T) - requests(T))``, so building the topology
    and the tables of the first T cancel out. Every case runs once untimed first; then
    ``repeat`` rounds run every case, in an order rotated each round, so that slow drift of
    the machine affects every case alike. Progress (with the load average) goes to stderr.
    """
    def marginal(k: Any) -> float:
        c1, n1 = cpu_run(runs[k][0], seed)
        c2, n2 = cpu_run(runs[k][1], seed)
        return (c2 - c1) / (n2 - n1)

    return _rotated_rounds(list(runs), lambda k: cpu_run(runs[k][0], seed), marginal, repeat,
                           tag)


def machine_lines(seed: int, rounds: int, setting: str, load0: tuple[float, ...]) -> str:
    """The lines that head a benchmark's output: versions, machine, seed, rounds, the setting
    measured, and the load average before and now."""
    import os
    import platform

    import simulator

    load1 = os.getloadavg()
    return (f"simulator {simulator.__version__} | Python {platform.python_version()} | "
            f"{platform.machine()} | {os.cpu_count()} CPUs | seed {seed} | {rounds} round(s) "
            f"| {setting}\nload average (1, 5, 15 min): before {load0[0]:.2f} {load0[1]:.2f} "
            f"{load0[2]:.2f}, after {load1[0]:.2f} {load1[1]:.2f} {load1[2]:.2f}")


#: Fewest interleaved rounds from which a benchmark states a verdict: one or two rounds show no
#: spread that would reveal a busy machine.
MIN_VERDICT_ROUNDS = 3


def ratio_verdict(base: list[float], case: list[float], bound: float, max_spread: float
                  ) -> tuple[list[float], float, float, str]:
    """Per-round ratios ``case / base``, their median and relative spread, and the verdict:
    within or over ``bound``, or none when the rounds disagree by more than ``max_spread``
    (a busy machine) or when there are fewer than :data:`MIN_VERDICT_ROUNDS` rounds (too few
    to judge the noise by)."""
    ratios = [b / a for a, b in zip(base, case, strict=True)]
    ratio = statistics.median(ratios)
    spread = (max(ratios) - min(ratios)) / ratio
    if len(ratios) < MIN_VERDICT_ROUNDS:
        said = (f"no verdict (fewer than {MIN_VERDICT_ROUNDS} rounds: no spread to judge the "
                "noise by)")
    elif spread > max_spread:
        said = (f"no verdict (the rounds disagree by more than {max_spread:.0%}: a busy "
                "machine; rerun on a quiet one)")
    else:
        said = f"{'within' if ratio <= bound else 'OVER'} the {bound:g}x bound"
    return ratios, ratio, spread, said


def bench_parser(doc: str | None, repeat: int, duration: float) -> Any:
    """The command line every marginal-CPU benchmark takes: ``--repeat`` rounds, ``--duration``
    T, ``--max-spread`` for a verdict and ``--seed``."""
    import argparse

    parser = argparse.ArgumentParser(description=doc.splitlines()[0] if doc else None)
    parser.add_argument("--repeat", type=int, default=repeat,
                        help=f"interleaved rounds (default {repeat})")
    parser.add_argument("--duration", type=float, default=duration,
                        help=f"T, simulated seconds of the shorter run (default {duration:g})")
    parser.add_argument("--max-spread", type=float, default=0.15,
                        help="largest spread of the per-round ratios, relative to their "
                             "median, for which a verdict is printed (default 0.15)")
    parser.add_argument("--seed", type=int, default=1)
    return parser


def marginal_cases(scenario: Callable[[Any, float], Any], cases: Any, args: Any, tag: str
                   ) -> dict[Any, list[float]]:
    """:func:`marginal_rounds` of ``scenario(case, T)`` against ``scenario(case, 2T)`` for
    every case, ``T``, the rounds and the seed from :func:`bench_parser`'s ``args``."""
    t = args.duration
    runs = {c: (scenario(c, t), scenario(c, 2 * t)) for c in cases}
    return marginal_rounds(runs, args.repeat, args.seed, tag)


# ---- whole-process CPU of a fresh, pinned subprocess (make bench) ----

def pin_prefix() -> tuple[list[str], str]:
    """The command prefix that pins a child to CPU 0 (``taskset -c 0``) and a note saying so,
    or no prefix and a note that the runs are not pinned."""
    import shutil

    if shutil.which("taskset"):
        return ["taskset", "-c", "0"], "pinned to CPU 0 (taskset -c 0)"
    return [], "NOT pinned (no taskset on this machine)"


def child_run(argv: list[str]) -> tuple[float, float, str]:
    """Run ``argv`` as a fresh process; return (user + system CPU seconds of the whole process,
    from :func:`os.wait4`; its peak resident set in MiB; its stdout)."""
    import os
    import subprocess
    import tempfile

    # stderr to a file, not a pipe: reading two pipes in turn could deadlock, and
    # communicate() would reap the child before os.wait4 could read its rusage
    with tempfile.TemporaryFile("w+") as errfile:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=errfile, text=True)
        assert proc.stdout is not None
        out = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
        if proc.returncode != 0:
            errfile.seek(0)
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}):\n{errfile.read()}")
    # ru_maxrss is in KiB on Linux
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, out


def spread_of(values: list[float]) -> float:
    """(max - min) / median of ``values`` (0 for fewer than two)."""
    if len(values) < 2:
        return 0.0
    return (max(values) - min(values)) / statistics.median(values)
