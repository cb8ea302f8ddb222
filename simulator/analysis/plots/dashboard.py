"""The dashboard of a run: one figure, one shared time axis, every signal an operator looks at.

Panels, top to bottom, each left out when the run has nothing to show in it (a chart with
nothing to show is not drawn): requests per second (arrivals, goodput, and each failing
status); latency percentiles of successful requests (log axis in ms, the clients' timeouts and
any SLO as lines); the share of requests that did not succeed, by status (%); p99 per workload
and per region when the scenario has several; utilisation (%) and queue length per instance;
circuit-breaker states. Faults are tinted bands and instantaneous timeline events (a reshard)
vertical lines, on every panel, named above the top one; the warm-up is grey and the drain
after the arrivals dotted.

Only generic tables are read (``requests``, ``samples``, ``events``) and generic gauges
(``busy_time_total``, ``workers``, ``queue_length``, ``breaker_state``): a kind that records
them appears without the dashboard naming it.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from simulator.analysis.diagnostics import fault_label
from simulator.analysis.plots.heatmap import MAX_COLUMNS
from simulator.analysis.plots.instances import (
    draw_per_instance,
    queue_length_series,
    utilisation_series,
)
from simulator.analysis.plots.run import (
    NOT_OK_LABELS,
    breaker_rows,
    breaker_spans,
    status_shares,
)
from simulator.analysis.plots.style import (
    BREAKER_COLORS,
    FAULT_COLORS,
    PHASE_COLOR,
    STATUS_COLORS,
    NoDataError,
    arrivals_total,
    draw_steps,
    human_log_ticks,
    legend_beside,
    palette,
    per_window,
    rate_per_window,
    run_end,
    split_axes,
    thousands_ticks,
    window_width,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results

#: SLO keys :func:`dashboard` accepts: latency percentiles (seconds) and the error ratio.
SLO_LATENCY = {"p50": 0.5, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p999": 0.999}
SLO_ERRORS = "error_ratio"
_QUANTILES = (0.5, 0.95, 0.99)
_TARGET_COLORS = ("#6a1b9a", "#00838f", "#5d4037", "#ad1457")


@dataclass(frozen=True)
class Panel:
    """One panel of the dashboard: its label (``Axes.get_label()``), relative height and
    what draws it."""

    name: str
    height: float
    draw: Callable[[Axes], None]


def dashboard_window(r: Results, window: float | None = None) -> float:
    """The dashboard's time window: ``window``, else ``metrics.interval`` widened so that the
    run has at most :data:`~simulator.analysis.plots.heatmap.MAX_COLUMNS` windows."""
    if window is not None:
        return window_width(r, window)
    return max(window_width(r, None), run_end(r) / MAX_COLUMNS)


def panels(r: Results, window: float | None = None,
           slo: Mapping[str, float] | None = None) -> list[Panel]:
    """The panels :func:`dashboard` draws for ``r``, in order (those with data only).

    Parameters
    ----------
    r
        The run.
    window
        See :func:`dashboard_window`.
    slo
        See :func:`dashboard`.
    """
    slo = _check_slo(scenario_slo(r) if slo is None else slo)
    w = dashboard_window(r, window)
    req = r.requests
    if len(req) == 0:
        raise NoDataError(f"{r.scenario.name}: no requests in this run")
    ok = req[(req["status"] == "ok") & (req["latency"] > 0)]
    out = [Panel("requests", 1.3, lambda ax: _requests(ax, r, w))]
    if len(ok):
        out.append(Panel("latency", 1.3, lambda ax: _latency(ax, r, w, slo)))
    status = req["status"].astype(str)
    if (~status.isin(["ok", "in_flight"])).any() or not _few_in_flight(r):
        out.append(Panel("not ok", 0.9, lambda ax: _not_ok(ax, r, w, slo)))
    for column in ("workload", "region"):
        groups = sorted(str(g) for g in ok[column].unique() if str(g))
        if len(groups) > 1:
            out.append(Panel(f"p99 by {column}", 1.0,
                             functools.partial(_p99_by, r=r, w=w, column=column, slo=slo)))
    util = utilisation_series(r, w)
    if any(np.nanmax(s.to_numpy(), initial=0) > 0 for s in util.values()):
        out.append(Panel("utilisation", 1.0, lambda ax: draw_per_instance(
            ax, util, "utilisation (%)", steps=w)))
    queues = queue_length_series(r)
    if any(np.nanmax(s.to_numpy(), initial=0) > 0 for s in queues.values()):
        out.append(Panel("queue length", 1.0, lambda ax: draw_per_instance(
            ax, queues, "queue length (requests)")))
    rows = breaker_rows(r)
    if any(changes for changes in rows.values()):
        out.append(Panel("breakers", max(0.6, 0.22 * len(rows)),
                         lambda ax: _breakers(ax, r, rows)))
    return out


def dashboard_size(r: Results) -> tuple[float, float]:
    """Figure size (inches): 2.2 in per unit of panel height."""
    return (13.0, 1.2 + 2.2 * sum(p.height for p in panels(r)))


def dashboard(r: Results, ax: Axes | None = None, window: float | None = None,
              slo: Mapping[str, float] | None = None) -> Axes:
    """Every signal of a run over one shared time axis (see the module's docstring).

    Parameters
    ----------
    r
        The run.
    ax
        Where the dashboard goes: its panels replace ``ax`` (the whole figure when ``ax`` is
        its only Axes). Default: a new figure.
    window
        Width of a time window, seconds (see :func:`dashboard_window`).
    slo
        Service level objectives drawn as red dotted lines: ``{"p99": 0.2}`` (latency
        percentiles ``p50``, ``p90``, ``p95``, ``p99``, ``p999`` in seconds, on the latency
        panels) and ``{"error_ratio": 0.001}`` (a fraction, on the not-ok panel). Default:
        the upper bounds the scenario's ``slo:`` states on those metrics (none without one).

    Returns
    -------
    Axes
        The top panel; ``ax.figure.axes`` holds every panel, each labelled with its name
        (``requests``, ``latency``, ``not ok``, ``p99 by workload``, ``p99 by region``,
        ``utilisation``, ``queue length``, ``breakers``).
    """
    chosen = panels(r, window, slo)
    heights = [p.height for p in chosen]
    fig, grid = split_axes(ax, len(chosen), figsize=(13.0, 1.2 + 2.2 * sum(heights)),
                           height_ratios=heights)
    axes: list[Axes] = []
    t_end = run_end(r)
    for i, panel in enumerate(chosen):
        pax = fig.add_subplot(grid[i], sharex=axes[0] if axes else None, label=panel.name)
        panel.draw(pax)
        mark_timeline(pax, r, names=i == 0)
        pax.grid(True, which="major", alpha=0.3)
        if i < len(chosen) - 1:
            pax.tick_params(labelbottom=False)
        axes.append(pax)
    axes[0].set_xlim(0, t_end)
    starts = [a for a, _, _ in timeline_marks(r)]
    if starts or r.window[0] > 0:  # room for the bands' names (one or two rows) under the title
        two = any(b - a < 0.2 * t_end for a, b in itertools.pairwise(starts))
        axes[0].set_title(axes[0].get_title(loc="left"), loc="left", fontsize="medium",
                          pad=36 if two else 22)
    for pax in axes:
        if pax.get_yscale() == "log":  # the shared limits are final: label the decades
            human_log_ticks(pax.yaxis, "ms")
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(f"{r.scenario.name}: dashboard ({dashboard_window(r, window):g}s windows)",
                 fontweight="bold")
    return axes[0]


# ---- bands ----------------------------------------------------------------------------------
def timeline_marks(r: Results) -> list[tuple[float, float, str]]:
    """``(start, end, label)`` of every fault and timeline event, equal windows merged (an
    instantaneous event has ``start == end``; one without a duration lasts to the end)."""
    t_end = run_end(r)
    merged: dict[tuple[float, float], list[str]] = {}
    for fault in r.scenario.faults:
        a = float(fault.at)
        merged.setdefault((a, max(a, min(float(fault.end), t_end))), []).append(
            fault_label(fault))
    return [(a, b, ", ".join(labels)) for (a, b), labels in sorted(merged.items())]


def mark_timeline(ax: Axes, r: Results, names: bool = False) -> None:
    """Tint the warm-up (grey), each fault window (a colour each, ``gid="fault"``), draw
    each instantaneous event as a vertical line (``gid="event"``) and the end of arrivals
    and the drain (dotted); with ``names``, write each one's name above the axes."""
    from matplotlib.transforms import blended_transform_factory

    above = blended_transform_factory(ax.transData, ax.transAxes)
    t0 = r.window[0]
    if t0 > 0:
        ax.axvspan(0, t0, color="grey", alpha=0.15, lw=0, gid="warmup")
        if names:
            ax.text(t0 / 2, 1.02, "warm-up", transform=above, ha="center", va="bottom",
                    fontsize="small", color="#616161")
    marks = timeline_marks(r)
    level, last = 0, -math.inf
    for i, (a, b, label) in enumerate(marks):
        # names of marks close together go on two rows, so that they do not overlap
        level = 1 - level if a - last < 0.2 * run_end(r) else 0
        last = a
        color = FAULT_COLORS[i % len(FAULT_COLORS)]
        if b > a:
            ax.axvspan(a, b, color=color, alpha=0.15, lw=0, gid="fault")
        else:
            ax.axvline(a, color=color, lw=1.5, ls="-.", gid="event")
        if names:
            ax.text(a, 1.02 + 0.12 * level, label, transform=above, ha="left", va="bottom",
                    fontsize="small", color=color, fontweight="bold")
    arrivals_end, t_end = float(r.scenario.duration), run_end(r)
    if t_end > arrivals_end + 1e-9:
        ax.axvline(arrivals_end, color=PHASE_COLOR, ls="--", lw=1, gid="drain")
        ax.axvspan(arrivals_end, t_end, facecolor="none", edgecolor=PHASE_COLOR, alpha=0.3,
                   hatch="..", lw=0, gid="drain")
        if names:
            ax.text(arrivals_end, 1.02, " drain", transform=above, ha="left", va="bottom",
                    fontsize="small", color=PHASE_COLOR)


#: Requests in flight when the run ended, as a share of all, below which they are not drawn.
FEW_IN_FLIGHT = 0.005


def _few_in_flight(r: Results) -> bool:
    """Whether the requests still in flight at the end are the few any run ends with (at
    most :data:`FEW_IN_FLIGHT` of them; the report's findings use the same threshold)."""
    return bool((r.requests["status"].astype(str) == "in_flight").mean() <= FEW_IN_FLIGHT)


# ---- panels ---------------------------------------------------------------------------------
def _requests(ax: Axes, r: Results, w: float) -> None:
    """Arrivals (by creation), goodput and every failing status (by completion) per second."""
    req = r.requests
    t_end = run_end(r)
    status = req["status"].astype(str).to_numpy()
    end = req["end"].to_numpy(dtype=float)
    t, rate = rate_per_window(req["start"].to_numpy(dtype=float), w, t_end)
    draw_steps(ax, t, rate, w, label="arrivals", color="#424242", ls="--", lw=1)
    totals = arrivals_total(r.samples)
    targets = dict.fromkeys(str(getattr(wl.target, "to", "")) for wl in
                            r.scenario.workloads.values())
    # the load the clients' first hop really gets: a retry storm is the gap above arrivals
    for name, color in zip([n for n in targets if n in totals], _TARGET_COLORS * 9,
                           strict=False):
        per = per_window(totals[name], w) / w
        draw_steps(ax, per.index.to_numpy() - w, per.to_numpy(), w, color=color, ls=":",
                   lw=1.4, label=f"arriving at {name} (retries included)")
    t, rate = rate_per_window(end[status == "ok"], w, t_end)
    draw_steps(ax, t, rate, w, label="goodput (ok)", color=STATUS_COLORS["ok"], lw=1.6)
    for s in [*STATUS_COLORS, *sorted(set(status) - set(STATUS_COLORS))]:
        if s in ("ok", "in_flight") or not (status == s).any():
            continue
        t, rate = rate_per_window(end[status == s], w, t_end)
        draw_steps(ax, t, rate, w, label=s.replace("_", " "), color=STATUS_COLORS.get(s),
                   lw=1.2)
    ax.set_ylim(bottom=0)
    thousands_ticks(ax.yaxis)
    ax.set_ylabel("requests/s")
    ax.set_title("requests per second: arrivals by creation, outcomes by completion",
                 loc="left", fontsize="medium")
    legend_beside(ax)


def _log_ms(ax: Axes) -> None:
    ax.set_yscale("log")
    human_log_ticks(ax.yaxis, "ms")
    ax.grid(True, which="minor", axis="y", alpha=0.12)


def _ok_windows(r: Results, w: float) -> pd.DataFrame:
    req = r.requests
    ok = req[(req["status"] == "ok") & (req["latency"] > 0)]
    return ok.assign(t=np.floor(ok["end"].to_numpy(dtype=float) / w) * w)


def _latency(ax: Axes, r: Results, w: float, slo: dict[str, float]) -> None:
    """Percentiles of successful requests per window (by completion), timeouts and SLOs."""
    g = _ok_windows(r, w).groupby("t")["latency"]
    for q, color in zip(_QUANTILES, ("#1565c0", "#ef6c00", "#c62828"), strict=True):
        s = g.quantile(q) * 1e3
        draw_steps(ax, s.index.to_numpy(), s.to_numpy(), w, label=f"p{q * 100:g}",
                   color=color, lw=1.3)
    seen: dict[float, list[str]] = {}
    for name, workload in r.scenario.workloads.items():
        for what, value in (("timeout", getattr(workload.target, "timeout", None)),
                            ("deadline", getattr(workload, "deadline", None))):
            if value:
                seen.setdefault(float(value), []).append(f"{name} {what}")
    for value, who in seen.items():
        ax.axhline(value * 1e3, color="#616161", ls="--", lw=1,
                   label=f"{', '.join(who)} ({_ms(value)})")
    for i, (a, b) in enumerate(status_shares(r, w, "end")[2]):
        ax.axvspan(a, b, facecolor="none", edgecolor="#424242", hatch="xx", lw=0, alpha=0.45,
                   label="no request succeeded" if i == 0 else None)
    _slo_lines(ax, slo)
    _log_ms(ax)
    ax.set_ylabel("latency")
    ax.set_title("latency of successful requests, by completion time", loc="left",
                 fontsize="medium")
    legend_beside(ax)


def _slo_lines(ax: Axes, slo: dict[str, float], only: str | None = None) -> None:
    for key, value in slo.items():
        if key in SLO_LATENCY and only in (None, key):
            ax.axhline(value * 1e3, color="#b71c1c", ls=":", lw=1.6,
                       label=f"SLO {key} < {_ms(value)}")


def _ms(seconds: float) -> str:
    ms = seconds * 1e3
    return f"{ms:,.0f} ms" if ms >= 10 else f"{ms:.3g} ms"


def _not_ok(ax: Axes, r: Results, w: float, slo: dict[str, float]) -> None:
    """Share of each window's requests (by completion) ending in each status but ok."""
    t, shares, _ = status_shares(r, w, "end")
    if _few_in_flight(r):  # the handful any run ends with: nothing to show
        shares.pop("in_flight", None)
    for status, share in shares.items():
        draw_steps(ax, t, share * 100, w,
                   label=NOT_OK_LABELS.get(status, status).replace("_", " "),
                   color=STATUS_COLORS.get(status), lw=1.2)
    if SLO_ERRORS in slo:
        ax.axhline(slo[SLO_ERRORS] * 100, color="#b71c1c", ls=":", lw=1.6,
                   label=f"SLO errors < {slo[SLO_ERRORS]:.2%}")
    ax.set_ylim(0, 105)
    ax.set_ylabel("% of requests")
    ax.set_title("requests that did not succeed (share of each window's, by completion)",
                 loc="left", fontsize="medium")
    legend_beside(ax)


def _p99_by(ax: Axes, r: Results, w: float, column: str, slo: dict[str, float]) -> None:
    """p99 of successful requests per window for each workload (or region)."""
    ok = _ok_windows(r, w)
    groups = sorted(str(g) for g in ok[column].unique() if str(g))
    for name, color in zip(groups, palette(len(groups)), strict=True):
        s = ok[ok[column].astype(str) == name].groupby("t")["latency"].quantile(0.99) * 1e3
        draw_steps(ax, s.index.to_numpy(), s.to_numpy(), w, label=name, color=color, lw=1.2)
    _slo_lines(ax, slo, only="p99")
    _log_ms(ax)
    ax.set_ylabel("p99 latency")
    ax.set_title(f"p99 latency of successful requests by {column}", loc="left",
                 fontsize="medium")
    legend_beside(ax)


def _breakers(ax: Axes, r: Results, rows: dict[tuple[str, str], list[tuple[float, str]]],
              ) -> None:
    """One bar per (caller instance, target) breaker, coloured by state."""
    from matplotlib.patches import Patch

    labels = [f"{caller} → {target}" for caller, target in rows]
    for y, state, spans in breaker_spans(rows, run_end(r)):
        # above the fault bands, whose tint would change the states' colours
        ax.broken_barh(spans, (y - 0.38, 0.76), color=BREAKER_COLORS[state], lw=0, zorder=2.5)
    ax.set_yticks(range(len(labels)), labels, fontsize="small")
    ax.set_ylim(len(labels) - 0.5, -0.5)
    ax.grid(False)
    ax.set_title("circuit breaker state per caller → target", loc="left", fontsize="medium")
    ax.legend(handles=[Patch(color=c, label=s.replace("_", "-"))
                       for s, c in BREAKER_COLORS.items()],
              loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize="small",
              borderaxespad=0)


def scenario_slo(r: Results) -> dict[str, float]:
    """The thresholds of the scenario's SLO the dashboard can draw: upper bounds on latency
    percentiles and on the error ratio."""
    return {o.metric: o.threshold for o in r.scenario.objectives()
            if o.upper and (o.metric in SLO_LATENCY or o.metric == SLO_ERRORS)
            and o.threshold > 0}


def _check_slo(slo: Mapping[str, float] | None) -> dict[str, float]:
    out = dict(slo or {})
    for key, value in out.items():
        if key not in SLO_LATENCY and key != SLO_ERRORS:
            raise ValueError(f"slo: unknown key {key!r}; expected one of "
                             f"{', '.join([*SLO_LATENCY, SLO_ERRORS])}")
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise ValueError(f"slo: {key} must be a positive number, got {value!r}")
    return out


def has_dashboard(r: Results) -> bool:
    """A requests table with requests (a streaming run keeps none)."""
    return not r.streaming and len(r.requests) > 0
