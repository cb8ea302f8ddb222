"""Plots of runs and experiments. matplotlib is imported on first use only.

In a notebook: ``results.plot.latency_cdf()`` and the other methods of :class:`PlotAccessor`;
for several runs or an experiment: :func:`latency_cdf_overlay`, :func:`comparison_chart` and
:func:`latency_vs_load`. From the CLI, ``simulator run --plots`` and ``simulator plot DIR`` write
PNGs with :func:`write_plots`.

Every plot reads the tables only. Plots over time shade the warm-up (grey) and every fault window
of the scenario (red). A plot whose data a run does not have (no cache, no queue, no breaker) is
left out by :func:`write_plots`; called directly, it raises :class:`NoDataError`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from simulator.analysis.diagnostics import fault_label

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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
#: Colours of successive fault windows (the first is the usual red).
FAULT_COLORS = ("#d32f2f", "#8e24aa", "#f57c00", "#00838f", "#5d4037")


class NoDataError(ValueError):
    """The run has none of the data a plot needs (for example no cache gauges)."""


# --------------------------------------------------------------------------------------------
# helpers


def _axes(ax: Axes | None, figsize: tuple[float, float] = (7, 4)) -> Axes:
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def _legend_outside(ax: Axes, **kwargs: Any) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), **kwargs)


def _run_end(r: Results) -> float:
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
    end_of_run = _run_end(r)
    merged: dict[tuple[float, float], list[str]] = {}
    for fault in r.scenario.faults:
        end = min(float(fault.end), end_of_run)
        merged.setdefault((float(fault.at), end), []).append(fault_label(fault))
    return [(a, b, ", ".join(labels)) for (a, b), labels in merged.items()]


def shade_windows(ax: Axes, r: Results, warmup: bool = True, faults: bool = True,
                  over: bool = False) -> None:
    """Mark the warm-up (grey) and each fault window (red) of a run on a time axis.

    Parameters
    ----------
    ax
        Axes whose x axis is simulated time.
    r
        The run.
    warmup, faults
        What to mark.
    over
        The plot fills the axes (stacked areas, bars): mark the end of the warm-up with a
        line and faults with hatching, which stay visible on top, instead of tinted spans.
    """
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


def _time_axis(ax: Axes, r: Results, title: str, ylabel: str) -> None:
    ax.set_xlim(0, _run_end(r))
    ax.set_xlabel("time (s)")
    ax.set_ylabel(ylabel)
    ax.set_title(f"{r.scenario.name}: {title}")
    ax.grid(True, alpha=0.3)


def _window(r: Results, window: float | None) -> float:
    w = float(window or r.scenario.metrics.interval)
    if not w > 0:
        raise ValueError(f"window must be > 0 seconds, got {w}")
    return w


def _rate(times: np.ndarray, window: float, t_end: float) -> tuple[np.ndarray, np.ndarray]:
    """Events per second in each window ``[k w, (k+1) w)`` from 0 to ``t_end`` (zeros kept)."""
    n = max(1, math.ceil(t_end / window - 1e-9))
    idx = np.floor(times[np.isfinite(times)] / window).astype(np.int64)
    counts = np.bincount(idx[(idx >= 0) & (idx < n)], minlength=n)
    return np.arange(n) * window, counts / window


def _steps(ax: Axes, t: np.ndarray, y: np.ndarray, window: float, **kwargs: Any) -> None:
    """Draw per-window values as steps, each held over its window (the last one included)."""
    t, y = np.asarray(t, dtype=float), np.asarray(y, dtype=float)
    if len(t):
        t, y = np.append(t, t[-1] + window), np.append(y, y[-1])
    ax.plot(t, y, drawstyle="steps-post", **kwargs)


def _gauge(samples: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Rows of one gauge, summed over instances: columns ``time``, ``component``, ``label``,
    ``value``."""
    s = samples[samples["metric"] == metric]
    if s.empty:
        return pd.DataFrame(columns=["time", "component", "label", "value"])
    out = s.groupby(["component", "label", "time"], observed=True, sort=True)["value"].sum()
    return out.reset_index()


def _queue_series(samples: pd.DataFrame, metric: str) -> dict[str, pd.Series]:
    """A queue gauge over time (summed over instances) per queue or ``topic.subscription``."""
    g = _gauge(samples, metric)
    out = {}
    for (comp, label), grp in g.groupby(["component", "label"], observed=True, sort=True):
        name = f"{comp}.{label}" if str(label) else str(comp)
        out[name] = grp.set_index("time")["value"]
    return out


#: Service gauges whose sum counts every arrival so far (each ends in one, or is still inside).
ARRIVAL_PARTS = ("served_total", "rejected_total", "failed_total", "cancelled_total",
                 "in_system")


def _arrivals_total(samples: pd.DataFrame) -> dict[str, pd.Series]:
    """Cumulative arrivals over time per component that has every :data:`ARRIVAL_PARTS`
    gauge (services), summed over its instances."""
    s = samples[samples["metric"].isin(ARRIVAL_PARTS)]
    out = {}
    for comp, grp in s.groupby("component", observed=True):
        if grp["metric"].nunique() == len(ARRIVAL_PARTS):
            out[str(comp)] = grp.groupby("time")["value"].sum()
    return out


