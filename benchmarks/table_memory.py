"""Peak memory per request of a table-mode run with default metrics (``make bench-memory``).

Issue 15 asks for at most 150 bytes per request at the peak of a 10^6-request run with
default metrics (no ``metrics`` block). Each case runs ``benchmarks/scenarios/p2c.yaml``
(Poisson 44 800/s -> power of two -> 8 services x 4 workers: one span a request) with its
``metrics`` block removed, the duration set for ``--requests`` requests, in a fresh
interpreter, twice (tracing changes the other measure):

* ``traced B/req``: peak Python heap allocated during ``simulate()`` (:mod:`tracemalloc`,
  started after the scenario is loaded; numpy and ``array.array`` buffers are traced),
  divided by the requests created;
* ``RSS B/req``: growth of the process's peak resident set during ``simulate()``
  (``ru_maxrss`` after minus the resident set before), divided by the requests created.

Three cases separate the tables: ``default`` (no metrics block: whatever ``spans: auto``
decides at that size), ``spans off`` (``metrics.spans=false``: the requests table alone) and
``spans on`` (``metrics.spans=true``: requests and spans). ``table B/req`` is what the final
tables hold (``DataFrame.memory_usage(deep=True)``, requests and spans); the difference
between ``spans on`` and ``spans off`` is the cost of the spans. ``--top`` prints the largest
allocation sites at the traced peak of the default case.

    .venv/bin/python benchmarks/table_memory.py                 # 10^6 requests, about a minute
    .venv/bin/python benchmarks/table_memory.py --requests 200000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
SCENARIO = HERE / "scenarios" / "p2c.yaml"
RATE = 44_800.0  # requests per second in p2c.yaml
BOUND = 150.0  # bytes per request at the peak, default metrics (issue 15)
CASES = {"default": [], "spans off": ["metrics.spans=false"], "spans on": ["metrics.spans=true"]}


def child(path: str, requests: int, case: str, measure: str, top: int = 0) -> dict[str, object]:
    """Run once in this process and return the measurements."""
    import simulator

    overrides = [f"duration={requests / RATE!r}", *CASES[case]]
    # a 1,000-request run first loads every lazily imported module (pandas among them)
    simulator.simulate(simulator.load_scenario(path, [f"duration={1000 / RATE!r}",
                                                      *CASES[case]]), seed=2)
    scenario = simulator.load_scenario(path, overrides)
    out: dict[str, object] = {"case": case, "measure": measure,
                              "spans_recorded": scenario.record_spans()}
    if measure == "traced":
        tracemalloc.start(8 if top else 1)
        results = simulator.simulate(scenario, seed=1)
        _, peak = tracemalloc.get_traced_memory()
        out["traced"] = peak
    else:
        before = _rss_kib()
        t0 = time.perf_counter()
        results = simulator.simulate(scenario, seed=1)
        out["wall_s"] = time.perf_counter() - t0
        out["rss"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024
    out["requests"] = len(results.requests)
    out["spans"] = len(results.spans)
    out["requests_table"] = int(results.requests.memory_usage(deep=True).sum())
    out["spans_table"] = int(results.spans.memory_usage(deep=True).sum())
    if measure == "traced":
        if top:
            del results  # the second run's snapshots show that run's memory alone
            out["top"] = _top_at_peak(path, overrides, top)
        tracemalloc.stop()
    return out


def _top_at_peak(path: str, overrides: list[str], top: int) -> list[str]:
    """The largest allocation sites held when the run ends (what recording kept alive) and
    once the tables are built (the frames, and any buffer still held), from a second traced
    run."""
    from typing import Any

    import pandas as pd

    import simulator
    from simulator.metrics import recorder

    snaps: list[tracemalloc.Snapshot] = []
    original = recorder.Recorder.tables

    def watched(self: recorder.Recorder) -> dict[str, pd.DataFrame]:
        snaps.append(tracemalloc.take_snapshot())
        tables = original(self)
        snaps.append(tracemalloc.take_snapshot())
        return tables

    patched: Any = recorder.Recorder
    patched.tables = watched
    try:
        simulator.simulate(simulator.load_scenario(path, overrides), seed=1)
    finally:
        patched.tables = original
    lines = []
    for title, snap in zip(("held when the run ends:", "held once the tables are built:"),
                           snaps, strict=False):
        lines.append(title)
        lines += [f"{s.size / 2**20:8.1f} MiB  {s.traceback.format()[-1].strip()}"
                  for s in snap.statistics("lineno")[:top]]
    return lines


def _rss_kib() -> int:
    """Current resident set, KiB (Linux ``/proc/self/status``)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run_child(path: Path, requests: int, case: str, measure: str, top: int = 0
              ) -> dict[str, object]:
    """Run :func:`child` in a fresh interpreter (same sys.path) and return its result."""
    code = (f"import sys, json; sys.path[:0] = {sys.path!r}; import table_memory as m; "
            f"print(json.dumps(m.child({str(path)!r}, {requests}, {case!r}, {measure!r}, "
            f"{top})))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=HERE)
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    """Measure each case both ways; print bytes per request and the verdict."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--top", type=int, default=0,
                        help="also print the N largest allocation sites at the peak")
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    data = yaml.safe_load(SCENARIO.read_text())
    data.pop("metrics", None)  # default metrics: no metrics block at all
    rows: dict[str, dict[str, object]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p2c-default-metrics.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        for case in CASES:
            for measure in ("rss", "traced"):
                print(f"[memory] {case}, {measure}", file=sys.stderr, flush=True)
                top = args.top if case == "default" and measure == "traced" else 0
                rows.setdefault(case, {}).update(run_child(path, args.requests, case,
                                                           measure, top))
    print(f"p2c.yaml without its metrics block, {args.requests:,} requests wanted, seed 1")
    print(f"{'case':<10} {'spans':>5} {'requests':>10} {'spans/req':>9} {'traced B/req':>12} "
          f"{'RSS B/req':>9} {'table B/req':>11} {'(requests':>9} {'+ spans)':>8} "
          f"{'wall s':>6}")
    for case, r in rows.items():
        n = int(str(r["requests"]))
        req_t, span_t = int(str(r["requests_table"])), int(str(r["spans_table"]))
        print(f"{case:<10} {'on' if r['spans_recorded'] else 'off':>5} {n:>10,} "
              f"{int(str(r['spans'])) / n:>9.2f} {int(str(r['traced'])) / n:>12.1f} "
              f"{int(str(r['rss'])) / n:>9.1f} {(req_t + span_t) / n:>11.1f} "
              f"{req_t / n:>9.1f} {span_t / n:>8.1f} {float(str(r['wall_s'])):>6.1f}")
    on, off = rows["spans on"], rows["spans off"]
    n_on, n_off = int(str(on["requests"])), int(str(off["requests"]))
    print(f"spans cost (on - off): traced "
          f"{int(str(on['traced'])) / n_on - int(str(off['traced'])) / n_off:.1f} B/req, RSS "
          f"{int(str(on['rss'])) / n_on - int(str(off['rss'])) / n_off:.1f} B/req")
    default = rows["default"]
    worst = max(int(str(default["traced"])), int(str(default["rss"]))) / int(
        str(default["requests"]))
    verdict = "holds" if worst <= BOUND else "does NOT hold"
    print(f"default metrics: peak {worst:.1f} B/request (the larger of traced and RSS); "
          f"bound {BOUND:.0f}: {verdict}")
    top_lines = default.get("top")
    for line in top_lines if isinstance(top_lines, list) else []:
        print("  " + str(line))
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
