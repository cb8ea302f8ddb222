"""Plots of several runs and of experiments: latency CDFs overlaid, comparison charts with
confidence intervals, latency against load."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from simulator.analysis.plots.style import (
    LATENCY_METRICS,
    draw_cdf,
    human_ticks,
    label_cdf_axes,
    legend_outside,
    make_axes,
    metric_label,
    ms_factor,
    palette,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from simulator.results import Results

def latency_cdf_overlay(
    results: Mapping[str, Results] | Sequence[Results],
    ax: Axes | None = None,
    workload: str | None = None,
    complementary: bool = False,
    of: Literal["all", "ok"] = "all",
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
    of
        ``"all"``: fractions of all the run's requests (measured window), failed, timed-out,
        rejected and unfinished ones never done, so each curve stops at its success share;
        ``"ok"``: of its successful requests only. The legend gives each run's success share.
    """
    if of not in ("all", "ok"):
        raise ValueError(f"of must be 'all' or 'ok', got {of!r}")
    runs = _named(results)
    ax = make_axes(ax)
    left = math.inf
    for (name, r), color in zip(runs.items(), palette(len(runs)), strict=True):
        req = r.measured_requests()
        if workload is not None:
            req = req[req["workload"] == workload]
        ok = req[req["status"] == "ok"]
        label = f"{name} ({len(ok) / max(len(req), 1):.1%} ok)"
        left = min(left, draw_cdf(ax, ok["latency"].to_numpy(), label, complementary,
                                  of=len(req) if of == "all" else None, color=color))
    label_cdf_axes(ax, complementary, left)
    what = f" of {workload}" if workload else ""
    cover = ("all requests (failures never done)" if of == "all"
             else "successful requests only")
    ax.set_title(f"latency {'CCDF' if complementary else 'CDF'}{what}, {cover}")
    legend_outside(ax, title="variant")
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
    scale = ms_factor(metric)
    level = _confidence(table, confidence)
    if difference:
        df, baseline = _without_baseline(df, baseline or getattr(table, "baseline", None),
                                         variant)
        mean, low, high = df["diff"], df["diff_low"], df["diff_high"]
    else:
        lo, hi = _interval_columns(df)
        mean, low, high = df["mean"], df[lo], df[hi]
    m = mean.to_numpy(dtype=float) * scale
    lows, highs = low.to_numpy(dtype=float) * scale, high.to_numpy(dtype=float) * scale
    err = np.where(np.isfinite([m - lows, highs - m]), [m - lows, highs - m], 0.0)
    labels = [str(v) for v in df[variant]]
    ax = make_axes(ax, figsize=(8, 1.2 + 0.45 * len(labels)))
    y = np.arange(len(labels))
    if difference:
        significant = (df["significant"].to_numpy(dtype=bool) if "significant" in df
                       else (lows > 0) | (highs < 0))
        _draw_differences(ax, y, m, err, significant)
        against = f" {baseline}" if baseline else " the baseline"
        ax.set_xlabel(f"{metric} minus{against}'s ({_unit(metric)}), paired by replication")
        ax.set_title(f"{metric}: difference from{against}, {level}confidence intervals")
    else:
        _draw_means(ax, y, m, err, lows, highs, log)
        ax.set_xlabel(metric_label(metric))
        ax.set_title(f"{metric}: mean over replications, {level}confidence intervals")
    ax.set_yticks(y, labels)
    ax.set_ylim(len(labels) - 0.5, -0.7)
    ax.grid(True, axis="x", which="both", alpha=0.3)
    return ax


def has_values(table: pd.DataFrame) -> bool:
    """Whether a comparison's rows have anything to draw: some mean, bound or difference that
    is not zero (a chart of zeros only, error ratios of a run without errors, is left out)."""
    cols = [c for c in ("mean", "low", "high", "ci_low", "ci_high", "diff", "diff_low",
                        "diff_high") if c in table]
    values = table[cols].to_numpy(dtype=float)
    return bool(np.any(np.isfinite(values) & (values != 0)))


