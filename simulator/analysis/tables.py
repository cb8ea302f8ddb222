"""The derived tables that belong to no component kind: summary, client regions, breakers,
recovery after faults. Each is a :class:`~simulator.kind.DerivedTable` of :data:`CORE_DERIVED`,
computed from a run's tables over its measured window; the kinds declare their own."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.analysis.formatting import shown
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
    """Recovery time after each fault ends; ``outcome`` says what was measured (see
    :func:`simulator.analysis.diagnostics.fault_recovery`)."""
    from simulator.analysis.diagnostics import fault_recovery

    t0, t1 = results.window
    s = results.scenario
    return fault_recovery(results.requests, s.faults, t0, t1, run_end=s.duration + s.drain)


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
    body = df.to_string(index=False, na_rep="-", formatters=fmt)
    return "\n".join([body, *coverage_lines(summary)])


#: The statuses a workload row of the summary counts by ratio (ratio column, words).
_NAMED_FAILURES = (("timeout_ratio", "timed out"), ("rejection_ratio", "rejected"),
                   ("fallback_ratio", "fallback"))


def coverage(row: Any) -> dict[str, int]:
    """What a workload row of the summary counts: requests ``created`` in the measured window,
    ``ok`` (what the latency columns are over), ``timed out``, ``rejected``, ``fallback``,
    ``other failures`` (errors, short-circuits, conflicts...) and ``unfinished`` (in flight
    when the run ended).

    The counts come back exactly from the row's ratios (each is a count over ``completed``).
    """
    completed = int(row["completed"])

    def count(ratio: Any) -> int:
        return 0 if pd.isna(ratio) else round(float(ratio) * completed)

    named = {words: count(row[col]) for col, words in _NAMED_FAILURES}
    failed = count(row["error_ratio"])  # every completed request not ok, fallbacks excluded
    return {"created": int(row["count"]), "ok": completed - failed - named["fallback"],
            **named, "other failures": failed - named["timed out"] - named["rejected"],
            "unfinished": int(row["in_flight"])}


def coverage_lines(summary: pd.DataFrame) -> list[str]:
    """One sentence per workload of a summary: the share of its requests the latency columns
    cover (successful requests only) and what happened to the others, with counts and shares
    of the requests created in the window. The CLI and the HTML report print these same
    lines."""
    lines = []
    work = summary[summary["scope"] == "workload"]
    for row in work.to_dict("records"):
        c = coverage(row)
        created = max(c["created"], 1)
        rest = [f"{c[k]} {k} ({c[k] / created:.1%})" for k in
                ("timed out", "rejected", "fallback", "other failures", "unfinished") if c[k]]
        lines.append(f"{row['name']}: latency columns cover successful requests only, "
                     f"{c['ok']} of {c['created']} created ({c['ok'] / created:.1%})"
                     + (f"; not covered: {', '.join(rest)}" if rest else ""))
    if (summary["scope"] == "component").any():
        lines.append("components: latency columns cover successful hops only")
    return lines


def format_breakers(table: pd.DataFrame) -> pd.DataFrame:
    """Seconds to one decimal."""
    return shown(table, float_format="{:.1f}".format)


def format_recovery(table: pd.DataFrame) -> pd.DataFrame:
    """Times to 3 digits; the ``outcome`` in words (``recovered`` is left out: it says the
    same in a bool)."""
    return shown(table.drop(columns="recovered"), float_format="{:.3g}".format)


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
