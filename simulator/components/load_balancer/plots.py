"""Plots of ``kind: load_balancer``: the share of requests per backend."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simulator.analysis.plots.style import (
    ROUTED,
    NoDataError,
    _axes,
    _colors,
    _gauge,
    _has_metric,
    _legend_outside,
    _per_window,
    _time_axis,
    _window,
    shade_windows,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results


def has_routing(r: Results) -> bool:
    """Whether a balancer routed anything."""
    return _has_metric(r, ROUTED)


def has_shares(r: Results) -> bool:
    """Whether a balancer routed anything in the measured window."""
    return _has_metric(r, ROUTED) and not r.backend_share().empty


def backend_share(r: Results, ax: Axes | None = None) -> Axes:
    """Share of requests each balancer sent to each backend (measured window)."""
    ax = _axes(ax)
    share = r.backend_share()
    if share.empty:
        raise NoDataError(f"{r.scenario.name}: no load balancer in this run")
    labels = [f"{b}\n({lb})" if share["balancer"].nunique() > 1 else str(b)
              for lb, b in zip(share["balancer"], share["backend"], strict=True)]
    ax.bar(range(len(share)), share["share"].to_numpy() * 100)
    fair = capacity_split(r, share)
    if fair is None:
        ax.axhline(100 / share.groupby("balancer", observed=True).size().max(), color="grey",
                   ls=":", lw=1, label="even split")
    else:  # a mixed-speed fleet: what each backend would get in proportion to its capacity
        ax.scatter(range(len(share)), fair * 100, marker="_", s=900, color="black", lw=2,
                   zorder=3, label="split by capacity (workers x speed)")
    ax.set_xticks(range(len(share)), labels, rotation=45, ha="right")
    ax.set_ylabel("share of requests (%)")
    ax.set_title(f"{r.scenario.name}: per-backend share")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="upper right", fontsize="small")
    return ax


def capacity_split(r: Results, share: pd.DataFrame) -> np.ndarray | None:
    """Each backend's share of its balancer's capacity (workers x speed of its instance), or
    None when every backend of every balancer has the same capacity (the even split says it).

    Backends are named ``component[index]``; a backend whose parameters state no speed counts
    as speed 1, one with no workers as one worker.
    """
    caps = []
    for backend in share["backend"].astype(str):
        name, _, rest = backend.partition("[")
        params = r.scenario.components.get(name)
        index = int(rest.rstrip("]")) if rest.rstrip("]").isdigit() else 0
        speed_of = getattr(params, "speed_of", None)
        speed = float(speed_of(index)) if callable(speed_of) else 1.0
        caps.append(float(getattr(params, "workers", 1)) * speed)
    cap = pd.Series(caps, index=share.index)
    if cap.groupby(share["balancer"], observed=True).nunique().max() <= 1:
        return None
    return (cap / cap.groupby(share["balancer"], observed=True).transform("sum")).to_numpy()


def backend_share_over_time(r: Results, ax: Axes | None = None, balancer: str | None = None,
                            window: float | None = None) -> Axes:
    """Share of each backend in the requests a balancer routed, per time window (stacked).

    Parameters
    ----------
    ax
        Axes to draw on (default: a new figure).
    balancer
        The balancer component (default: the first one; instances are summed).
    window
        Width of a time window in seconds (default: the scenario's ``metrics.interval``).
    """
    window = _window(r, window)
    routed = _gauge(r.samples, ROUTED)
    if routed.empty:
        raise NoDataError(f"{r.scenario.name}: no load balancer in this run")
    names = [str(c) for c in pd.unique(routed["component"])]
    balancer = balancer or names[0]
    if balancer not in names:
        raise ValueError(f"no balancer {balancer!r} (balancers: {', '.join(names)})")
    ax = _axes(ax)
    mine = routed[routed["component"] == balancer]
    wide = mine.pivot_table(index="time", columns="label", values="value", aggfunc="sum",
                            observed=True)
    per = pd.DataFrame({c: _per_window(wide[c], window) for c in wide.columns})
    total = per.sum(axis=1).replace(0, np.nan)
    share = per.div(total, axis=0) * 100
    t = share.index.to_numpy() - window
    edges = np.append(t, t[-1] + window) if len(t) else t
    stacks = [np.append(share[c].to_numpy(), share[c].to_numpy()[-1:]) for c in share]
    ax.stackplot(edges, *stacks, labels=[str(c) for c in share.columns], step="post",
                 colors=_colors(len(stacks)), alpha=0.9)
    shade_windows(ax, r, over=True)
    _time_axis(ax, r, f"share of requests per backend of {balancer} per {window:g}s",
               "share of requests (%)")
    ax.set_ylim(0, 100)
    _legend_outside(ax, fontsize="small")
    return ax
