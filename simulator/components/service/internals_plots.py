"""Plot of a service's ``internals``: the ready queue, busy cores, threads in use and memory
over time, read from the gauges of the step-based model (summed over a component's
instances)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from simulator.analysis.plots.style import (
    NoDataError,
    has_metric,
    label_time_axis,
    legend_outside,
    make_axes,
    palette,
    shade_windows,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results

#: gauges drawn (on the left axis, counts) and memory (on the right axis, MB)
COUNTS = (("ready_queue", "ready queue", "-"), ("busy", "busy cores", "--"),
          ("threads_busy", "threads busy", ":"))
MEMORY = "memory_bytes"


def has_internals(r: Results) -> bool:
    """Whether some service of the run has ``internals`` (its ``ready_queue`` gauge)."""
    return has_metric(r, "ready_queue")


def _series(samples: pd.DataFrame, components: list[str], metric: str
            ) -> dict[str, pd.Series]:
    s = samples[(samples["metric"] == metric) & samples["component"].isin(components)]
    return {str(c): g.groupby("time")["value"].sum()
            for c, g in s.groupby("component", observed=True)}


def service_internals(r: Results, ax: Axes | None = None) -> Axes:
    """Ready queue (CPU steps waiting for a core), busy cores and threads busy of each
    service with ``internals``, and the memory its requests hold (MB, right axis)."""
    if not has_internals(r):
        raise NoDataError(f"{r.scenario.name}: no service with internals in this run")
    ax = make_axes(ax, (10, 4.5))
    s = r.samples
    names = sorted(map(str, s.loc[s["metric"] == "ready_queue", "component"].unique()))
    colours = dict(zip(names, palette(len(names)), strict=True))
    for metric, label, style in COUNTS:
        for name, series in _series(s, names, metric).items():
            ax.plot(series.index, series.to_numpy(), ls=style, color=colours[name],
                    label=f"{name} {label}")
    memory = _series(s, names, MEMORY)
    if any(series.any() for series in memory.values()):
        right = ax.twinx()
        for name, series in memory.items():
            right.plot(series.index, series.to_numpy() / 1e6, lw=0.8, alpha=0.6,
                       color=colours[name])
        right.set_ylabel("memory held (MB, thin lines)")
        right.set_ylim(bottom=0)
    shade_windows(ax, r)
    label_time_axis(ax, r, "service internals: ready queue, busy cores, threads busy",
                    "count")
    ax.set_ylim(bottom=0)
    legend_outside(ax, fontsize="small")
    return ax
