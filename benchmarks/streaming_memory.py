"""Peak memory of streaming runs: 10 million requests against 1 million (a benchmark, not a test).

Each run happens in a fresh subprocess, on ``scenarios/p2c.yaml`` (Poisson 44 800/s -> power of
two -> 8 services x 4 workers) with ``metrics.requests=streaming`` and the duration set to give
the wanted number of requests. Two measures, each in its own run because tracing changes the
other:

* ``traced MiB``: peak Python heap allocated during ``simulate()`` (:mod:`tracemalloc`, started
  after the scenario is loaded), result tables included;
* ``RSS MiB``: growth of the process's peak resident set during ``simulate()``
  (``ru_maxrss`` after minus the resident set before), which also sees memory outside the
  Python heap (numpy buffers are traced too), and that peak itself (``peak RSS``).

Both start after a 1,000-request run in the same process, so that the modules imported
lazily (pandas among them, a start-up cost) are loaded before measuring. A table-mode run of
the smallest size is added for comparison (``--no-table`` to skip it).
The acceptance bound (issue 15) is a 10M/1M ratio of at most 1.1 of the process's peak resident
set (``peak RSS``, ``ru_maxrss``) for streaming: what a user sees. The growth during the run is
printed too, in MiB; it is a few MiB at most (the ``samples`` table grows with simulated
time, not requests), so its ratio between the two sizes is a ratio of noise-sized numbers.

    .venv/bin/python benchmarks/streaming_memory.py            # 1M and 10M: several minutes
    .venv/bin/python benchmarks/streaming_memory.py --sizes 100000 1000000   # quicker
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenarios" / "p2c.yaml"
RATE = 44_800.0  # requests per second in p2c.yaml
BOUND = 1.1  # largest 10M / 1M ratio of the streaming runs' peak RSS (issue 15)


def child(requests: int, mode: str, measure: str) -> dict[str, object]:
    """Run once in this process and return the measurements."""
    import simulator

    duration = requests / RATE
    overrides = [f"duration={duration!r}", f"metrics.requests={mode}", "metrics.spans=false"]
    # a 1,000-request run first loads every lazily imported module (pandas among them: about
    # 100 MiB resident, a start-up cost): what is measured is what the run itself adds
    simulator.simulate(simulator.load_scenario(SCENARIO, [f"duration={1000 / RATE!r}",
                                                          *overrides[1:]]), seed=2)
    scenario = simulator.load_scenario(SCENARIO, overrides)
    out: dict[str, object] = {"requests": requests, "mode": mode, "measure": measure}
    if measure == "traced":
        tracemalloc.start()
        t0 = time.perf_counter()
        results = simulator.simulate(scenario, seed=1)
        wall = time.perf_counter() - t0
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        out["traced_mib"] = peak / 2**20
    else:
        before = _rss_kib()
        t0 = time.perf_counter()
        results = simulator.simulate(scenario, seed=1)
        wall = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        out["rss_mib"] = (peak - before) / 1024
        out["peak_rss_mib"] = peak / 1024
    out["wall_s"] = wall
    summary = results.summary()
    row = summary[summary["scope"] == "workload"].iloc[0]
    out["created_in_window"] = int(row["count"])
    out["p50_ms"] = float(row["p50"]) * 1e3
    out["p99_ms"] = float(row["p99"]) * 1e3
    return out


def _rss_kib() -> int:
    """Current resident set, KiB (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(requests: int, mode: str, measure: str) -> dict[str, object]:
    """Run :func:`child` in a fresh interpreter (same sys.path) and return its result."""
    code = (f"import sys, json; sys.path[:0] = {sys.path!r}; import streaming_memory as m; "
            f"print(json.dumps(m.child({requests}, {mode!r}, {measure!r})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=HERE)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """Measure every size in both ways; print a table and the 10M/1M ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000],
                        help="requests per run (default 1e6 1e7)")
    parser.add_argument("--no-table", action="store_true",
                        help="skip the table-mode comparison run")
    args = parser.parse_args(argv)
    rows = []
    plan = [(n, "streaming") for n in args.sizes]
    if not args.no_table:
        plan.append((min(args.sizes), "table"))
    for n, mode in plan:
        for measure in ("rss", "traced"):
            print(f"[memory] {mode} {n:,} requests, {measure}", file=sys.stderr, flush=True)
            rows.append(run_child(n, mode, measure))
    print(f"{'mode':<10} {'requests':>12} {'traced MiB':>11} {'RSS MiB':>8} {'peak RSS':>9} "
          f"{'wall s':>7} {'p50 ms':>7} {'p99 ms':>7}")
    by: dict[tuple[int, str], dict[str, float]] = {}
    for r in rows:
        key = (int(str(r["requests"])), str(r["mode"]))
        entry = by.setdefault(key, {})
        for k in ("traced_mib", "rss_mib", "peak_rss_mib", "p50_ms", "p99_ms"):
            if k in r:
                entry[k] = float(str(r[k]))
        if r["measure"] == "rss":
            entry["wall_s"] = float(str(r["wall_s"]))
    for (n, mode), e in by.items():
        print(f"{mode:<10} {n:>12,} {e['traced_mib']:>11.2f} {e['rss_mib']:>8.1f} "
              f"{e['peak_rss_mib']:>9.1f} {e['wall_s']:>7.1f} {e['p50_ms']:>7.4f} "
              f"{e['p99_ms']:>7.4f}")
    sizes = sorted(args.sizes)
    if len(sizes) >= 2:
        small, big = by[sizes[0], "streaming"], by[sizes[-1], "streaming"]
        ratio = big["peak_rss_mib"] / small["peak_rss_mib"]
        print(f"streaming {sizes[-1]:,} / {sizes[0]:,}: process peak RSS x{ratio:.3f} "
              f"(bound: {BOUND}: {'holds' if ratio <= BOUND else 'does NOT hold'}); RSS growth "
              f"{small['rss_mib']:+.1f} -> {big['rss_mib']:+.1f} MiB, traced peak "
              f"{small['traced_mib']:.2f} -> {big['traced_mib']:.2f} MiB")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