def _without_baseline(df: pd.DataFrame, baseline: str | None,
                      variant: str) -> tuple[pd.DataFrame, str | None]:
    """The rows of the variants compared with the baseline, and the baseline's name: the one
    given, else the only row whose paired difference is exactly zero (None if not one)."""
    if "diff" not in df:
        raise ValueError("difference=True needs diff, diff_low, diff_high columns")
    if baseline is None:
        zero = df[(df["diff"] == 0) & (df["diff_low"] == 0) & (df["diff_high"] == 0)]
        baseline = str(zero[variant].iloc[0]) if len(zero) == 1 else None
    if baseline is not None:
        df = df[df[variant].astype(str) != baseline]
    return df, baseline


def _draw_differences(ax: Axes, y: np.ndarray, diff: np.ndarray, err: np.ndarray,
                      significant: np.ndarray) -> None:
    """Paired differences with their intervals, in colour where the interval excludes zero,
    about a zero line; the legend says which colour is which."""
    for yi, mi, e0, e1, si in zip(y, diff, err[0], err[1], significant, strict=True):
        ax.errorbar(mi, yi, xerr=[[e0], [e1]], fmt="o", capsize=4,
                    color="#c62828" if si else "#757575")
        ax.annotate(f"{mi:+,.0f}" if abs(mi) >= 100 else f"{mi:+.3g}", (mi, yi),
                    textcoords="offset points", xytext=(0, 7), ha="center", fontsize="small")
    ax.axvline(0, color="black", lw=1)
    bounds = np.abs(np.concatenate([diff, diff - err[0], diff + err[1]]))
    bounds = bounds[np.isfinite(bounds) & (bounds > 0)]
    if len(bounds) and bounds.max() / bounds.min() > 30:
        # magnitudes differing by orders (one variant +12,500 ms, another +74 ms): a symmetric
        # log axis, linear within the smallest magnitude, keeps each one off the zero line
        ax.set_xscale("symlog", linthresh=float(bounds.min()))
        human_ticks(ax.xaxis)
    from matplotlib.lines import Line2D

    ax.legend(handles=[
        Line2D([], [], marker="o", color="#c62828", ls="", label="interval excludes 0"),
        Line2D([], [], marker="o", color="#757575", ls="", label="interval includes 0")],
        loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize="small")


def _draw_means(ax: Axes, y: np.ndarray, mean: np.ndarray, err: np.ndarray, lows: np.ndarray,
                highs: np.ndarray, log: bool | None) -> None:
    """Means with their intervals, each labelled with its value; a log axis if ``log`` (None:
    when every interval is positive and they span more than a factor of 30), else from 0."""
    ax.errorbar(mean, y, xerr=err, fmt="o", color="#1565c0", ecolor="black", capsize=4)
    positive = lows[np.isfinite(lows) & (lows > 0)]
    if log is None:
        log = bool(len(positive) == len(lows) and len(lows)
                   and np.nanmax(highs) / positive.min() > 30)
    if log:
        ax.set_xscale("log")
        human_ticks(ax.xaxis)
    else:
        ax.set_xlim(left=0, right=float(np.nanmax(highs)) * 1.15 or None)
    for yi, mi in zip(y, mean, strict=True):
        ax.annotate(f"{mi:,.0f}" if abs(mi) >= 100 else f"{mi:.3g}", (mi, yi),
                    textcoords="offset points", xytext=(0, 7), ha="center", fontsize="small")


def _unit(metric: str) -> str:
    label = metric_label(metric)
    return label.rpartition("(")[2].rstrip(")") if label.endswith(")") else "value"


def _confidence(table: Any, level: float | None = None) -> str:
    level = level if level is not None else getattr(table, "confidence", None)
    return f"{level:.0%} " if isinstance(level, float) else ""