def _per_window(series: pd.Series, window: float) -> pd.Series:
    """Last value of a cumulative series (indexed by time) in each window, then differenced."""
    idx = series.index.to_numpy(dtype=float)
    last = series.groupby(np.round(np.ceil(idx / window - 1e-9) * window, 9)).last()
    return last.diff().dropna()


def _has_metric(r: Results, *metrics: str) -> bool:
    s = r.samples
    return bool(s["metric"].isin(metrics).any()) if len(s) else False


def _ms(metric: str) -> float:
    return 1e3 if metric in LATENCY_METRICS else 1.0


def _metric_label(metric: str) -> str:
    if metric in LATENCY_METRICS:
        return f"{metric} latency (ms)"
    if metric.endswith("_ratio"):
        return metric.replace("_", " ")
    if metric in ("throughput", "goodput"):
        return f"{metric} (requests/s)"
    return metric


def _cdf(ax: Axes, latency: np.ndarray, label: str, complementary: bool, **kw: Any) -> float:
    """Draw one empirical (C)CDF in ms; return its 0.1th percentile (for the axis limit)."""
    x = np.sort(latency[np.isfinite(latency)]) * 1e3
    x = x[x > 0]
    if len(x) == 0:
        return math.inf
    y = np.arange(1, len(x) + 1) / len(x)
    if complementary:
        # 1 - F drawn at each sample but the last (where it is 0, off a log axis)
        ax.plot(x[:-1], 1 - y[:-1], label=label, **kw)
    else:
        ax.plot(x, y, label=label, **kw)
    return float(x[int(0.001 * (len(x) - 1))])


def _cdf_axes(ax: Axes, complementary: bool, left: float = math.inf) -> None:
    """Log latency axis starting just below the fastest 0.1% (the far left says nothing)."""
    ax.set_xscale("log")
    if math.isfinite(left):
        ax.set_xlim(left=left * 0.8)
    ax.set_xlabel("latency (ms)")
    if complementary:
        ax.set_yscale("log")
        ax.set_ylabel("fraction of requests > latency")
    else:
        ax.set_ylabel("fraction of requests ≤ latency")
        ax.set_ylim(0, 1.01)
    ax.grid(True, which="both", alpha=0.3)


# --------------------------------------------------------------------------------------------
# one run


