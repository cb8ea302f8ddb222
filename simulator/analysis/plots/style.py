"""What the plots share: gauge names, colours, axes, shading of the warm-up and fault windows,
time axes, rates and steps per window, CDFs. matplotlib is imported on first use only.

Every function here is public so that a kind's plot module (``components/<kind>/plots.py``)
draws with the same look as the run's plots.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from simulator.analysis.diagnostics import fault_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results

#: Gauges the plots read from the ``samples`` table (cumulative ones end in ``_total``).
CACHE_HITS, CACHE_MISSES = "hits_total", "misses_total"
QUEUE_DEPTH, QUEUE_LAG = "depth", "lag"
QUEUE_PUBLISHED, QUEUE_ACKED = "published_total", "acked_total"
ROUTED = "routed_total"
BREAKER_STATE = "breaker_state"

#: Metrics that are durations in seconds (drawn in milliseconds).
LATENCY_METRICS = frozenset({"mean", "p50", "p90", "p95", "p99", "p999", "latency"})

STATUS_COLORS = {
    "ok": "#2e7d32", "error": "#c62828", "timeout": "#ef6c00", "rejected": "#6a1b9a",
    "short_circuited": "#1565c0", "dropped": "#6d4c41", "fallback": "#00897b",
    "in_flight": "#9e9e9e", "conflict": "#ad1457",
}
BREAKER_COLORS = {"closed": "#81c784", "half_open": "#ffb74d", "open": "#e57373"}
#: The end of arrivals and the drain.
PHASE_COLOR = "#37474f"
#: Colours of successive fault windows (the first is the usual red).
FAULT_COLORS = ("#d32f2f", "#8e24aa", "#f57c00", "#00838f", "#5d4037")


class NoDataError(ValueError):
    """The run has none of the data a plot needs (for example no cache gauges)."""


def make_axes(ax: Axes | None, figsize: tuple[float, float] = (7, 4)) -> Axes:
    """``ax``, or the axes of a new pyplot figure of ``figsize`` (inches) when it is None."""
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def legend_outside(ax: Axes, **kwargs: Any) -> None:
    """The legend right of the axes (the lines stay visible); none when nothing is labelled.
    ``kwargs`` go to ``Axes.legend``."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), **kwargs)


