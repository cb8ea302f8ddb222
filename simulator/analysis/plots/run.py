"""The plots of one run that belong to no component kind: latency, throughput, goodput,
load per component, circuit breakers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from simulator.analysis.plots.style import (
    BREAKER_COLORS,
    BREAKER_STATE,
    STATUS_COLORS,
    NoDataError,
    arrivals_total,
    draw_cdf,
    draw_steps,
    has_metric,
    label_cdf_axes,
    label_time_axis,
    legend_outside,
    make_axes,
    per_window,
    rate_per_window,
    run_end,
    shade_windows,
    window_width,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results


def latency_cdf(r: Results, ax: Axes | None = None, by: str = "workload",
                complementary: bool = False, of: Literal["all", "ok"] = "all") -> Axes:
    """Empirical CDF of end-to-end latency (requests created in the measured window).

    Parameters
    ----------
    r
        The run.
    ax
        Axes to draw on (default: a new figure).
    by
        Column of ``requests`` giving one curve per value (``workload``, ``op``...).
    complementary
        Draw ``1 - F`` on a log scale instead, which spreads out the tail (p99, p99.9).
    of
        ``"all"``: the fraction of all the group's requests done successfully within each
        latency; failed, timed-out, rejected and unfinished requests never are (their latency
        counts as infinite), so the curve stops at the success share and ``1 - F`` flattens
        at the share that failed. ``"ok"``: the CDF of successful requests alone, which
        reaches 1 whatever failed; the legend gives each curve's share of the requests.
    """
    if of not in ("all", "ok"):
        raise ValueError(f"of must be 'all' or 'ok', got {of!r}")
    ax = make_axes(ax)
    req = r.measured_requests()
    lefts = [math.inf]
    for name, grp in req.groupby(by, observed=True):
        ok = grp[grp["status"] == "ok"]
        share = len(ok) / len(grp)
        label = f"{name} ({share:.1%} ok)" if of == "ok" else \
            f"{name} ({share:.1%} ok, {1 - share:.1%} failed or unfinished)"
        lefts.append(draw_cdf(ax, ok["latency"].to_numpy(), label, complementary,
                              of=len(grp) if of == "all" else None))
    label_cdf_axes(ax, complementary, min(lefts))
    name = "CCDF" if complementary else "CDF"
    if of == "all":
        ax.set_title(f"{r.scenario.name}: latency {name} of all requests\n"
                     "(failed, timed-out, rejected, unfinished: never done)")
    else:
        total = req["status"].eq("ok").mean() if len(req) else math.nan
        ax.set_title(f"{r.scenario.name}: latency {name}, successful requests only "
                     f"({total:.1%} of requests)")
        ax.set_ylabel(ax.get_ylabel().replace("requests", "successful requests"))
    ax.legend(title=by, fontsize="small")
    return ax


#: How :func:`latency_over_time`'s lower panel names a status.
NOT_OK_LABELS = {"in_flight": "unfinished"}


def latency_over_time(r: Results, ax: Axes | None = None, window: float | None = None,
                      quantiles: tuple[float, ...] = (0.5, 0.95, 0.99),
                      by: Literal["end", "start"] = "end") -> Axes:
    """Latency percentiles of successful requests per time window, above a panel of the share
    of requests per window that did not succeed, by status.

    The percentiles cover successful requests only; a window where requests ended but none
    succeeded is hatched ("no successful request"). The lower panel (sharing the time axis,
    found as the other Axes of the figure, labelled ``"not successful"``) draws, per status
    other than ``ok``, the share of the window's requests that ended with it: timed out,
    rejected, failed, fallback, and ``unfinished`` (in flight when the run ended: with
    ``by="end"`` they are counted in the last window, when the run ended without them).

    Parameters
    ----------
    r
        The run.
    ax
        Axes to draw on (default: a new figure); the lower panel is split off it.
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
    from mpl_toolkits.axes_grid1 import make_axes_locatable

    ax = make_axes(ax)
    window = window_width(r, window)
    t, shares, no_success = status_shares(r, window, by)
    req = r.requests[r.requests["status"] == "ok"]
    bins = np.floor(req[by].to_numpy() / window) * window
    g = req.assign(t=bins).groupby("t")["latency"]
    for q in quantiles:
        series = g.quantile(q) * 1e3
        ax.plot(series.index, series.to_numpy(), label=f"p{q * 100:g}")
    for i, (a, b) in enumerate(no_success):
        ax.axvspan(a, b, facecolor="none", edgecolor="#424242", hatch="xx", lw=0, alpha=0.6,
                   label="no successful request" if i == 0 else None)
    shade_windows(ax, r)
    when = "completion" if by == "end" else "creation"
    label_time_axis(ax, r, f"latency per {window:g}s by {when} time, successful requests only",
                    "latency (ms)")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("")
    ax.tick_params(labelbottom=False)
    legend_outside(ax, fontsize="small")
    low = make_axes_locatable(ax).append_axes("bottom", size="55%", pad=0.12, sharex=ax)
    low.set_label("not successful")
    for status, share in shares.items():
        draw_steps(low, t, share * 100, window, label=NOT_OK_LABELS.get(status, status),
                   color=STATUS_COLORS.get(status))
    shade_windows(low, r, warmup=True)
    low.set_xlim(0, run_end(r))
    low.set_ylim(0, 105)  # a share of 100% stays visible above the frame
    low.set_xlabel("time (s)")
    low.set_ylabel("% not ok")
    low.grid(True, alpha=0.3)
    if not shares:
        low.text(0.5, 0.5, "every request succeeded", transform=low.transAxes,
                 ha="center", va="center", color="#616161")
    handles, labels = low.get_legend_handles_labels()
    keep = [(h, lab) for h, lab in zip(handles, labels, strict=True)
            if lab in {NOT_OK_LABELS.get(s, s) for s in shares}]
    if keep:
        low.legend(*zip(*keep, strict=True), loc="center left", bbox_to_anchor=(1.01, 0.5),
                   fontsize="small", title="share of requests")
    return ax


