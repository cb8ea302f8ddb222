"""Peak memory of replaying a 10^6-arrival trace against a 10^5 one (``make bench-trace``).

Issue 17 asks that replaying a 10^6-arrival trace streams it without loading it whole into
memory. Each case writes a CSV trace of ``n`` Poisson arrivals (1,000/s: 10^6 rows are a
16-minute log, about 20 MB) and replays it in a fresh process into one service with
``metrics: {requests: streaming}`` (counters and histograms, flat memory) and spans off, so
that what could grow with ``n`` is the trace itself. The figure is the child's peak resident
set (``ru_maxrss``), with the file size beside it: a reader that held the trace would add at
least the file's size between the two cases (CSV rows as Python floats take more than the
file). The load-time check reads the file twice too (rows and SHA-256), streamed as well.

    .venv/bin/python benchmarks/trace_memory.py [--sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CHILD = """
import resource, sys, time
import simulator
t0 = time.process_time()
s = simulator.load_scenario(sys.argv[1])
r = simulator.simulate(s, seed=1)
print(r.request_count(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
      time.process_time() - t0)
"""

SCENARIO = """name: trace-memory
duration: {duration}s
metrics: {{requests: streaming, spans: false, interval: 60s}}
workloads:
  w:
    arrivals: {{process: trace, file: {file}}}
    target: api
components:
  api: {{kind: service, workers: 4, service_time: {{dist: exponential, mean: 2ms}}}}
"""


def write_trace(path: Path, n: int, rate: float = 1000.0) -> float:
    """A CSV of ``n`` Poisson arrival times at ``rate``; returns the last time."""
    times = np.cumsum(np.random.default_rng(1).exponential(1 / rate, n))
    with path.open("w") as fh:
        fh.write("t\n")
        for chunk in np.array_split(times, max(1, n // 100_000)):
            fh.write("\n".join(f"{t:.6f}" for t in chunk) + "\n")
    return float(times[-1])


def main(argv: list[str] | None = None) -> int:
    """Replay each size in a fresh process; print rows, file size, peak RSS and CPU."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    args = parser.parse_args(argv)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{'arrivals':>10} {'file MB':>8} {'replayed':>10} {'peak RSS MB':>12} {'CPU s':>7}")
    rss = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            trace = Path(tmp) / f"trace-{n}.csv"
            last = write_trace(trace, n)
            scenario = Path(tmp) / f"s-{n}.yaml"
            scenario.write_text(SCENARIO.format(duration=int(last) + 1, file=trace))
            out = subprocess.run([sys.executable, "-c", CHILD, str(scenario)], check=True,
                                 capture_output=True, text=True).stdout.split()
            count, peak_kb, cpu = int(out[0]), int(out[1]), float(out[2])
            rss[n] = peak_kb / 1024
            print(f"{n:>10,} {trace.stat().st_size / 2**20:>8.1f} {count:>10,} "
                  f"{rss[n]:>12.1f} {cpu:>7.1f}")
    if len(rss) > 1:
        small, big = min(rss), max(rss)
        print(f"peak RSS {big:,} / {small:,} arrivals: {rss[big] / rss[small]:.2f}x "
              f"(+{rss[big] - rss[small]:.1f} MB for {big - small:,} more rows)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
