"""Metric values for people: one set of units for the terminal and the reports.

Raw tables keep SI units (seconds, fractions, requests per second); anything shown to a person
says latencies in milliseconds and ratios in percent, with the unit in the column header or
next to the number. The experiment commands' terminal tables and the experiment reports both
format through here, so they cannot disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

#: Metrics that are durations (seconds in the tables, milliseconds when shown).
LATENCY_METRICS = ("mean", "p50", "p95", "p99", "p999")
#: Metrics that are fractions (shown in percent).
RATIO_METRICS = ("error_ratio", "rejection_ratio", "timeout_ratio", "utilisation")


def unit_of(metric: str) -> str:
    """The unit ``metric`` is shown in: ``ms``, ``%``, ``/s`` or ``""``."""
    if metric in LATENCY_METRICS:
        return "ms"
    if metric in RATIO_METRICS:
        return "%"
    if metric in ("throughput", "goodput"):
        return "/s"
    return ""


def _scale(metric: str, value: float) -> float:
    if metric in LATENCY_METRICS:
        return value * 1e3
    if metric in RATIO_METRICS:
        return value * 100
    return value


def fmt(metric: str, value: Any, signed: bool = False) -> str:
    """Format a value of ``metric`` for people (latencies in ms, ratios in %, no unit)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    v = _scale(metric, float(value))
    digits = 3 if metric in RATIO_METRICS else (2 if abs(v) < 100 else 1)
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def interval_text(metric: str, low: float, high: float, signed: bool = False) -> str:
    """``[low, high]`` formatted as :func:`fmt` does; ``-`` when either end is unknown."""
    if math.isnan(low) or math.isnan(high):
        return "-"
    return f"[{fmt(metric, low, signed)}, {fmt(metric, high, signed)}]"


def label(metric: str) -> str:
    """The metric's name with its unit: ``p99 (ms)``."""
    unit = unit_of(metric)
    return f"{metric} ({unit})" if unit else metric


def shown(df: pd.DataFrame, formatters: Mapping[str, Callable[[Any], str]] | None = None,
          float_format: Callable[[float], str] | None = None,
          na_rep: str = "-") -> pd.DataFrame:
    """A table as people see it: every cell a string, formatted as ``DataFrame.to_string``
    would (``formatters`` by column, else ``float_format`` for floats), missing values
    ``na_rep``. Kinds' ``format`` functions return this, so that the terminal (its
    ``to_string``) and the report (its HTML) show the same units and digits."""
    import pandas as pd

    out = {}
    for col in df.columns:
        f = (formatters or {}).get(col)
        values = []
        for v in df[col].tolist():
            if f is not None:
                values.append(str(f(v)))
            elif v is None or (isinstance(v, float) and v != v):
                values.append(na_rep)
            elif isinstance(v, float):
                values.append(str(float_format(v)) if float_format is not None else f"{v:.6g}")
            else:
                values.append(str(v))
        out[col] = values
    return pd.DataFrame(out, columns=list(df.columns))


def ranked_rows(block: Any, metric: str, baseline: str, confidence: float,
                terse: bool = False) -> list[dict[str, Any]]:
    """The rows people read of one (workload, metric) block of a comparison's ranked table:
    rank, variant, mean and interval, the paired difference from ``baseline`` and its
    interval, and whether it is significant. ``terse`` is the terminal's form (``*`` marks a
    significant difference, ``(unstable)`` a variant without a steady state); otherwise the
    report's (``yes``/``no``, ``(not steady)``, the mean's unit in its header)."""
    import pandas as pd

    level = f"{confidence:.0%}"
    rows = []
    for _, r in block.iterrows():
        is_base = r["variant"] == baseline
        rank = "-" if pd.isna(r["rank"]) else (r["rank"] if terse else int(r["rank"]))
        mark = "" if r["steady"] else (" (unstable)" if terse else " (not steady)")
        diff = "" if is_base else interval_text(metric, r["diff_low"], r["diff_high"], True)
        row = {"rank": rank, "variant": r["variant"] + mark,
               ("mean" if terse else label(metric).replace(metric, "mean", 1)):
                   fmt(metric, r["mean"]),
               f"{level} CI": interval_text(metric, r["low"], r["high"]),
               f"vs {baseline}": "baseline" if is_base else fmt(metric, r["diff"], True),
               (f"diff {level} CI" if terse else f"difference {level} CI"): diff}
        if terse:
            row[""] = "*" if r["significant"] else ""
        else:
            row["significant"] = "" if is_base else ("yes" if r["significant"] else "no")
        rows.append(row)
    return rows


def sweep_rows(intervals: Any, parameters: list[str]) -> list[dict[str, Any]]:
    """One row per (point, workload) of a sweep's ``intervals()``: the swept values, the name,
    each metric's mean ± half width (people's units, the unit in the header) and whether every
    replication of the point reached a steady state (``yes`` or ``NO``)."""
    keys = [*parameters, "name"]
    rows = []
    for key, block in intervals.groupby(keys, sort=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        for _, r in block.iterrows():
            m = r["metric"]
            half = float(r["half_width"])
            row[label(m)] = fmt(m, r["mean"]) + (f" ± {fmt(m, half)}" if math.isfinite(half)
                                                else "")
        row["steady"] = "yes" if block["steady"].all() else "NO"
        rows.append(row)
    return rows


def difference_sentences(table: Any, baseline: str, unstable: list[str],
                         confidence: float) -> list[str]:
    """One plain sentence per (workload, metric, variant) of a comparison's ranked table:
    ``"api: b beats a at p99 by 12.3 ms, 95% CI [...]"`` or ``"...: no significant
    difference"``. Variants without a steady state, and every variant when the baseline has
    none, are not compared (the caller says so)."""
    level = f"{confidence:.0%}"
    lines: list[str] = []
    if baseline in unstable:
        return lines
    for (name, key), block in table.groupby(["name", "metric"], sort=False):
        metric = str(key)
        for _, r in block.iterrows():
            if r["variant"] == baseline or not r["steady"]:
                continue
            ci = interval_text(metric, r["diff_low"], r["diff_high"], True)
            unit = unit_of(metric)
            if not r["significant"]:
                lines.append(f"{name}: {r['variant']} vs {baseline} at {metric}: "
                             f"{fmt(metric, r['diff'], True)} {unit}".rstrip()
                             + f", {level} CI {ci}: no significant difference")
                continue
            higher = r["diff"] > 0
            better = higher if metric in ("throughput", "goodput") else not higher
            word = "beats" if better else "trails"
            lines.append(f"{name}: {r['variant']} {word} {baseline} at {metric} by "
                         f"{fmt(metric, abs(r['diff']))} {unit}".rstrip() + f", {level} CI {ci}")
    return lines


__all__ = ["LATENCY_METRICS", "RATIO_METRICS", "difference_sentences", "fmt", "interval_text",
           "label", "ranked_rows", "shown", "sweep_rows",
           "unit_of"]
