"""A fast start: what loads pandas, pyarrow and matplotlib, and what must not.

They cost most of the start-up of a short command (``benchmarks/startup.py`` measures it), so
they are imported where tables are assembled, written or drawn: ``import simulator``, scenario
validation, ``simulator validate``/``kinds``/``schema`` and importing the engine and the
component classes load none of them. Each check runs in a fresh interpreter (this process has
long since imported everything) and looks at ``sys.modules``; none is a timing.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("pandas", "pyarrow", "matplotlib")
#: every shipped scenario, so that every kind's parameters and checks are validated
SCENARIOS = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "scenarios").glob("*.yaml"))

#: Runs its arguments as ``python`` would (``-c CODE`` or ``-m MODULE ARGS``), then prints the
#: heavy modules that were imported, whatever the exit status.
PROBE = f"""
import runpy, sys
args = sys.argv[1:]
try:
    if args[0] == "-c":
        exec(compile(args[1], "<string>", "exec"), {{"__name__": "__main__"}})
    else:
        sys.argv = [args[1], *args[2:]]
        runpy.run_module(args[1], run_name="__main__", alter_sys=True)
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("HEAVY", *[m for m in {HEAVY!r} if m in sys.modules], file=sys.__stderr__)
sys.exit(code)
"""


def loaded(*args: str) -> list[str]:
    """The heavy modules ``python *args`` imports (it must succeed)."""
    proc = subprocess.run([sys.executable, "-c", PROBE, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    (line,) = [x for x in proc.stderr.splitlines() if x.startswith("HEAVY")]
    return line.split()[1:]


@pytest.mark.parametrize("args", [
    ("-c", "import simulator"),
    ("-c", "import simulator; simulator.load_scenario('scenarios/quickstart.yaml')"),
    ("-c", "import simulator; simulator.json_schema(); simulator.kinds()"),
    ("-m", "simulator", "validate", *SCENARIOS),
    ("-m", "simulator", "kinds"),
    ("-m", "simulator", "schema"),
], ids=["import", "load_scenario", "schema-and-kinds", "cli-validate", "cli-kinds",
        "cli-schema"])
def test_no_tables_no_pandas(args: tuple[str, ...]) -> None:
    assert loaded(*args) == []


def test_the_simulation_modules_load_no_pandas() -> None:
    """The engine, the topology and every kind's component class: pandas comes with the
    tables, when ``simulate`` is called."""
    code = ("import simulator.engine, simulator.topology, simulator.timeline\n"
            "from simulator import registry\n"
            "for k in registry.kinds().values(): k.component_class()\n")
    assert loaded("-c", code) == []


def test_the_probe_sees_what_a_run_loads() -> None:
    """A run builds its tables in pandas: the probe must notice (else the checks above
    could not fail)."""
    assert "pandas" in loaded("-m", "simulator", "run", "scenarios/quickstart.yaml",
                              "--set", "duration=1s", "--set", "warmup=0s")
