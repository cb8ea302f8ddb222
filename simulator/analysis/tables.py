"""The derived tables that belong to no component kind: summary, client regions, breakers,
recovery after faults. Each is a :class:`~simulator.kind.DerivedTable` of :data:`CORE_DERIVED`,
computed from a run's tables over its measured window; the kinds declare their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.kind import DerivedTable

if TYPE_CHECKING:
    from simulator.results import Results


def summary(results: Results) -> pd.DataFrame:
    """Per workload and per component: counts, throughput, latency percentiles, ratios."""
    return results.summary()


def region_summary(results: Results) -> pd.DataFrame:
    """Per client region: requests, success ratio, latency percentiles (seconds) and geo
    failovers, over the measured window and during each region fault (see
    :func:`simulator.analysis.regions.region_summary`); empty without client regions."""
    from simulator.analysis.regions import region_summary as regions

    t0, t1 = results.window
    return regions(results.requests, results.events, results.scenario.faults, t0, t1)


def has_regions(results: Results) -> bool:
    """Whether the scenario has a regions block."""
    return results.scenario.regions is not None


def breakers(results: Results) -> pd.DataFrame:
    """Time each circuit breaker spent closed, open and half-open, and its openings."""
    from simulator.analysis.diagnostics import breaker_summary

    t0, t1 = results.window
    return breaker_summary(results.events, t0, t1)


def recovery(results: Results) -> pd.DataFrame:
    """Recovery time after each fault ends (``recovered`` False: it stayed degraded)."""
    from simulator.analysis.diagnostics import fault_recovery

    t0, t1 = results.window
    return fault_recovery(results.requests, results.scenario.faults, t0, t1)


def findings(results: Results) -> pd.DataFrame:
    """Whether each instance, queue and workload reached a steady state over the measured
    window, with the evidence (see :mod:`simulator.analysis.stability`)."""
    from simulator.analysis.stability import steady_state

    return steady_state(results)


def format_findings(table: pd.DataFrame) -> str:
    """The checks that did not pass (every check is in the written table)."""
    from simulator.analysis.stability import format_findings as text

    return text(table)


def has_faults(results: Results) -> bool:
    """Whether the scenario has faults on its timeline."""
    return bool(results.scenario.faults)


def format_summary(summary: pd.DataFrame) -> str:
    """Render a summary table for a terminal: latencies in ms, ratios in %.

    Columns that say nothing in this run (a ratio that is zero everywhere, attempts that are
    all 1) are left out of the printout; the tables written to disk keep every column.
    """
    df = summary.copy()
    for col in ("in_flight", "unfinished_ratio", "rejection_ratio", "timeout_ratio",
                "fallback_ratio", "stale_ratio"):
        if col in df and df[col].fillna(0).eq(0).all():
            df = df.drop(columns=col)
    if df["attempts"].fillna(1).eq(1).all():
        df = df.drop(columns="attempts")
    for col in ("mean", "p50", "p95", "p99", "p999"):
        df[col] = df[col] * 1e3
    df = df.rename(columns={c: f"{c}_ms" for c in ("mean", "p50", "p95", "p99", "p999")})
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in ("unfinished_ratio", "error_ratio", "rejection_ratio", "timeout_ratio",
              "fallback_ratio", "utilisation", "stale_ratio"):
        fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.2%}"
    fmt["attempts"] = lambda v: "-" if pd.isna(v) else f"{v:.2f}"
    for c in ("throughput", "goodput"):
        fmt[c] = "{:.1f}".format
    for c in ("mean", "p50", "p95", "p99", "p999"):
        fmt[f"{c}_ms"] = lambda v: "-" if pd.isna(v) else f"{v:.3f}"
    return df.to_string(index=False, na_rep="-", formatters=fmt)


def format_breakers(table: pd.DataFrame) -> str:
    """Seconds to one decimal."""
    return table.to_string(index=False, float_format="{:.1f}".format)


def format_recovery(table: pd.DataFrame) -> str:
    """Times to 3 digits; ``recovered`` in words."""
    said: dict[str, Callable[[Any], str]] = {
        "recovered": lambda v: "yes" if v else "did not recover"}
    return table.to_string(index=False, float_format="{:.3g}".format, formatters=said)


_HERE = "simulator.analysis.tables"
CORE_DERIVED = (
    DerivedTable("summary", f"{_HERE}:summary", "", format=f"{_HERE}:format_summary",
                 always=True),
    DerivedTable("region_summary", f"{_HERE}:region_summary",
                 "client regions (latency of successful requests; failovers by geo balancers)",
                 format="simulator.analysis.regions:format_region_summary",
                 applies=f"{_HERE}:has_regions"),
    DerivedTable("findings", f"{_HERE}:findings",
                 "steady state over the measured window (the terminal lists the checks that "
                 "did not pass)", format=f"{_HERE}:format_findings", always=True,
                 section="diagnostics"),
    DerivedTable("breakers", f"{_HERE}:breakers",
                 "circuit breakers (seconds in each state over the measured window)",
                 format=f"{_HERE}:format_breakers", section="diagnostics"),
    DerivedTable("recovery", f"{_HERE}:recovery",
                 "faults and recovery (recovery_time after the fault ends, seconds)",
                 format=f"{_HERE}:format_recovery", applies=f"{_HERE}:has_faults",
                 section="diagnostics"),
)