def status_shares(r: Results, window: float, by: Literal["end", "start"] = "end",
                  ) -> tuple[np.ndarray, dict[str, np.ndarray], list[tuple[float, float]]]:
    """Per time window ``[k w, (k+1) w)`` from 0 to the end of the run, the share of the
    window's requests ending in each status other than ``ok``, and the windows where requests
    ended but none succeeded.

    Parameters
    ----------
    r
        The run.
    window
        Width of a window, seconds.
    by
        Bin requests by completion (``"end"``; unfinished ones in the last window) or
        creation time (``"start"``).

    Returns
    -------
    tuple
        The windows' start times; ``{status: share}`` (fractions, NaN for a window without
        requests) for each status other than ``ok`` that occurs; ``(start, end)`` of each run
        of windows with requests and no success.
    """
    req = r.requests
    t_end = run_end(r)
    n = max(1, math.ceil(t_end / window - 1e-9))
    status = req["status"].astype(str).to_numpy()
    times = req[by].to_numpy(dtype=float)
    idx = np.floor(np.nan_to_num(times, nan=t_end) / window).astype(np.int64).clip(0, n - 1)
    total = np.bincount(idx, minlength=n).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        shares = {s: np.bincount(idx[status == s], minlength=n) / total
                  for s in [*STATUS_COLORS, *sorted(set(status) - set(STATUS_COLORS))]
                  if s != "ok" and (status == s).any()}
    ok = np.bincount(idx[status == "ok"], minlength=n)
    empty = (total > 0) & (ok == 0)
    runs: list[tuple[float, float]] = []
    for k in np.flatnonzero(empty):
        a, b = k * window, min((k + 1) * window, t_end)
        if runs and math.isclose(runs[-1][1], a):
            runs[-1] = (runs[-1][0], b)
        else:
            runs.append((float(a), float(b)))
    return np.arange(n) * window, shares, runs


def throughput_over_time(r: Results, ax: Axes | None = None, window: float | None = None) -> Axes:
    """Completed requests per second by status, per time window (by completion time)."""
    ax = make_axes(ax)
    window = window_width(r, window)
    req = r.requests.dropna(subset=["end"])
    t_end = run_end(r)
    statuses = [s for s in STATUS_COLORS if (req["status"] == s).any()]
    statuses += sorted(set(map(str, req["status"].unique())) - set(statuses))
    for status in statuses:
        ends = req.loc[req["status"] == status, "end"].to_numpy()
        t, rate = rate_per_window(ends, window, t_end)
        draw_steps(ax, t, rate, window, label=status, color=STATUS_COLORS.get(status))
    shade_windows(ax, r)
    label_time_axis(ax, r, "throughput by status", "requests per second")
    ax.set_ylim(bottom=0)
    legend_outside(ax)
    return ax


def goodput_over_time(r: Results, ax: Axes | None = None, window: float | None = None) -> Axes:
    """Arrivals, throughput, goodput and errors per second over time.

    Arrivals count requests created (the offered load, by creation time); throughput counts
    completions, goodput successful completions and errors failed ones (a fallback is
    neither a success nor an error), all by completion time.
    """
    ax = make_axes(ax)
    window = window_width(r, window)
    req = r.requests
    t_end = run_end(r)
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
        t, rate = rate_per_window(times, window, t_end)
        draw_steps(ax, t, rate, window, label=label, **style)
    shade_windows(ax, r)
    label_time_axis(ax, r, "throughput, goodput and errors", "requests per second")
    ax.set_ylim(bottom=0)
    legend_outside(ax)
    return ax


