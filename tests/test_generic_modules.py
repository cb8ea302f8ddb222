"""The plug-in architecture holds: generic modules name no kind, kinds declare themselves in
SimPy-free packages, and no module outgrows what one person can hold in their head."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from simulator import registry

ROOT = Path(__file__).resolve().parents[1]
#: The modules that loop over what kinds declare (issue 11, item 1).
GENERIC = ("simulator/results.py", "simulator/metrics/recorder.py", "simulator/faults.py",
           "simulator/timeline.py", "simulator/cli.py", "simulator/analysis/report.py",
           "simulator/analysis/diagram/__init__.py", "simulator/analysis/diagram/graph.py",
           "simulator/analysis/diagram/draw.py")


def kind_name_pattern() -> re.Pattern[str]:
    """A kind's name standing alone or as part of an identifier (``cache``, ``queue_summary``),
    any case: ``grep -nPi '(?<![a-z])(service|cache|...)(?![a-z])' FILES`` in the shell."""
    names = "|".join(sorted(registry.kinds()))
    return re.compile(rf"(?<![a-z])({names})(?![a-z])", re.IGNORECASE)


@pytest.mark.parametrize("module", GENERIC)
def test_generic_modules_name_no_kind(module: str) -> None:
    pattern = kind_name_pattern()
    hits = [f"{module}:{i}: {line.strip()}"
            for i, line in enumerate((ROOT / module).read_text().splitlines(), 1)
            if pattern.search(line)]
    assert hits == []


def test_no_module_over_500_lines() -> None:
    big = {str(p.relative_to(ROOT)): n for p in (ROOT / "simulator").rglob("*.py")
           if (n := len(p.read_text().splitlines())) > 500}
    assert big == {}


def test_every_builtin_kind_declares_itself_without_simpy_or_pandas() -> None:
    code = ("import sys; from simulator import registry; ks = registry.kinds(); "
            "bad = {'simpy', 'pandas', 'pyarrow', 'matplotlib'} & set(sys.modules); "
            "print(len(ks), sorted(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True).stdout.split(maxsplit=1)
    assert int(out[0]) == len(registry.BUILTIN)
    assert out[1].strip() == "[]"
    for name in registry.BUILTIN:
        module = sys.modules[name]
        assert getattr(module, "KIND", None) is not None, f"{name} has no KIND declaration"


@pytest.mark.parametrize("code", [
    "import simulator",
    "import simulator.units",
    "import simulator.scenario",
    "import simulator; simulator.load_scenario('scenarios/cache_aside.yaml')",
])
def test_the_scenario_layer_loads_no_engine_or_tables(code: str) -> None:
    probe = (f"{code}\nimport sys; print(sorted({{'simpy', 'pandas', 'pyarrow', "
             "'matplotlib'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         cwd=ROOT, timeout=60, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"
