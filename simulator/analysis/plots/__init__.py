"""Plots of runs and experiments. matplotlib is imported on first use only.

In a notebook: ``results.plot.latency_cdf()`` and every other plot the run and its kinds
declare (:class:`PlotAccessor`, :data:`CORE_PLOTS`, each kind's ``plots``); for several runs
or an experiment: :func:`latency_cdf_overlay`, :func:`comparison_chart` and
:func:`latency_vs_load`. ``results.plot.dashboard()`` draws the whole run on one shared time
axis (:mod:`.dashboard`), ``results.plot.latency_heatmap()`` every request per time window and
latency bucket (:func:`heatmap_counts` gives its numbers). From the CLI, ``simulator run
--plots`` and ``simulator plot DIR`` write PNGs with :func:`write_plots`.

Every plot reads the tables only. Plots over time shade the warm-up (grey) and every fault window
of the scenario (red), and mark the end of arrivals and the drain after it. A latency view says
what it covers: the CDF counts failed and unfinished requests as never done, the latency over
time draws the share of requests that did not succeed below the percentiles of those that did.
A plot whose data a run does not have (no cache, no queue, no breaker) is left out by
:func:`write_plots`; called directly, it raises :class:`NoDataError`.

Modules: :mod:`.style` (what plots share), :mod:`.run` (the run's own plots),
:mod:`.dashboard`, :mod:`.heatmap`, :mod:`.accessor`, :mod:`.experiment`, :mod:`.files`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from simulator.kind import Plot

if TYPE_CHECKING:
    from simulator.analysis.plots.accessor import PlotAccessor
    from simulator.analysis.plots.experiment import (
        comparison_chart,
        latency_cdf_overlay,
        latency_vs_load,
    )
    from simulator.analysis.plots.files import figure, plot_directory, render, write_plots
    from simulator.analysis.plots.heatmap import heatmap_counts
    from simulator.analysis.plots.style import (
        ARRIVAL_PARTS,
        NoDataError,
        fault_windows,
        shade_windows,
    )

#: Where each public name lives; imported on first use, so that loading the declarations
#: (:data:`CORE_PLOTS`, through the registry) imports neither pandas nor matplotlib.
_LAZY = {
    "PlotAccessor": "accessor",
    "comparison_chart": "experiment", "latency_cdf_overlay": "experiment",
    "latency_vs_load": "experiment",
    "figure": "files", "plot_directory": "files", "render": "files", "write_plots": "files",
    "heatmap_counts": "heatmap",
    "ARRIVAL_PARTS": "style", "NoDataError": "style", "fault_windows": "style",
    "shade_windows": "style",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


_RUN = "simulator.analysis.plots.run"
_DASH = "simulator.analysis.plots.dashboard"
_HEAT = "simulator.analysis.plots.heatmap"

#: The plots of every run (the kinds declare their own), in the order they are written.
CORE_PLOTS = (
    Plot("latency_cdf", f"{_RUN}:latency_cdf",
         "Latency CDF of all requests created in the measured window: the fraction done "
         "successfully within each latency (failed, timed-out, rejected and unfinished "
         "requests never are, so the curve stops at the success share).",
         applies=f"{_RUN}:has_measured_successes", size=(8, 4.5)),
    Plot("latency_over_time", f"{_RUN}:latency_over_time",
         "Latency percentiles of successful requests per time window, by completion time; "
         "below, the share of each window's requests that timed out, were rejected, failed "
         "or were unfinished.",
         applies=f"{_RUN}:has_requests", size=(10, 6)),
    Plot("throughput_over_time", f"{_RUN}:throughput_over_time",
         "Completed requests per second by status, by completion time.",
         applies=f"{_RUN}:has_completions"),
    Plot("goodput_over_time", f"{_RUN}:goodput_over_time",
         "Arrivals (offered load), throughput, goodput and errors per second.",
         applies=f"{_RUN}:has_requests"),
    Plot("load_over_time", f"{_RUN}:load_over_time",
         "Requests arriving per second at each component (retries and fan-out included).",
         applies=f"{_RUN}:has_spans"),
    Plot("breaker_timeline", f"{_RUN}:breaker_timeline",
         "Circuit breaker states over time, per calling instance and target.",
         applies=f"{_RUN}:has_breakers", size=f"{_RUN}:breaker_timeline_size"),
    Plot("dashboard", f"{_DASH}:dashboard",
         "The run on one shared time axis: requests per second (arrivals, goodput, each "
         "failing status); latency percentiles of successful requests (ms, log axis; client "
         "timeouts dashed); the share of requests that did not succeed (%); p99 per workload "
         "and region where there are several; utilisation (%) and queue length per instance; "
         "circuit-breaker states. Faults are tinted bands, timeline events vertical lines, "
         "named above the top panel; panels with nothing to show are left out.",
         applies=f"{_DASH}:has_dashboard", size=f"{_DASH}:dashboard_size"),
    Plot("latency_heatmap", f"{_HEAT}:latency_heatmap",
         "Requests per creation-time window and latency bucket (log-spaced, ms; colours on a "
         "log scale): successful requests by latency, and above them one row per other "
         "status (timed out, rejected, failed, unfinished), so that every request is "
         "counted. Fault windows are outlined.",
         applies=f"{_RUN}:has_requests", size=(11, 6)),
)

__all__ = ["ARRIVAL_PARTS", "CORE_PLOTS", "NoDataError", "PlotAccessor", "comparison_chart",
           "fault_windows", "figure", "heatmap_counts", "latency_cdf_overlay", "latency_vs_load",
           "plot_directory", "render", "shade_windows", "write_plots"]
