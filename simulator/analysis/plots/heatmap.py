"""The latency heatmap of a run: requests per (creation time window, latency bucket), with the
requests that did not succeed in rows of their own so that none is left out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from simulator.analysis.plots.style import (
    STATUS_COLORS,
    NoDataError,
    human_log_ticks,
    human_ticks,
    run_end,
    split_axes,
    window_width,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results

#: The heatmap's row for requests still in flight when the run ended.
UNFINISHED = "unfinished"
#: At most this many time columns: a long run gets wider windows, not an unreadable smear.
MAX_COLUMNS = 240


@dataclass(frozen=True)
class HeatmapCounts:
    """What :func:`latency_heatmap` draws.

    Attributes
    ----------
    time_edges
        Edges of the creation-time windows, seconds (``len = columns + 1``).
    latency_edges
        Edges of the log-spaced latency buckets of successful requests, seconds.
    ok
        Successful requests per (latency bucket, time window): shape ``(buckets, columns)``.
    other
        Per status other than ``ok`` (``unfinished`` for requests in flight at the end), the
        requests per time window: these have no latency to bin (a timeout's is the client's
        patience, not the system's answer), so each is a row of its own.
    """

    time_edges: np.ndarray
    latency_edges: np.ndarray
    ok: np.ndarray
    other: dict[str, np.ndarray]

    @property
    def total(self) -> int:
        """Every request counted (successful or not): the requests table's length."""
        return int(self.ok.sum() + sum(int(v.sum()) for v in self.other.values()))


def heatmap_counts(r: Results, window: float | None = None,
                   per_decade: int = 5) -> HeatmapCounts:
    """Count the requests of a run per creation-time window and latency bucket.

    Every request of the ``requests`` table is counted once, in the window it was created in
    (creation time is known for every request, unfinished ones included): a successful one in
    its latency bucket, any other in its status's row.

    Parameters
    ----------
    r
        The run.
    window
        Width of a time window, seconds (default: ``metrics.interval``, widened so that the
        run has at most :data:`MAX_COLUMNS` windows).
    per_decade
        Latency buckets per factor of ten (log-spaced edges ``10**(k / per_decade)`` s, from
        the bucket of the fastest successful request to that of the slowest; a latency of 0
        counts in the first bucket).
    """
    if per_decade < 1:
        raise ValueError(f"per_decade must be >= 1, got {per_decade}")
    req = r.requests
    if len(req) == 0:
        raise NoDataError(f"{r.scenario.name}: no requests in this run")
    t_end = run_end(r)
    if window is None:
        window = max(window_width(r, None), t_end / MAX_COLUMNS)
    window = window_width(r, window)
    n = max(1, math.ceil(t_end / window - 1e-9))
    time_edges = np.arange(n + 1) * window
    col = np.floor(req["start"].to_numpy(dtype=float) / window).astype(np.int64).clip(0, n - 1)
    status = req["status"].astype(str).to_numpy()
    is_ok = status == "ok"
    latency = req["latency"].to_numpy(dtype=float)[is_ok]
    positive = latency[latency > 0]
    if len(positive):
        lo = math.floor(math.log10(positive.min()) * per_decade + 1e-9)
        hi = math.ceil(math.log10(positive.max()) * per_decade - 1e-9)
        hi = max(hi, lo + 1)
    else:  # nothing succeeded (or everything took 0 s): the decade from 1 ms
        lo, hi = -3 * per_decade, -2 * per_decade
    latency_edges = 10.0 ** (np.arange(lo, hi + 1) / per_decade)
    row = np.zeros(len(latency), dtype=np.int64)  # 0 s (no work anywhere): the first bucket
    timed = latency > 0
    row[timed] = np.floor(np.log10(latency[timed]) * per_decade + 1e-9).astype(np.int64) - lo
    row = row.clip(0, len(latency_edges) - 2)
    ok = np.zeros((len(latency_edges) - 1, n), dtype=np.int64)
    np.add.at(ok, (row, col[is_ok]), 1)
    order = [s for s in STATUS_COLORS if s != "ok"] + sorted(set(status) - set(STATUS_COLORS))
    other = {"unfinished" if s == "in_flight" else s:
             np.bincount(col[status == s], minlength=n).astype(np.int64)
             for s in order if (status == s).any()}
    return HeatmapCounts(time_edges, latency_edges, ok, other)


def latency_heatmap(r: Results, ax: Axes | None = None, window: float | None = None,
                    per_decade: int = 5) -> Axes:
    """Requests per creation-time window and latency bucket, as a heatmap.

    Successful requests are binned by latency on a log axis (``per_decade`` buckets per
    factor of ten, labelled in milliseconds); above it, a strip with one row per other status
    (timed out, rejected, failed, unfinished...) counts the requests that have no latency to
    show, so that the cells of the figure add up to every request of the run. Colours are on a
    log scale (a window of 1 request and one of 1,000 both show); empty cells stay white.
    Fault windows are outlined (dashed) on both.

    Parameters
    ----------
    r
        The run.
    ax
        Axes to draw on (default: a new figure); the strip is split off its top.
    window, per_decade
        As for :func:`heatmap_counts`.

    Returns
    -------
    Axes
        The latency axes (the strip, labelled ``"not successful"``, and the colour bars are
        the figure's other axes).
    """
    from matplotlib.colors import LogNorm

    counts = heatmap_counts(r, window, per_decade)
    names = list(counts.other)
    rows = 2 if names else 1
    heights = [min(3.0, 0.45 * len(names)), 6.0] if names else [1.0]
    fig, grid = split_axes(ax, rows, 2, figsize=(11, 6), height_ratios=heights,
                           width_ratios=[60, 1])
    ax = fig.add_subplot(grid[rows - 1, 0], label="latency heatmap")
    vmax = max(2, int(counts.ok.max(initial=0)),
               *(int(v.max(initial=0)) for v in counts.other.values()))
    norm = LogNorm(vmin=1, vmax=vmax)
    ax.pcolormesh(counts.time_edges, counts.latency_edges * 1e3,
                         np.ma.masked_equal(counts.ok, 0), norm=norm, cmap="viridis",
                         shading="flat")
    ax.set_yscale("log")
    ax.set_ylim(counts.latency_edges[0] * 1e3, counts.latency_edges[-1] * 1e3)
    human_log_ticks(ax.yaxis, "ms")
    ax.set_ylabel("latency of successful requests")
    ax.set_xlabel("time the request was created (s)")
    ax.set_xlim(0, float(counts.time_edges[-1]))
    _scale_bar(fig.add_subplot(grid[rows - 1, 1], label="scale"), norm, "viridis",
               "successful requests per cell")
    width = float(counts.time_edges[1] - counts.time_edges[0])
    top = ax
    if names:
        strip = fig.add_subplot(grid[0, 0], sharex=ax, label="not successful")
        strip.pcolormesh(counts.time_edges, np.arange(len(names) + 1),
                                  np.ma.masked_equal(np.vstack([counts.other[s] for s in names]),
                                                     0),
                                  norm=norm, cmap="Reds", shading="flat")
        strip.set_yticks(np.arange(len(names)) + 0.5, names)
        strip.set_ylim(len(names), 0)
        strip.tick_params(labelbottom=False)
        for label in strip.get_yticklabels():
            text = label.get_text()
            label.set_color(STATUS_COLORS.get("in_flight" if text == UNFINISHED else text,
                                              "#424242"))
        _scale_bar(fig.add_subplot(grid[0, 1], label="scale"), norm, "Reds", "per cell")
        top = strip
    _outline_faults([ax, top] if top is not ax else [ax], r)
    top.set_title(f"{r.scenario.name}: latency heatmap, requests per {width:g}s window by "
                  f"creation time\n({counts.total:,} requests: "
                  + ("successful ones by latency, the others by status)" if names
                     else "every one successful)"))
    return ax


def _scale_bar(cax: Any, norm: Any, cmap: str, label: str) -> None:
    """A colour scale drawn on a plain Axes (a ``colorbar`` would give its Axes a locator that
    ``tight_layout`` cannot place)."""
    edges = np.geomspace(norm.vmin, norm.vmax, 129)
    cax.pcolormesh([0.0, 1.0], edges, np.sqrt(edges[:-1] * edges[1:])[:, None], norm=norm,
                   cmap=cmap, shading="flat")
    cax.set_yscale("log")
    cax.set_ylim(norm.vmin, norm.vmax)
    cax.set_xticks([])
    cax.yaxis.tick_right()
    cax.yaxis.set_label_position("right")
    human_ticks(cax.yaxis)
    cax.set_ylabel(label, fontsize="small")


def _outline_faults(axes: list[Any], r: Results) -> None:
    """Dashed lines at the start and end of each fault window (a tint would change the
    cells' colours)."""
    for fault in r.scenario.faults:
        a, b = float(fault.at), min(float(fault.end), run_end(r))
        for x in {a, b}:
            for ax in axes:
                ax.axvline(x, color="#d32f2f", ls="--", lw=1, alpha=0.9)
