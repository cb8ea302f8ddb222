"""Start-up cost: whole-process CPU time of short commands (``make bench-start``).

Every case is a fresh interpreter, timed from outside: the CPU time (user + system) and the
peak resident set of that one child, from ``os.wait4``, so imports, validation, building the
topology, simulating, assembling the tables and printing all count, as they do for a user
typing the command. Cases:

* ``python -c pass``: the interpreter alone (the floor nothing here can lower);
* ``import simulator``;
* ``simulator validate scenarios/quickstart.yaml``;
* ``simulator kinds``;
* ``simulator run`` of the quickstart for one simulated second (``--set duration=1s --set
  warmup=0s``: about 1 000 requests), where start-up is nearly everything.

The cases run in interleaved rounds (each round runs every case once, in an order rotated
each round) after one untimed warm-up round, so the file cache is warm and drift of the
machine hits every case alike; the report gives medians. A separate untimed run of each case
notes which of pandas, pyarrow, matplotlib, scipy and numpy it imported. The machine's load
average is printed before and after: CPU time is less sensitive to other load than wall time,
but not immune (shared caches, frequency), so quote figures from a quiet machine.

    .venv/bin/python benchmarks/startup.py [--rounds 7]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pyarrow", "matplotlib", "scipy", "numpy")

#: name -> arguments after ``python``.
CASES: dict[str, list[str]] = {
    "python -c pass": ["-c", "pass"],
    "import simulator": ["-c", "import simulator"],
    "validate quickstart": ["-m", "simulator", "validate", "scenarios/quickstart.yaml"],
    "kinds": ["-m", "simulator", "kinds"],
    "run 1,000 requests": ["-m", "simulator", "run", "scenarios/quickstart.yaml",
                           "--set", "duration=1s", "--set", "warmup=0s"],
}

#: Runs a case's arguments as ``python`` would, then prints the heavy modules it imported.
_PROBE = f"""
import runpy, sys
args = sys.argv[1:]
try:
    if args[0] == "-c":
        exec(compile(args[1], "<string>", "exec"), {{"__name__": "__main__"}})
    else:
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
except SystemExit:
    pass
finally:
    print(" ".join(m for m in {HEAVY!r} if m in sys.modules) or "-", file=sys.__stderr__)
"""


#: The children's environment: this one without ``PYTHONDONTWRITEBYTECODE``, which some
#: sandboxes set. Without it the warm-up round writes ``__pycache__`` as a user's first run
#: does, and every timed run loads bytecode instead of compiling the simulator's ~110 modules
#: from source (about 0.1 s of CPU a run), as a user's every later run does.
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(args: list[str]) -> tuple[float, float, float]:
    """Run ``python *args`` once; return (CPU seconds, wall seconds, peak RSS MiB)."""
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=CHILD_ENV)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"python {' '.join(args)} exited with {proc.returncode}")
    # ru_maxrss is in KiB on Linux
    return usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss / 1024


def imported(args: list[str]) -> str:
    """The heavy modules a case imports (an untimed run)."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], cwd=ROOT,
                          capture_output=True, text=True, check=True, env=CHILD_ENV)
    return proc.stderr.strip().splitlines()[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds (default 7)")
    args = parser.parse_args(argv)

    names = list(CASES)
    load_before = os.getloadavg()
    for name in names:  # warm-up: file cache, bytecode
        timed(CASES[name])
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in names}
    for r in range(args.rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            runs[name].append(timed(CASES[name]))
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)
    load_after = os.getloadavg()
    unset = (" (PYTHONDONTWRITEBYTECODE, set here, unset for the runs)"
             if "PYTHONDONTWRITEBYTECODE" in os.environ else "")

    print(f"Python {platform.python_version()} | {platform.machine()} | {os.cpu_count()} CPUs"
          f" | {args.rounds} rounds, medians | load average before "
          f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}, after "
          f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} | bytecode cached"
          f"{unset}")
    print(f"{'case':<22}{'CPU s':>7}{'min':>7}{'max':>7}{'wall s':>8}{'RSS MiB':>9}  imports")
    for name in names:
        cpu = [c for c, _, _ in runs[name]]
        wall = statistics.median(w for _, w, _ in runs[name])
        rss = statistics.median(m for _, _, m in runs[name])
        print(f"{name:<22}{statistics.median(cpu):>7.3f}{min(cpu):>7.3f}{max(cpu):>7.3f}"
              f"{wall:>8.3f}{rss:>9.1f}  {imported(CASES[name])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