def load_over_time(r: Results, ax: Axes | None = None, window: float | None = None,
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
    r
        The run.
    ax
        Axes to draw on (default: a new figure).
    window
        Width of a time window in seconds (default: the scenario's ``metrics.interval``).
    components
        Components drawn (default: every component that records spans).
    """
    if len(r.spans) == 0:
        raise NoDataError(f"{r.scenario.name}: no spans in this run (metrics.spans off?)")
    window = window_width(r, window)
    ax = make_axes(ax)
    t_end = run_end(r)
    sp = r.spans
    totals = arrivals_total(r.samples)
    names = list(components) if components is not None else sorted(
        map(str, sp["component"].unique()))
    series: dict[tuple[float, ...], tuple[np.ndarray, np.ndarray, list[str]]] = {}
    for name in names:
        if name in totals:
            per = per_window(totals[name], window) / window
            t, rate = per.index.to_numpy() - window, per.to_numpy()
        else:
            arrivals = sp.loc[sp["component"] == name, "arrival"].to_numpy()
            t, rate = rate_per_window(arrivals, window, t_end)
        # components that see the same requests (a fan-out) would hide each other's line
        series.setdefault((*t, *rate), (t, rate, []))[2].append(name)
    for t, rate, same in series.values():
        draw_steps(ax, t, rate, window, label=" = ".join(same))
    shade_windows(ax, r)
    label_time_axis(ax, r, "arrivals per second at each component", "requests per second")
    ax.set_ylim(bottom=0)
    legend_outside(ax)
    return ax


def breaker_spans(rows: dict[tuple[str, str], list[tuple[float, str]]], t_end: float
                  ) -> list[tuple[int, str, list[tuple[float, float]]]]:
    """(row, state, [(start, length), ...]) of every state each breaker of ``rows`` (see
    :func:`breaker_rows`) was in from 0 to ``t_end``, rows in order: the bars the breaker
    timeline and the dashboard draw."""
    bars = []
    for y, changes in enumerate(rows.values()):
        edges = [0.0, *(t for t, _ in changes), t_end]
        states = ["closed", *(s for _, s in changes)]
        for state in BREAKER_COLORS:
            spans = [(a, b - a) for s, a, b in zip(states, edges[:-1], edges[1:], strict=True)
                     if s == state and b > a]
            if spans:
                bars.append((y, state, spans))
    return bars


def breaker_timeline(r: Results, ax: Axes | None = None) -> Axes:
    """State of every circuit breaker over time: one bar per (caller instance, target).

    Transitions come from the ``breaker`` events (``detail`` ``"target: old->new"``);
    breakers that never left the closed state are found from their ``breaker_state`` gauge.
    """
    rows = breaker_rows(r)
    if not rows:
        raise NoDataError(f"{r.scenario.name}: no circuit breakers in this run")
    ax = make_axes(ax, figsize=(8, 1.2 + 0.45 * len(rows)))
    t_end = run_end(r)
    labels = [f"{caller} → {target}" for caller, target in rows]
    for y, state, spans in breaker_spans(rows, t_end):
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


def breaker_rows(r: Results) -> dict[tuple[str, str], list[tuple[float, str]]]:
    """Transitions ``(time, new state)`` per (caller instance, target), in time order."""
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


# ---- which plots a run has data for (a streaming run keeps no requests table) ---------------
def has_measured_successes(r: Results) -> bool:
    """Successful requests in the measured window."""
    return not r.streaming and bool((r.measured_requests()["status"] == "ok").any())


def has_completions(r: Results) -> bool:
    """Completed requests."""
    return not r.streaming and bool(r.requests["end"].notna().any())


def has_requests(r: Results) -> bool:
    """Requests."""
    return not r.streaming and len(r.requests) > 0


def has_spans(r: Results) -> bool:
    """Spans (a streaming run's load is not drawn: its spans are not per request)."""
    return not r.streaming and len(r.spans) > 0


def has_breakers(r: Results) -> bool:
    """Circuit-breaker events or gauges."""
    return bool((r.events["event"] == "breaker").any()) or has_metric(r, BREAKER_STATE)


def breaker_timeline_size(r: Results) -> tuple[float, float]:
    """One row per (caller, target) breaker."""
    return (9, 1.6 + 0.4 * len(breaker_rows(r)))
