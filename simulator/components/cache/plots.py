"""Plots of ``kind: cache``: hit ratio over time."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.analysis.plots.style import (
    CACHE_HITS,
    CACHE_MISSES,
    NoDataError,
    _axes,
    _gauge,
    _has_metric,
    _legend_outside,
    _per_window,
    _steps,
    _time_axis,
    _window,
    shade_windows,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results


def has_cache_results(r: Results) -> bool:
    """Whether the run has cache results: the caches' gauges, or hits and misses in the
    requests table."""
    if _has_metric(r, CACHE_HITS):
        return True
    if r.streaming:
        return False
    return "cache" in r.requests and bool(r.requests["cache"].isin(["hit", "miss"]).any())


def hit_ratio_over_time(r: Results, ax: Axes | None = None, window: float | None = None) -> Axes:
    """Hit ratio of each cache per time window.

    Read from the caches' ``hits_total`` and ``misses_total`` gauges (summed over the
    instances of a cache); without them, from the ``cache`` column of the requests (what
    the first cache on each request's path answered, by creation time).
    """
    ax = _axes(ax)
    window = _window(r, window)
    if not has_cache_results(r):
        raise NoDataError(f"{r.scenario.name}: no cache results in this run "
                          f"(no {CACHE_HITS} gauge, no hit/miss in requests.cache)")
    if _has_metric(r, CACHE_HITS):
        hits, misses = _gauge(r.samples, CACHE_HITS), _gauge(r.samples, CACHE_MISSES)
        for comp, h in hits.groupby("component", observed=True):
            hs = h.groupby("time")["value"].sum()
            m = misses[misses["component"] == comp]
            ms = m.groupby("time")["value"].sum().reindex(hs.index, fill_value=0.0)
            dh, dm = _per_window(hs, window), _per_window(ms, window)
            total = (dh + dm).replace(0, np.nan)
            _steps(ax, dh.index.to_numpy() - window, (dh / total).to_numpy(), window,
                   label=str(comp))
    else:
        req = r.requests[r.requests["cache"].isin(["hit", "miss"])]
        bins = np.floor(req["start"].to_numpy() / window) * window
        ratio = (req["cache"] == "hit").groupby(bins).mean()
        _steps(ax, ratio.index.to_numpy(), ratio.to_numpy(), window,
               label="first cache on the path")
    shade_windows(ax, r)
    _time_axis(ax, r, f"cache hit ratio per {window:g}s", "hit ratio")
    ax.set_ylim(0, 1.02)
    _legend_outside(ax)
    return ax
