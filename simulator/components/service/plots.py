"""Plots of ``kind: service``: the adaptive concurrency limit of each instance over time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.analysis.plots.style import (
    NoDataError,
    label_time_axis,
    legend_outside,
    make_axes,
    palette,
    run_end,
    shade_windows,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results


def has_limits(r: Results) -> bool:
    """Whether some instance ran an adaptive concurrency limit."""
    table = r.tables.get("concurrency_limits")
    return table is not None and not table.empty


def concurrency_limit_over_time(r: Results, ax: Axes | None = None) -> Axes:
    """The limit of each instance with an adaptive concurrency limit, as steps (from the
    ``concurrency_limits`` table: each value holds until the next change, to the run's end),
    and the requests in flight at each change as dots."""
    if not has_limits(r):
        raise NoDataError(f"{r.scenario.name}: no adaptive concurrency limit in this run "
                          "(a service's admission: aimd, vegas, gradient2 or "
                          "adaptive_concurrency)")
    ax = make_axes(ax)
    table = r.tables["concurrency_limits"]
    instances = [str(i) for i in table["instance"].cat.categories
                 if (table["instance"] == i).any()]
    end = run_end(r)
    for name, color in zip(instances, palette(len(instances)), strict=True):
        rows = table[table["instance"] == name]
        t = np.append(rows["time"].to_numpy(), end)
        y = rows["limit"].to_numpy()
        ax.step(t, np.append(y, y[-1]), where="post", color=color, lw=1.2,
                label=f"{name} limit")
        ax.plot(rows["time"], rows["in_flight"], ".", color=color, ms=2, alpha=0.4)
    shade_windows(ax, r)
    label_time_axis(ax, r, "adaptive concurrency limit (dots: in flight at each change)",
                    "requests in flight")
    ax.set_ylim(bottom=0)
    legend_outside(ax, fontsize="small")
    return ax
