"""Per-instance gauges over time, for the dashboard: utilisation from the busy-time integral,
queue length, each masked while an autoscaled instance is not serving; and their drawing (a
component of many instances as its mean over thin lines).

Generic gauges only (``busy_time_total``, ``workers``, ``queue_length``, and the
``instance_states`` table of autoscaling): any kind that records them is drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.analysis.plots.style import (
    draw_steps,
    legend_beside,
    palette,
    per_window,
    thousands_ticks,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results

#: Generic gauges read (any kind that records them is drawn).
BUSY_TIME, WORKERS, QUEUE_LENGTH = "busy_time_total", "workers", "queue_length"
#: A component with more instances than this is drawn as its mean (thick) over thin lines.
MAX_LABELLED_INSTANCES = 4


def _instances(samples: pd.DataFrame, metric: str) -> dict[tuple[str, str], pd.Series]:
    s = samples[samples["metric"] == metric]
    return {(str(c), str(i)): g.groupby("time")["value"].sum()
            for (c, i), g in s.groupby(["component", "instance"], observed=True, sort=True)}


def utilisation_series(r: Results, w: float) -> dict[tuple[str, str], pd.Series]:
    """Busy fraction (%) of each instance's workers per window (indexed by the window's
    start): the increase of ``busy_time_total`` over ``w`` times the ``workers`` gauge (its
    value at the end of the window, so a scale-up counts from the window it happened in)."""
    workers = _instances(r.samples, WORKERS)
    out = {}
    for key, busy in _instances(r.samples, BUSY_TIME).items():
        if key not in workers or len(busy) < 2:
            continue
        done = per_window(busy, w)
        # the workers gauge grouped as per_window groups, so that its windows align
        held = workers[key].groupby(np.round(np.ceil(
            workers[key].index.to_numpy(dtype=float) / w - 1e-9) * w, 9)).last()
        capacity = held.reindex(done.index).to_numpy(dtype=float) * w
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(capacity > 0, 100 * done.to_numpy() / capacity, np.nan)
        start = done.index.to_numpy(dtype=float) - w
        # drawn for the windows at whose end the instance serves
        out[key] = pd.Series(np.where(_serving(r, key, start + w - 1e-9), share, np.nan),
                             index=start)
    return out


def queue_length_series(r: Results) -> dict[tuple[str, str], pd.Series]:
    """Requests waiting at each instance at each sample (the ``queue_length`` gauge), NaN
    while an autoscaled instance is not serving."""
    return {key: s.where(_serving(r, key, s.index.to_numpy(dtype=float)))
            for key, s in _instances(r.samples, QUEUE_LENGTH).items()}


#: Autoscaled instance states (``instance_states``) in which an instance serves requests.
_SERVING = ("ready", "draining")


def _serving(r: Results, key: tuple[str, str], times: np.ndarray) -> np.ndarray:
    """Whether an instance serves at each of ``times``: always, unless the run autoscales it
    (``instance_states`` rows), when it serves from ``ready`` to ``stopped``; an idle replica
    not yet provisioned (or stopped) would pull a component's mean utilisation down."""
    states = r.tables.get("instance_states")
    if states is None or states.empty:
        return np.ones(len(times), dtype=bool)
    mine = states[(states["component"].astype(str) == key[0])
                  & (states["instance"].astype(str) == key[1])].sort_values("time",
                                                                           kind="stable")
    if mine.empty:
        return np.ones(len(times), dtype=bool)
    at = np.searchsorted(mine["time"].to_numpy(dtype=float), times, side="right") - 1
    serving = np.isin(mine["state"].astype(str).to_numpy(), _SERVING)
    return (at >= 0) & serving[at.clip(0)]


def draw_per_instance(ax: Axes, series: dict[tuple[str, str], pd.Series], ylabel: str,
                  steps: float | None = None) -> None:
    """One line per instance; a component of many instances as thin lines under its mean."""
    comps: dict[str, list[tuple[str, pd.Series]]] = {}
    for (comp, inst), s in series.items():
        comps.setdefault(comp, []).append((inst, s))
    colors = palette(sum(1 if len(v) > MAX_LABELLED_INSTANCES else len(v)
                         for v in comps.values()))
    k = 0

    def line(s: pd.Series, **kw: Any) -> None:
        if steps is not None:
            draw_steps(ax, s.index.to_numpy(), s.to_numpy(), steps, **kw)
        else:
            ax.plot(s.index.to_numpy(), s.to_numpy(), **kw)

    for comp, members in comps.items():
        if len(members) > MAX_LABELLED_INSTANCES:
            for _, s in members:
                line(s, color=colors[k], lw=0.6, alpha=0.35)
            mean = pd.concat([s for _, s in members], axis=1).mean(axis=1)
            line(mean, color=colors[k], lw=1.8,
                 label=f"{comp}: mean of those serving ({len(members)} in all; thin: each)")
            k += 1
            continue
        for inst, s in members:
            line(s, color=colors[k], lw=1.2, label=inst)
            k += 1
    ax.set_ylim(bottom=0)
    thousands_ticks(ax.yaxis)
    if "%" in ylabel:
        ax.set_ylim(0, 105)
    ax.set_ylabel(ylabel.split(" (")[0])
    unit = ylabel.partition(" (")[2].rstrip(")")
    ax.set_title(f"{ylabel.split(' (')[0]} per instance ({unit})", loc="left",
                 fontsize="medium")
    legend_beside(ax)