def legend_beside(ax: Axes) -> None:
    """The legend right of the axes, top-aligned (panels stacked on a shared time axis keep
    their legends apart); none when nothing is labelled."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small",
                  borderaxespad=0)


def run_end(r: Results) -> float:
    """Last simulated instant of a run: the ``end`` event, else duration + drain."""
    ev = r.events
    ends = ev.loc[ev["event"] == "end", "time"]
    if len(ends):
        return float(ends.max())
    return float(r.scenario.duration + getattr(r.scenario, "drain", 0.0))


def fault_windows(r: Results) -> list[tuple[float, float, str]]:
    """The scenario's fault windows ``(start, end, label)``, equal windows merged.

    A fault without a duration lasts to the end of the run.
    """
    end_of_run = run_end(r)
    merged: dict[tuple[float, float], list[str]] = {}
    for fault in r.scenario.faults:
        end = min(float(fault.end), end_of_run)
        merged.setdefault((float(fault.at), end), []).append(fault_label(fault))
    return [(a, b, ", ".join(labels)) for (a, b), labels in merged.items()]


def shade_windows(ax: Axes, r: Results, warmup: bool = True, faults: bool = True,
                  over: bool = False, phases: bool = True) -> None:
    """Mark the warm-up (grey), each fault window (red) and the end of arrivals and the
    drain after it (see :func:`mark_drain`) of a run on a time axis.

    Parameters
    ----------
    ax
        Axes whose x axis is simulated time.
    r
        The run.
    warmup, faults, phases
        What to mark (``phases``: the end of arrivals and the drain).
    over
        The plot fills the axes (stacked areas, bars): mark the end of the warm-up with a
        line and faults with hatching, which stay visible on top, instead of tinted spans.
    """
    if phases:
        mark_drain(ax, r, over)
    t0 = r.window[0] if warmup else 0.0
    if t0 > 0:
        if over:
            ax.axvline(t0, color="black", ls=":", lw=1, label="end of warm-up")
        else:
            ax.axvspan(0, t0, color="grey", alpha=0.15, label="warm-up", lw=0)
    if faults:
        windows = fault_windows(r)
        many = len(windows) > len(FAULT_COLORS)
        for i, (a, b, label) in enumerate(windows):
            color = FAULT_COLORS[0 if many else i]
            text = ("faults" if i == 0 else None) if many else f"fault: {label}"
            if over:
                ax.axvspan(a, b, facecolor="none", edgecolor=color, hatch="//",
                           alpha=0.5, lw=0, label=text)
            else:
                ax.axvspan(a, b, color=color, alpha=0.12, lw=0, label=text)


def mark_drain(ax: Axes, r: Results, over: bool = False) -> None:
    """Mark the end of arrivals (the scenario's ``duration``) with a dashed line and the drain
    after it (to the end of the run) with a dotted band, so that the traffic falling to zero
    there does not look like an outage. Nothing is drawn when the run ends with its arrivals.

    Parameters
    ----------
    ax
        Axes whose x axis is simulated time.
    r
        The run.
    over
        The plot fills the axes: hatch the drain without tinting it.
    """
    arrivals_end, t_end = float(r.scenario.duration), run_end(r)
    if t_end <= arrivals_end + 1e-9:
        return
    ax.axvline(arrivals_end, color=PHASE_COLOR, ls="--", lw=1.2,
               label=f"arrivals end ({arrivals_end:g}s)")
    import matplotlib.colors as mcolors

    rgb = mcolors.to_rgb(PHASE_COLOR)
    ax.axvspan(arrivals_end, t_end, facecolor=(*rgb, 0.0 if over else 0.06),
               edgecolor=(*rgb, 0.4), hatch="..", lw=0, label="drain (no arrivals)")


def label_time_axis(ax: Axes, r: Results, title: str, ylabel: str) -> None:
    """Simulated time (s) from 0 to the end of the run on x, ``ylabel`` on y, the title
    prefixed with the scenario's name, a light grid."""
    ax.set_xlim(0, run_end(r))
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{r.scenario.name}: {title}")
    ax.grid(True, alpha=0.3)


def window_width(r: Results, window: float | None) -> float:
    """The width of a time window in seconds: ``window``, else the scenario's
    ``metrics.interval``; ValueError unless positive."""
    w = float(window or r.scenario.metrics.interval)
    if not w > 0:
        raise ValueError(f"window must be > 0 seconds, got {w}")
    return w


def rate_per_window(times: np.ndarray, window: float,
                    t_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Events per second in each window ``[k w, (k+1) w)`` from 0 to ``t_end`` (zeros kept)."""
    n = max(1, math.ceil(t_end / window - 1e-9))
    idx = np.floor(times[np.isfinite(times)] / window).astype(np.int64)
    counts = np.bincount(idx[(idx >= 0) & (idx < n)], minlength=n)
    return np.arange(n) * window, counts / window


def draw_steps(ax: Axes, t: np.ndarray, y: np.ndarray, window: float, **kwargs: Any) -> None:
    """Draw per-window values as steps, each held over its window (the last one included)."""
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if len(t):
        t, y = np.append(t, t[-1] + window), np.append(y, y[-1])
    ax.plot(t, y, drawstyle="steps-post", **kwargs)


def select_gauge(samples: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of one gauge, summed over instances: columns ``time``, ``component``, ``label``,
    ``value``."""
    s = samples[samples["metric"] == metric]
    if s.empty:
        return pd.DataFrame(columns=["time", "component", "label", "value"])
    out = s.groupby(["component", "label", "time"], observed=True, sort=True)["value"].sum()
    return out.reset_index()


def queue_series(samples: pd.DataFrame, metric: str) -> dict[str, pd.Series]:
    """A queue gauge over time (summed over instances) per queue or ``topic.subscription``."""
    g = select_gauge(samples, metric)
    out = {}
    for (comp, label), grp in g.groupby(["component", "label"], observed=True, sort=True):
        name = f"{comp}.{label}" if str(label) else str(comp)
        out[name] = grp.set_index("time")["value"]
    return out


#: Service gauges whose sum counts every arrival so far (each ends in one, or is still inside).
ARRIVAL_PARTS = ("served_total", "rejected_total", "failed_total", "cancelled_total",
                 "in_system")


def arrivals_total(samples: pd.DataFrame) -> dict[str, pd.Series]:
    """Cumulative arrivals over time per component that has every :data:`ARRIVAL_PARTS`
    gauge (services), summed over its instances."""
    s = samples[samples["metric"].isin(ARRIVAL_PARTS)]
    out = {}
    for comp, grp in s.groupby("component", observed=True):
        if grp["metric"].nunique() == len(ARRIVAL_PARTS):
            out[str(comp)] = grp.groupby("time")["value"].sum()
    return out


def per_window(series: pd.Series, window: float) -> pd.Series:
    """Last value of a cumulative series (indexed by time) in each window, then differenced."""
    idx = series.index.to_numpy(dtype=float)
    last = series.groupby(np.round(np.ceil(idx / window - 1e-9) * window, 9)).last()
    return last.diff().dropna()


def has_metric(r: Results, *metrics: str) -> bool:
    """Whether the run's ``samples`` table has a row of any of ``metrics``."""
    s = r.samples
    return bool(s["metric"].isin(metrics).any()) if len(s) else False


def ms_factor(metric: str) -> float:
    """1000 for a latency metric (seconds drawn in milliseconds), else 1."""
    return 1e3 if metric in LATENCY_METRICS else 1.0


def metric_label(metric: str) -> str:
    """An axis label for a metric, with its unit (ms, requests/s)."""
    if metric in LATENCY_METRICS:
        return f"{metric} latency (ms)"
    if metric.endswith("_ratio"):
        return metric.replace("_", " ")
    if metric in ("throughput", "goodput"):
        return f"{metric} (requests/s)"
    return metric


def draw_cdf(ax: Axes, latency: np.ndarray, label: str, complementary: bool,
             of: int | None = None, **kw: Any) -> float:
    """Draw one empirical (C)CDF in ms; return its 0.1th percentile (for the axis limit).

    Parameters
    ----------
    ax
        Axes to draw on.
    latency
        The latencies drawn, seconds.
    label
        The curve's legend label.
    complementary
        Draw ``1 - F``.
    of
        The number of requests the fractions are of (default: ``len(latency)``). Larger, the
        requests not in ``latency`` (failed, unfinished) count as never done: the CDF stops
        at ``len(latency) / of`` and ``1 - F`` at the share left out.
    kw
        Passed to ``Axes.plot``.
    """
    x = np.sort(latency[np.isfinite(latency)]) * 1e3
    x = x[x > 0]
    if len(x) == 0:
        return math.inf
    y = np.arange(1, len(x) + 1) / max(of or len(x), len(x))
    if complementary:
        # 1 - F drawn at each sample but a last one where it is 0 (off a log axis)
        keep = len(x) if y[-1] < 1 else len(x) - 1
        ax.plot(x[:keep], 1 - y[:keep], label=label, **kw)
    else:
        ax.plot(x, y, label=label, **kw)
    return float(x[int(0.001 * (len(x) - 1))])


def human_ticks(axis: Any, unit: str = "") -> None:
    """Tick labels a person reads at a glance on a log or symlog axis: ``1 ms``, ``10 ms``,
    ``1,000 ms``, ``0.1 ms``, ``-20 ms`` (not ``10^0``), minor ticks unlabelled."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    suffix = f" {unit}" if unit else ""

    def text(value: float, _pos: int | None = None) -> str:
        if value == 0:
            return "0"
        number = f"{value:,.0f}" if abs(value) >= 1 else f"{value:.3g}"
        return number + suffix

    axis.set_major_formatter(FuncFormatter(text))
    axis.set_minor_formatter(NullFormatter())


def thousands_ticks(axis: Any) -> None:
    """Tick labels of a linear count axis with thousands separated (``15,000``; ``0.5`` and
    ``20`` as they are)."""
    from matplotlib.ticker import FuncFormatter

    axis.set_major_formatter(FuncFormatter(
        lambda v, _pos=None: f"{v:,.0f}" if abs(v) >= 1000 else f"{v:g}"))


def human_log_ticks(axis: Any, unit: str = "") -> None:
    """A log axis labelled at 1, 2 and 5 times each power of ten (``20 ms``, ``50 ms``,
    ``100 ms``), so that a range of less than two decades still shows several labels; minor
    ticks unlabelled. Spanning more than three decades, only the powers of ten are labelled."""
    from matplotlib.ticker import LogLocator

    lo, hi = axis.get_view_interval()
    wide = lo > 0 and hi > 0 and math.log10(hi / lo) > 3
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if wide else (1.0, 2.0, 5.0)))
    human_ticks(axis, unit)


def split_axes(ax: Axes | None, nrows: int, ncols: int = 1, figsize: tuple[float, float]
               = (10, 6), **grid: Any) -> tuple[Any, Any]:
    """A grid of ``nrows`` x ``ncols`` cells where ``ax`` was, for a plot of several panels
    (``grid``: ``height_ratios``, ``width_ratios``; spacing left to ``tight_layout``, which
    places no grid whose spacing is set).

    ``ax`` is removed; the grid fills its figure when it was the figure's only Axes, else
    the place ``ax`` had. Without ``ax``, a new pyplot figure of ``figsize``.

    Returns
    -------
    tuple
        The figure and its ``GridSpec`` (index it for ``figure.add_subplot``).
    """
    if ax is None:
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=figsize)
        return fig, fig.add_gridspec(nrows, ncols, **grid)
    owner = ax.figure
    spec = ax.get_subplotspec()
    alone = len(owner.axes) == 1
    ax.remove()
    if alone or spec is None:
        return owner, owner.add_gridspec(nrows, ncols, **grid)
    return owner, spec.subgridspec(nrows, ncols, **grid)


def label_cdf_axes(ax: Axes, complementary: bool, left: float = math.inf) -> None:
    """Log latency axis starting just below the fastest 0.1% (the far left says nothing)."""
    ax.set_xscale("log")
    human_ticks(ax.xaxis, "ms")
    if math.isfinite(left):
        ax.set_xlim(left=left * 0.8)
    ax.set_xlabel("latency (ms)")
    if complementary:
        ax.set_yscale("log")
        human_ticks(ax.yaxis)
        ax.set_ylabel("fraction of requests > latency")
    else:
        ax.set_ylabel("fraction of requests ≤ latency")
        ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)


def palette(n: int) -> list[Any]:
    """``n`` distinct colours (tab10, or tab20 beyond 10; repeated beyond 20)."""
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# The kinds' plot modules import the names these had before they were public; they go when
# those modules import the public names.
_axes, _legend_outside, _run_end, _time_axis = make_axes, legend_outside, run_end, label_time_axis
_window, _rate, _steps, _gauge = window_width, rate_per_window, draw_steps, select_gauge
_queue_series, _arrivals_total, _per_window = queue_series, arrivals_total, per_window
_has_metric, _ms, _metric_label, _colors = has_metric, ms_factor, metric_label, palette
_cdf, _cdf_axes = draw_cdf, label_cdf_axes
