"""The public API is pinned: what ``simulator``, ``simulator.experiment`` and the plots export,
and the notebooks use nothing else from the package."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import simulator
import simulator.analysis.plots as plots
import simulator.experiment as experiment

ROOT = Path(__file__).resolve().parents[1]

SIMULATOR = ["Kind", "Results", "Scenario", "ScenarioError", "ScenarioWarning",
             "SimulatorError", "Status",
             "TopologyError", "diagram", "json_schema", "kinds", "load_scenario", "loads_scenario",
             "parse_scenario", "register", "simulate"]
EXPERIMENT = ["DEFAULT_METRICS", "EXECUTORS", "Capacity", "Comparison", "Condition",
              "DaskExecutor", "Executor", "ExecutorError", "ExperimentOptions", "ProcessExecutor",
              "Replications", "RunCache", "RunSpec", "SerialExecutor", "Source", "Sweep",
              "capacity", "code_version", "compare", "execute", "make_executor", "parse_slo",
              "replicate", "sweep", "vary"]
PLOTS = ["ARRIVAL_PARTS", "CORE_PLOTS", "NoDataError", "PlotAccessor", "comparison_chart",
         "fault_windows", "figure", "heatmap_counts", "latency_cdf_overlay", "latency_vs_load",
         "plot_directory", "render", "shade_windows", "write_plots"]


def test_exports_are_pinned_and_resolve() -> None:
    for module, names in ((simulator, SIMULATOR), (experiment, EXPERIMENT), (plots, PLOTS)):
        assert sorted(module.__all__) == sorted(names), module.__name__
        for name in names:
            assert getattr(module, name) is not None, (module.__name__, name)


def imported_names(code: str) -> set[str]:
    """``module:name`` of every ``from simulator... import name`` in Python code."""
    out = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("simulator"):
            out |= {f"{node.module}:{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("simulator")}
    return out


def test_notebooks_use_only_the_public_api() -> None:
    public = ({f"simulator:{n}" for n in SIMULATOR} | {"simulator"}
              | {f"simulator.experiment:{n}" for n in EXPERIMENT}
              | {f"simulator.analysis.plots:{n}" for n in PLOTS})
    used: set[str] = set()
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(path.read_text())["cells"]
        for cell in cells:
            if cell["cell_type"] == "code":
                used |= imported_names("".join(cell["source"]))
    assert "simulator" in used and used <= public, used - public