#: Columns of a sweep's interval table that are not swept parameters.
_NOT_PARAMETERS = frozenset({"scope", "name", "metric", "n", "mean", "sd", "half_width", "low",
                             "high", "ci_low", "ci_high", "relative_half_width", "variant",
                             "seed", "replication", "warmup", "steady"})


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
    x, by = _sweep_columns(df, x, by)
    missing = [m for m in metrics if m not in set(df["metric"])]
    if missing:
        raise ValueError(f"no rows for metric(s) {', '.join(missing)} in the table")
    lo, hi = _interval_columns(df)
    ax = make_axes(ax)
    unit, peaks = _draw_bands(ax, df, x, by, metrics, (lo, hi))
    if len(metrics) == 1:
        ax.set_ylabel(metric_label(metrics[0]))
    elif all(m in LATENCY_METRICS for m in metrics):
        ax.set_ylabel("latency (ms)")
    ax.set_xlabel(f"{x} ({unit})" if unit else x)
    positive = [p for p in peaks if p > 0]
    if log is None:
        log = len(positive) > 1 and max(positive) > 30 * min(positive)
    if log:
        ax.set_yscale("log")
        human_ticks(ax.yaxis)
    else:
        ax.set_ylim(bottom=0)
    ax.grid(True, which="both", alpha=0.3)
    ax.set_title(f"{' / '.join(metrics)} against {x.rpartition('.')[2]}, "
                 f"{_confidence(table, confidence)}confidence bands")
    legend_outside(ax, title=by)
    return ax


def _sweep_columns(df: pd.DataFrame, x: str | None, by: str | None) -> tuple[str, str | None]:
    """The load column (``x``, else the first swept parameter with numeric values) and the
    column with one curve per value (``by``, else ``variant``, else the next parameter)."""
    params = [c for c in df.columns if c not in _NOT_PARAMETERS]
    if x is None:
        numeric = [p for p in params if _is_numeric(df[p])]
        x = numeric[0] if numeric else (params[0] if params else None)
    if x is None or x not in df:
        raise ValueError(f"no load column {x!r} in the table (columns: {', '.join(df.columns)})")
    if by is None:
        rest = [p for p in params if p != x]
        by = "variant" if "variant" in df else (rest[0] if rest else None)
    return x, by


def _draw_bands(ax: Axes, df: pd.DataFrame, x: str, by: str | None, metrics: Sequence[str],
                band: tuple[str, str]) -> tuple[str, list[float]]:
    """One curve per value of ``by`` and metric (a colour per value, a line style per metric)
    with its confidence band between the columns ``band``; return the unit of ``x`` and each
    curve's largest mean."""
    lo, hi = band
    groups: Iterable[tuple[Any, pd.DataFrame]] = (
        df.groupby(by, sort=False, observed=True) if by else [(None, df)])
    groups = list(groups)
    styles = ["-", "--", ":", "-."]
    unit = ""
    peaks = []
    for (key, grp), color in zip(groups, palette(len(groups)), strict=True):
        for j, metric in enumerate(metrics):
            rows = grp[grp["metric"] == metric]
            peaks.append(float(np.nanmax(rows["mean"].to_numpy(dtype=float), initial=np.nan)))
            xs, unit = _numeric(rows[x])
            order = np.argsort(xs, kind="stable")
            s = ms_factor(metric)
            label = (metric if key is None else str(key) if len(metrics) == 1
                     else f"{key} {metric}")
            ax.plot(xs[order], rows["mean"].to_numpy(dtype=float)[order] * s, marker="o",
                    ms=3, color=color if key is not None else None, ls=styles[j % 4],
                    label=label)
            color_j = ax.lines[-1].get_color()
            ax.fill_between(xs[order], rows[lo].to_numpy(dtype=float)[order] * s,
                            rows[hi].to_numpy(dtype=float)[order] * s, color=color_j,
                            alpha=0.2, lw=0)
    return unit, peaks
