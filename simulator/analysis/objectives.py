"""Whether a run met its scenario's SLO (``slo:``), per workload and condition.

One run gives point estimates: the table says whether each workload's summary figure meets
each condition, not with what confidence (``simulator replicate`` gives intervals, and
``simulator capacity`` decides an SLO with one-sided confidence bounds). Latency conditions
read the summary's latencies, which cover successful requests only: so that survivors are
never reported as the whole, each row also carries the share of the workload's completed
requests that failed, and a latency condition met while requests failed says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

from simulator.analysis.formatting import fmt, unit_of
from simulator.slo import LATENCY_METRICS

if TYPE_CHECKING:
    from simulator.results import Results

COLUMNS = ["workload", "condition", "metric", "value", "threshold", "met", "failed_ratio"]


def slo_table(results: Results) -> pd.DataFrame:
    """One row per (workload, condition of the scenario's SLO): the run's ``value`` of the
    metric (summary units: seconds, fractions, per second), the ``threshold``, ``met``, and
    ``failed_ratio`` (completed requests that did not succeed). Empty without an SLO."""
    objectives = results.scenario.objectives()
    summary = results.summary()
    work = summary[summary["scope"] == "workload"]
    rows = []
    for _, w in work.iterrows():
        failed = w["error_ratio"]  # every completed request that did not succeed
        for o in objectives:
            value = float(w[o.metric]) if o.metric in w else float("nan")
            rows.append({"workload": w["name"], "condition": o.text, "metric": o.metric,
                         "value": value, "threshold": o.threshold, "met": o.met_by(value),
                         "failed_ratio": float(failed) if failed == failed else 0.0})
    return pd.DataFrame(rows, columns=COLUMNS)


def slo_lines(table: pd.DataFrame, steady: bool = True) -> list[str]:
    """Plain sentences on a :func:`slo_table`: one per workload, and the caveats."""
    lines = []
    for name, block in table.groupby("workload", sort=False):
        parts = []
        for _, r in block.iterrows():
            unit = unit_of(r["metric"])
            shown = f"{fmt(r['metric'], r['value'])} {unit}".rstrip()
            parts.append(f"{r['condition']}: {shown}, {'met' if r['met'] else 'MISSED'}")
        verdict = "met" if block["met"].all() else "MISSED"
        line = f"SLO {verdict} by {name}: " + "; ".join(parts)
        failed = float(block["failed_ratio"].iloc[0])
        latency_met = block[block["metric"].isin(LATENCY_METRICS)]["met"]
        if failed > 0 and len(latency_met) and latency_met.any():
            line += (f" (latencies over successful requests only: {failed:.2%} of completed "
                     "requests failed)")
        lines.append(line)
    if lines:
        lines.append("(one run, point estimates: simulator replicate gives intervals, "
                     "simulator capacity decides an SLO with confidence)"
                     + ("" if steady else "; this run did not reach a steady state"))
    return lines


__all__ = ["COLUMNS", "slo_lines", "slo_table"]