class PlotAccessor:
    """Plots of one :class:`~simulator.results.Results`; each draws on ``ax`` (or a new figure)
    and returns the Axes.

    :meth:`available` lists the plots this run has data for.
    """

    #: Every plot, in the order :func:`write_plots` writes them.
    NAMES = ("latency_cdf", "latency_over_time", "throughput_over_time", "goodput_over_time",
             "load_over_time", "hit_ratio_over_time", "breaker_timeline", "queue_over_time",
             "backend_share", "backend_share_over_time")

    def __init__(self, results: Results) -> None:
        self._r = results

    def available(self) -> list[str]:
        """Names of the plots this run has data for, in :attr:`NAMES` order."""
        r = self._r
        if r.streaming:  # no requests table: only the plots drawn from gauges and events
            per_request = {"latency_cdf", "latency_over_time", "throughput_over_time",
                           "goodput_over_time", "load_over_time"}
            return [name for name in self.NAMES if name not in per_request
                    and name in self._gauge_plots()]
        ok = {
            "latency_cdf": bool((r.measured_requests()["status"] == "ok").any()),
            "latency_over_time": bool((r.requests["status"] == "ok").any()),
            "throughput_over_time": bool(r.requests["end"].notna().any()),
            "goodput_over_time": len(r.requests) > 0,
            "load_over_time": len(r.spans) > 0,
            "hit_ratio_over_time": self._has_cache(),
            "breaker_timeline": bool((r.events["event"] == "breaker").any())
            or _has_metric(r, BREAKER_STATE),
            "queue_over_time": _has_metric(r, QUEUE_DEPTH, QUEUE_LAG, QUEUE_PUBLISHED),
            "backend_share": _has_metric(r, ROUTED) and not r.backend_share().empty,
            "backend_share_over_time": _has_metric(r, ROUTED),
        }
        return [name for name in self.NAMES if ok[name]]

    # -- latency ------------------------------------------------------------------------------

    def latency_cdf(self, ax: Axes | None = None, by: str = "workload",
                    complementary: bool = False) -> Axes:
        """Empirical CDF of end-to-end latency of successful requests (measured window).

        Parameters
        ----------
        ax
            Axes to draw on (default: a new figure).
        by
            Column of ``requests`` giving one curve per value (``workload``, ``op``...).
        complementary
            Draw ``1 - F`` on a log scale instead, which spreads out the tail (p99, p99.9).
        """
        ax = _axes(ax)
        req = self._r.measured_requests()
        req = req[req["status"] == "ok"]
        left = min([_cdf(ax, grp["latency"].to_numpy(), str(name), complementary)
                    for name, grp in req.groupby(by, observed=True)], default=math.inf)
        _cdf_axes(ax, complementary, left)
        ax.set_title(f"{self._r.scenario.name}: latency {'CCDF' if complementary else 'CDF'}")
        ax.legend(title=by)
        return ax

    def latency_over_time(
        self, ax: Axes | None = None, window: float | None = None,
        quantiles: tuple[float, ...] = (0.5, 0.95, 0.99),
        by: Literal["end", "start"] = "end",
    ) -> Axes:
        """Latency percentiles of successful requests per time window.

        Parameters
        ----------
        ax
            Axes to draw on (default: a new figure).
        window
            Width of a time window in seconds (default: the scenario's ``metrics.interval``).
        quantiles
            Percentiles to draw, as fractions.
        by
            ``"end"``: requests binned by completion time, as a monitoring system records
            them. ``"start"``: by creation time, which ties a latency to the moment the
            request arrived; but near the end of an overloaded run only the fast requests have
            finished, so the last windows look better than they were (the slow ones are still
            in flight and not counted).
        """
        ax = _axes(ax)
        r = self._r
        window = _window(r, window)
        req = r.requests[r.requests["status"] == "ok"]
        bins = np.floor(req[by].to_numpy() / window) * window
        g = req.assign(t=bins).groupby("t")["latency"]
        for q in quantiles:
            series = g.quantile(q) * 1e3
            ax.plot(series.index, series.to_numpy(), label=f"p{q * 100:g}")
        shade_windows(ax, r)
        when = "completion" if by == "end" else "creation"
        _time_axis(ax, r, f"latency percentiles per {window:g}s, by {when} time",
                   "latency (ms)")
        ax.set_ylim(bottom=0)
        _legend_outside(ax)
        return ax

    # -- throughput ---------------------------------------------------------------------------

    def throughput_over_time(self, ax: Axes | None = None, window: float | None = None) -> Axes:
        """Completed requests per second by status, per time window (by completion time)."""
        ax = _axes(ax)
        r = self._r
        window = _window(r, window)
        req = r.requests.dropna(subset=["end"])
        t_end = _run_end(r)
        statuses = [s for s in STATUS_COLORS if (req["status"] == s).any()]
        statuses += sorted(set(map(str, req["status"].unique())) - set(statuses))
        for status in statuses:
            t, rate = _rate(req.loc[req["status"] == status, "end"].to_numpy(), window, t_end)
            _steps(ax, t, rate, window, label=status, color=STATUS_COLORS.get(status))
        shade_windows(ax, r)
        _time_axis(ax, r, "throughput by status", "requests per second")
        ax.set_ylim(bottom=0)
        _legend_outside(ax)
        return ax

    def goodput_over_time(self, ax: Axes | None = None, window: float | None = None) -> Axes:
        """Arrivals, throughput, goodput and errors per second over time.

        Arrivals count requests created (the offered load, by creation time); throughput counts
        completions, goodput successful completions and errors failed ones (a fallback is
        neither a success nor an error), all by completion time.
        """
        ax = _axes(ax)
        r = self._r
        window = _window(r, window)
        req = r.requests
        t_end = _run_end(r)
        status = req["status"].astype(str)
        end = req["end"].to_numpy()
        failed = ~status.isin(["ok", "fallback", "in_flight"]).to_numpy()
        # throughput wide and pale underneath, so that it shows where goodput or errors equal it
        lines: list[tuple[str, np.ndarray, dict[str, Any]]] = [
            ("throughput", end, {"color": "#64b5f6", "lw": 4, "alpha": 0.6}),
            ("goodput", end[(status == "ok").to_numpy()],
             {"color": STATUS_COLORS["ok"], "lw": 1.3}),
            ("errors", end[failed], {"color": STATUS_COLORS["error"], "lw": 1.3}),
            ("arrivals", req["start"].to_numpy(), {"color": "#424242", "ls": "--", "lw": 1}),
        ]
        for label, times, style in lines:
            t, rate = _rate(times, window, t_end)
            _steps(ax, t, rate, window, label=label, **style)
        shade_windows(ax, r)
        _time_axis(ax, r, "throughput, goodput and errors", "requests per second")
        ax.set_ylim(bottom=0)
        _legend_outside(ax)
        return ax

    def load_over_time(self, ax: Axes | None = None, window: float | None = None,
                       components: Sequence[str] | None = None) -> Axes:
        """Requests arriving per second at each component.

        This is the load each component really sees: retries, hedges and fan-out included, so
        a retry storm shows here as a multiple of the clients' arrivals. For services it comes
        from their gauges (served + rejected + failed + cancelled + in system: exact even for
        requests still queued when the run ends); for other components from the spans, by
        arrival time (a hop is recorded when it ends, so hops unfinished at the end of the run
        are missing there).

        Parameters
        ----------
        ax
            Axes to draw on (default: a new figure).
        window
            Width of a time window in seconds (default: the scenario's ``metrics.interval``).
        components
            Components drawn (default: every component that records spans).
        """
        r = self._r
        if len(r.spans) == 0:
            raise NoDataError(f"{r.scenario.name}: no spans in this run (metrics.spans off?)")
        window = _window(r, window)
        ax = _axes(ax)
        t_end = _run_end(r)
        sp = r.spans
        totals = _arrivals_total(r.samples)
        names = list(components) if components is not None else sorted(
            map(str, sp["component"].unique()))
        series: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray, list[str]]] = {}
        for name in names:
            if name in totals:
                per = _per_window(totals[name], window) / window
                t, rate = per.index.to_numpy() - window, per.to_numpy()
            else:
                t, rate = _rate(sp.loc[sp["component"] == name, "arrival"].to_numpy(), window,
                                t_end)
            # components that see the same requests (a fan-out) would hide each other's line
            series.setdefault((*t, *rate), (t, rate, []))[2].append(name)
        for t, rate, same in series.values():
            _steps(ax, t, rate, window, label=" = ".join(same))
        shade_windows(ax, r)
        _time_axis(ax, r, "arrivals per second at each component", "requests per second")
        ax.set_ylim(bottom=0)
        _legend_outside(ax)
        return ax

    # -- caches -------------------------------------------------------------------------------

    def _gauge_plots(self) -> set[str]:
        """Plots drawn from gauges and events only (what a streaming run can draw)."""
        r = self._r
        ok = {
            "hit_ratio_over_time": _has_metric(r, CACHE_HITS),
            "breaker_timeline": bool((r.events["event"] == "breaker").any())
            or _has_metric(r, BREAKER_STATE),
            "queue_over_time": _has_metric(r, QUEUE_DEPTH, QUEUE_LAG, QUEUE_PUBLISHED),
            "backend_share": _has_metric(r, ROUTED) and not r.backend_share().empty,
            "backend_share_over_time": _has_metric(r, ROUTED),
        }
        return {name for name, has in ok.items() if has}

    def _has_cache(self) -> bool:
        r = self._r
        if _has_metric(r, CACHE_HITS):
            return True
        return "cache" in r.requests and bool(r.requests["cache"].isin(["hit", "miss"]).any())

    def hit_ratio_over_time(self, ax: Axes | None = None, window: float | None = None) -> Axes:
        """Hit ratio of each cache per time window.

        Read from the caches' ``hits_total`` and ``misses_total`` gauges (summed over the
        instances of a cache); without them, from the ``cache`` column of the requests (what
        the first cache on each request's path answered, by creation time).
        """
        ax = _axes(ax)
        r = self._r
        window = _window(r, window)
        if not self._has_cache():
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

    # -- breakers -----------------------------------------------------------------------------

    def breaker_timeline(self, ax: Axes | None = None) -> Axes:
        """State of every circuit breaker over time: one bar per (caller instance, target).

        Transitions come from the ``breaker`` events (``detail`` ``"target: old->new"``);
        breakers that never left the closed state are found from their ``breaker_state`` gauge.
        """
        r = self._r
        rows = self._breaker_rows()
        if not rows:
            raise NoDataError(f"{r.scenario.name}: no circuit breakers in this run")
        ax = _axes(ax, figsize=(8, 1.2 + 0.45 * len(rows)))
        t_end = _run_end(r)
        labels = []
        for y, ((caller, target), changes) in enumerate(rows.items()):
            labels.append(f"{caller} → {target}")
            edges = [0.0, *(t for t, _ in changes), t_end]
            states = ["closed", *(s for _, s in changes)]
            for state in BREAKER_COLORS:
                spans = [(a, b - a) for s, a, b in zip(states, edges[:-1], edges[1:],
                                                         strict=True) if s == state and b > a]
                if spans:
                    ax.broken_barh(spans, (y - 0.35, 0.7), color=BREAKER_COLORS[state], lw=0)
        shade_windows(ax, r, over=True)
        ax.set_yticks(range(len(labels)), labels)
        ax.set_ylim(-0.6, len(labels) - 0.4)
        ax.invert_yaxis()
        ax.set_xlim(0, t_end)
        ax.set_xlabel("time (s)")
        ax.set_title(f"{r.scenario.name}: circuit breaker states")
        from matplotlib.patches import Patch

        handles: list[Any] = [Patch(color=c, label=s.replace("_", "-"))
                              for s, c in BREAKER_COLORS.items()]
        handles += ax.get_legend_handles_labels()[0]
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.01, 0.5),
                  fontsize="small")
        return ax

    def _breaker_rows(self) -> dict[tuple[str, str], list[tuple[float, str]]]:
        """Transitions ``(time, new state)`` per (caller instance, target), in time order."""
        r = self._r
        rows: dict[tuple[str, str], list[tuple[float, str]]] = {}
        gauge = r.samples[r.samples["metric"] == BREAKER_STATE]
        for inst, label in gauge[["instance", "label"]].drop_duplicates().itertuples(
                index=False):
            rows[(str(inst), str(label))] = []
        ev = r.events[r.events["event"] == "breaker"].sort_values("time", kind="stable")
        for t, inst, detail in zip(ev["time"], ev["instance"], ev["detail"], strict=True):
            target, _, change = str(detail).partition(": ")
            rows.setdefault((str(inst), target), []).append(
                (float(t), change.rpartition("->")[2]))
        return dict(sorted(rows.items()))

    # -- queues -------------------------------------------------------------------------------

    def queue_over_time(self, ax: Axes | None = None) -> Axes:
        """Depth of each queue (messages waiting) and its consumer lag, over time.

        Read from the queues' gauges, summed over a queue's instances: ``depth``, and ``lag``
        (messages stored: published, not yet acknowledged or dead-lettered) or, without it,
        ``published_total - acked_total``. A topic's subscriptions are drawn separately
        (``topic.subscription``).
        """
        r = self._r
        if not _has_metric(r, QUEUE_DEPTH, QUEUE_LAG, QUEUE_PUBLISHED):
            raise NoDataError(f"{r.scenario.name}: no queue gauges in this run "
                              f"({QUEUE_DEPTH}, {QUEUE_LAG}, {QUEUE_PUBLISHED})")
        ax = _axes(ax)
        series = {m: _queue_series(r.samples, m)
                  for m in (QUEUE_DEPTH, QUEUE_LAG, QUEUE_PUBLISHED, QUEUE_ACKED)}
        if not series[QUEUE_LAG] and series[QUEUE_PUBLISHED]:
            series[QUEUE_LAG] = {
                q: p - series[QUEUE_ACKED].get(q, p * 0).reindex(p.index, fill_value=0.0)
                for q, p in series[QUEUE_PUBLISHED].items()}
        queues = sorted({*series[QUEUE_DEPTH], *series[QUEUE_LAG]})
        for q, color in zip(queues, _colors(len(queues)), strict=True):
            # lag >= depth; drawn wide and pale underneath so that both show where they agree
            if q in series[QUEUE_LAG]:
                lag = series[QUEUE_LAG][q]
                ax.plot(lag.index, lag.to_numpy(), color=color, ls="--", lw=2.5, alpha=0.5,
                        label=f"{q} lag")
            if q in series[QUEUE_DEPTH]:
                d = series[QUEUE_DEPTH][q]
                ax.plot(d.index, d.to_numpy(), color=color, lw=1.2, label=f"{q} depth")
        shade_windows(ax, r)
        _time_axis(ax, r, "queue depth (waiting) and lag (not yet acknowledged)", "messages")
        ax.set_ylim(bottom=0)
        _legend_outside(ax, fontsize="small")
        return ax

    # -- balancers ----------------------------------------------------------------------------

    def backend_share(self, ax: Axes | None = None) -> Axes:
        """Share of requests each balancer sent to each backend (measured window)."""
        ax = _axes(ax)
        share = self._r.backend_share()
        if share.empty:
            raise NoDataError(f"{self._r.scenario.name}: no load balancer in this run")
        labels = [f"{b}\n({lb})" if share["balancer"].nunique() > 1 else str(b)
                  for lb, b in zip(share["balancer"], share["backend"], strict=True)]
        ax.bar(range(len(share)), share["share"].to_numpy() * 100)
        ax.axhline(100 / share.groupby("balancer", observed=True).size().max(), color="grey",
                   ls=":", lw=1, label="even split")
        ax.set_xticks(range(len(share)), labels, rotation=45, ha="right")
        ax.set_ylabel("share of requests (%)")
        ax.set_title(f"{self._r.scenario.name}: per-backend share")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(loc="upper right", fontsize="small")
        return ax

    def backend_share_over_time(self, ax: Axes | None = None, balancer: str | None = None,
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
        r = self._r
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


def _colors(n: int) -> list[Any]:
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# --------------------------------------------------------------------------------------------
# several runs, experiments


def latency_cdf_overlay(
    results: Mapping[str, Results] | Sequence[Results],
    ax: Axes | None = None,
    workload: str | None = None,
    complementary: bool = False,
) -> Axes:
    """Latency CDFs of several runs (variants of a design) on one plot.

    Parameters
    ----------
    results
        Runs by variant name, or a sequence of runs (named by their scenario).
    ax
        Axes to draw on (default: a new figure).
    workload
        Only this workload's requests (default: every workload's).
    complementary
        Draw ``1 - F`` on a log scale, which spreads out the tail.
    """
    runs = _named(results)
    ax = _axes(ax)
    left = math.inf
    for (name, r), color in zip(runs.items(), _colors(len(runs)), strict=True):
        req = r.measured_requests()
        req = req[req["status"] == "ok"]
        if workload is not None:
            req = req[req["workload"] == workload]
        left = min(left, _cdf(ax, req["latency"].to_numpy(), name, complementary, color=color))
    _cdf_axes(ax, complementary, left)
    what = f" of {workload}" if workload else ""
    ax.set_title(f"latency {'CCDF' if complementary else 'CDF'}{what}, successful requests")
    _legend_outside(ax, title="variant")
    return ax


def _named(results: Mapping[str, Results] | Sequence[Results]) -> dict[str, Results]:
    if isinstance(results, Mapping):
        return {str(k): v for k, v in results.items()}
    out: dict[str, Results] = {}
    for r in results:
        name = r.scenario.name
        out[name if name not in out else f"{name} ({len(out)})"] = r
    return out


def _interval_columns(table: pd.DataFrame) -> tuple[str, str]:
    for low, high in (("low", "high"), ("ci_low", "ci_high")):
        if low in table and high in table:
            return low, high
    raise ValueError("the table needs interval columns low/high (or ci_low/ci_high)")


def _table_of(table: Any, method: str) -> pd.DataFrame:
    """Accept an experiment object (``Comparison``, ``Sweep``) as well as its table."""
    if isinstance(table, pd.DataFrame):
        return table
    if hasattr(table, method):
        return getattr(table, method)()
    raise TypeError(f"expected a pandas DataFrame, got {type(table).__name__}")


def _one_name(table: pd.DataFrame, name: str | None) -> pd.DataFrame:
    """Rows of one workload (or component): ``name``, else the first workload."""
    if "name" not in table:
        return table
    if name is None:
        scoped = table[table["scope"] == "workload"] if "scope" in table else table
        scoped = scoped if len(scoped) else table
        name = str(scoped["name"].iloc[0])
    rows = table[table["name"] == name]
    if rows.empty:
        raise ValueError(f"no rows named {name!r} (names: "
                         f"{', '.join(map(str, pd.unique(table['name'])))})")
    return rows


def comparison_chart(
    table: Any,
    metric: str = "p99",
    ax: Axes | None = None,
    *,
    name: str | None = None,
    difference: bool = False,
    baseline: str | None = None,
    log: bool | None = None,
    variant: str = "variant",
    confidence: float | None = None,
) -> Axes:
    """Each variant's mean of a metric with its confidence interval (error bars).

    Parameters
    ----------
    table
        A :class:`~simulator.experiment.Comparison`, or its ``table()``: one row per
        (``metric``, variant) with ``mean``, ``low``, ``high`` (or ``ci_low``, ``ci_high``),
        optionally ``rank`` (drawn best first), ``scope``/``name`` (one workload is drawn) and,
        for ``difference``, ``diff``, ``diff_low``, ``diff_high`` and ``significant``.
    metric
        The metric drawn (latencies are shown in milliseconds).
    ax
        Axes to draw on (default: a new figure).
    name
        Workload (or component) drawn when the table has several (default: the first workload).
    difference
        Draw each variant's paired difference from the baseline instead (zero line;
        differences whose interval excludes zero in colour). The baseline is left out.
    baseline
        The baseline's name (default: the Comparison's, or the row whose difference is exactly
        zero).
    log
        Logarithmic value axis; default: when the values span more than a factor of 30 (not
        for differences).
    variant
        Column naming the variant.
    confidence
        The intervals' confidence level, for the title (default: the Comparison's).
    """
    df = _one_name(_table_of(table, "table"), name)
    df = df[df["metric"] == metric] if "metric" in df else df
    if df.empty:
        raise ValueError(f"no rows for metric {metric!r} in the comparison table")
    if "rank" in df:
        df = df.sort_values("rank", kind="stable")
    scale = _ms(metric)
    level = _confidence(table, confidence)
    if difference:
        if "diff" not in df:
            raise ValueError("difference=True needs diff, diff_low, diff_high columns")
        baseline = baseline or getattr(table, "baseline", None)
        if baseline is None:
            zero = df[(df["diff"] == 0) & (df["diff_low"] == 0) & (df["diff_high"] == 0)]
            baseline = str(zero[variant].iloc[0]) if len(zero) == 1 else None
        if baseline is not None:
            df = df[df[variant].astype(str) != baseline]
        mean, low, high = df["diff"], df["diff_low"], df["diff_high"]
    else:
        lo, hi = _interval_columns(df)
        mean, low, high = df["mean"], df[lo], df[hi]
    m = mean.to_numpy(dtype=float) * scale
    lows, highs = low.to_numpy(dtype=float) * scale, high.to_numpy(dtype=float) * scale
    err = np.where(np.isfinite([m - lows, highs - m]), [m - lows, highs - m], 0.0)
    labels = [str(v) for v in df[variant]]
    ax = _axes(ax, figsize=(8, 1.2 + 0.45 * len(labels)))
    y = np.arange(len(labels))
    if difference:
        sig = (df["significant"].to_numpy(dtype=bool) if "significant" in df
               else (lows > 0) | (highs < 0))
        for yi, mi, e0, e1, si in zip(y, m, err[0], err[1], sig, strict=True):
            ax.errorbar(mi, yi, xerr=[[e0], [e1]], fmt="o", capsize=4,
                        color="#c62828" if si else "#757575")
        ax.axvline(0, color="black", lw=1)
        against = f" {baseline}" if baseline else " the baseline"
        ax.set_xlabel(f"{metric} minus{against}'s ({_unit(metric)}), paired by replication")
        from matplotlib.lines import Line2D

        ax.legend(handles=[
            Line2D([], [], marker="o", color="#c62828", ls="", label="interval excludes 0"),
            Line2D([], [], marker="o", color="#757575", ls="", label="interval includes 0")],
            loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")
        ax.set_title(f"{metric}: difference from{against}, {level}confidence intervals")
    else:
        ax.errorbar(m, y, xerr=err, fmt="o", color="#1565c0", ecolor="black", capsize=4)
        positive = lows[np.isfinite(lows) & (lows > 0)]
        if log is None:
            log = bool(len(positive) == len(lows) and len(lows)
                       and np.nanmax(highs) / positive.min() > 30)
        if log:
            ax.set_xscale("log")
        else:
            ax.set_xlim(left=0, right=float(np.nanmax(highs)) * 1.15 or None)
        for yi, mi in zip(y, m, strict=True):
            ax.annotate(f"{mi:,.0f}" if abs(mi) >= 100 else f"{mi:.3g}", (mi, yi),
                        textcoords="offset points", xytext=(0, 7), ha="center",
                        fontsize="small")
        ax.set_xlabel(_metric_label(metric))
        ax.set_title(f"{metric}: mean over replications, {level}confidence intervals")
    ax.set_yticks(y, labels)
    ax.set_ylim(len(labels) - 0.5, -0.7)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return ax


def _unit(metric: str) -> str:
    label = _metric_label(metric)
    return label.rpartition("(")[2].rstrip(")") if label.endswith(")") else "value"


def _confidence(table: Any, level: float | None = None) -> str:
    level = level if level is not None else getattr(table, "confidence", None)
    return f"{level:.0%} " if isinstance(level, float) else ""


#: Columns of a sweep's interval table that are not swept parameters.
_NOT_PARAMETERS = frozenset({"scope", "name", "metric", "n", "mean", "sd", "half_width", "low",
                             "high", "ci_low", "ci_high", "relative_half_width", "variant",
                             "seed", "replication", "warmup"})


def _numeric(values: pd.Series) -> tuple[np.ndarray, str]:
    """Numbers from a parameter column, and their unit: plain numbers, or rates and durations
    written with units (``800/s``, ``250ms``) in base units."""
    from simulator.units import parse_duration, parse_rate

    try:
        return values.to_numpy(dtype=float), ""
    except (TypeError, ValueError):
        pass
    for parse, unit in ((parse_rate, "per second"), (parse_duration, "seconds")):
        try:
            return np.array([parse(v) for v in values], dtype=float), unit
        except (TypeError, ValueError):
            continue
    raise ValueError(f"column {values.name!r} is not numeric (values like {values.iloc[0]!r})")


def _is_numeric(values: pd.Series) -> bool:
    try:
        _numeric(values)
    except ValueError:
        return False
    return True


def latency_vs_load(
    table: Any,
    x: str | None = None,
    metrics: Sequence[str] = ("p50", "p99"),
    ax: Axes | None = None,
    *,
    by: str | None = None,
    name: str | None = None,
    log: bool | None = None,
    confidence: float | None = None,
) -> Axes:
    """A metric (latency percentiles by default) against load, with confidence bands.

    Parameters
    ----------
    table
        A :class:`~simulator.experiment.Sweep`, or its ``intervals()``: one row per (point,
        metric) with the swept parameters as columns, ``metric``, ``mean`` and ``low``/``high``
        (or ``ci_low``/``ci_high``). A ``variant`` column (or ``by``) gives one curve per value.
        Without a ``metric`` column every row is of the one metric named in ``metrics``.
    x
        The load column (default: the first swept parameter with numeric values). Rates and
        durations with units (``800/s``) are converted to numbers.
    metrics
        Metrics drawn, each with its band.
    ax
        Axes to draw on (default: a new figure).
    by
        Column giving one curve per value (default: ``variant`` if present, else the second
        swept parameter if any).
    name
        Workload (or component) drawn when the table has several (default: the first workload).
    log
        Logarithmic value axis; default: when one curve's largest value is more than 30 times
        another's (one curve would flatten the others).
    confidence
        The bands' confidence level, for the title (default: the Sweep's).
    """
    df = _one_name(_table_of(table, "intervals"), name)
    if "metric" not in df:
        if len(metrics) != 1:
            raise ValueError("the table has no metric column: say which metric its values "
                             "are with metrics=[name] (p99, mean, throughput...)")
        df = df.assign(metric=metrics[0])
    params = [c for c in df.columns if c not in _NOT_PARAMETERS]
    if x is None:
        numeric = [p for p in params if _is_numeric(df[p])]
        x = numeric[0] if numeric else (params[0] if params else None)
    if x is None or x not in df:
        raise ValueError(f"no load column {x!r} in the table (columns: {', '.join(df.columns)})")
    if by is None:
        rest = [p for p in params if p != x]
        by = "variant" if "variant" in df else (rest[0] if rest else None)
    missing = [m for m in metrics if m not in set(df["metric"])]
    if missing:
        raise ValueError(f"no rows for metric(s) {', '.join(missing)} in the table")
    lo, hi = _interval_columns(df)
    ax = _axes(ax)
    groups: Iterable[tuple[Any, pd.DataFrame]] = (
        df.groupby(by, sort=False, observed=True) if by else [(None, df)])
    groups = list(groups)
    styles = ["-", "--", ":", "-."]
    colors = _colors(len(groups))
    unit = ""
    peaks = []
    for (key, grp), color in zip(groups, colors, strict=True):
        for j, metric in enumerate(metrics):
            rows = grp[grp["metric"] == metric]
            peaks.append(float(np.nanmax(rows["mean"].to_numpy(dtype=float), initial=np.nan)))
            xs, unit = _numeric(rows[x])
            order = np.argsort(xs, kind="stable")
            s = _ms(metric)
            label = (metric if key is None else str(key) if len(metrics) == 1
                     else f"{key} {metric}")
            ax.plot(xs[order], rows["mean"].to_numpy(dtype=float)[order] * s, marker="o",
                    ms=3, color=color if key is not None else None, ls=styles[j % 4],
                    label=label)
            color_j = ax.lines[-1].get_color()
            ax.fill_between(xs[order], rows[lo].to_numpy(dtype=float)[order] * s,
                            rows[hi].to_numpy(dtype=float)[order] * s, color=color_j,
                            alpha=0.2, lw=0)
    if len(metrics) == 1:
        ax.set_ylabel(_metric_label(metrics[0]))
    elif all(m in LATENCY_METRICS for m in metrics):
        ax.set_ylabel("latency (ms)")
    ax.set_xlabel(f"{x} ({unit})" if unit else x)
    positive = [p for p in peaks if p > 0]
    if log is None:
        log = len(positive) > 1 and max(positive) > 30 * min(positive)
    if log:
        ax.set_yscale("log")
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{' / '.join(metrics)} against {x.rpartition('.')[2]}, "
                 f"{_confidence(table, confidence)}confidence bands")
    _legend_outside(ax, title=by)
    return ax


# --------------------------------------------------------------------------------------------
# files


#: Figure size of each plot written by :func:`write_plots` (width, height in inches).
SIZES: dict[str, tuple[float, float]] = {"latency_cdf": (8, 4.5), "backend_share": (8, 4.5)}


def figure(draw: Callable[[Axes], Any], size: tuple[float, float] = (10, 4.5)) -> Figure:
    """A figure outside pyplot (no global state, nothing shown): ``draw(ax)`` fills it."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=size)
    draw(fig.subplots())
    fig.tight_layout()
    return fig


def _size(results: Results, name: str) -> tuple[float, float]:
    if name == "breaker_timeline":
        rows = len(results.plot._breaker_rows())
        return (9, 1.6 + 0.4 * rows)
    return SIZES.get(name, (10, 4.5))


def render(results: Results, name: str, fmt: str = "png", dpi: int = 110) -> bytes:
    """One plot of a run (a :class:`PlotAccessor` method name) as image bytes."""
    import io

    fig = figure(lambda ax: getattr(results.plot, name)(ax=ax), _size(results, name))
    buf = io.BytesIO()
    fig.savefig(buf, format=fmt, dpi=dpi)
    return buf.getvalue()


def write_plots(results: Results, directory: str | Path,
                names: Sequence[str] | None = None) -> list[Path]:
    """Write the plots of a run as PNG files; return their paths.

    Parameters
    ----------
    results
        The run.
    directory
        Created if needed; files are named after the plots (``latency_cdf.png``...).
    names
        Plots to write (default: every plot this run has data for, see
        :meth:`PlotAccessor.available`).
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names if names is not None else results.plot.available():
        path = out / f"{name}.png"
        path.write_bytes(render(results, name))
        paths.append(path)
    return paths


def _read_any(directory: Path, stem: str) -> pd.DataFrame | None:
    for suffix, read in ((".parquet", pd.read_parquet), (".csv", pd.read_csv)):
        path = directory / f"{stem}{suffix}"
        if path.is_file():
            return read(path)
    return None


def _draw_on(draw: Callable[..., Any], ax: Axes) -> None:
    draw(ax=ax)


def plot_directory(directory: str | Path, out: str | Path | None = None) -> list[Path]:
    """Write the plots of a results directory as PNGs; return their paths.

    Parameters
    ----------
    directory
        Written by ``simulator run --out`` (a run: every plot it has data for), or by
        ``compare --out`` (:func:`comparison_chart` of each metric, means and paired
        differences) or ``sweep --out`` (:func:`latency_vs_load` of the latency percentiles,
        and of the error ratio and throughput).
    out
        Where the PNGs go (default: ``directory/plots``).

    Raises
    ------
    FileNotFoundError
        ``directory`` is not a results directory.
    ValueError
        It holds an experiment with nothing to plot.
    """
    import json

    from simulator.results import Results

    source = Path(directory)
    target = Path(out) if out is not None else source / "plots"
    manifest_path = source / "manifest.json"
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{source}: no manifest.json (not a results directory)")
    manifest = json.loads(manifest_path.read_text())
    if "scenario" in manifest:
        return write_plots(Results.read(source), target)
    kind = manifest.get("kind")
    confidence = manifest.get("confidence")
    drawings: list[tuple[str, Callable[..., Any], tuple[float, float]]] = []
    if kind == "compare":
        table = _read_any(source, "comparison")
        if table is None:
            raise FileNotFoundError(f"{source}: no comparison table")
        n = table["variant"].nunique()
        for metric in pd.unique(table["metric"]):
            size = (9.0, 1.4 + 0.5 * n)
            drawings.append((f"comparison_{metric}", functools.partial(
                comparison_chart, table, str(metric), confidence=confidence), size))
            drawings.append((f"comparison_{metric}_difference", functools.partial(
                comparison_chart, table, str(metric), difference=True,
                baseline=manifest.get("baseline"), confidence=confidence), size))
    elif kind == "sweep":
        table = _read_any(source, "intervals")
        if table is None:
            raise FileNotFoundError(f"{source}: no intervals table")
        available = set(table["metric"])
        groups = [[m for m in ("p50", "p95", "p99") if m in available],
                  *([m] for m in ("error_ratio", "throughput") if m in available)]
        for metrics in filter(None, groups):
            name = "latency" if metrics[0] in LATENCY_METRICS else metrics[0]
            drawings.append((f"sweep_{name}", functools.partial(
                latency_vs_load, table, metrics=metrics, confidence=confidence), (10, 4.5)))
    if not drawings:
        raise ValueError(f"{source}: nothing to plot for a {kind or 'unknown'} experiment "
                         "(plots are made for runs, comparisons and sweeps)")
    target.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, draw, size in drawings:
        path = target / f"{name}.png"
        figure(functools.partial(_draw_on, draw), size).savefig(path, dpi=110)
        paths.append(path)
    return paths


__all__ = ["NoDataError", "PlotAccessor", "comparison_chart", "fault_windows", "figure",
           "latency_cdf_overlay", "latency_vs_load", "plot_directory", "render",
           "shade_windows", "write_plots"]
