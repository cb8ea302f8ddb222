"""What clients in each region experienced: latency, success and geo failovers, from the tables.

Rows come per window and client region: the measured window (``window = "measured"``), then,
for every region fault of the scenario (outage or partition), the part of the measured window
it covers (``window = "during region_outage eu-west"``). A request belongs to a window by its
creation time. Latencies (seconds) are over successful requests; ``failovers`` counts the
balancers' ``failover`` events for that client region in the window (a geo balancer records
one when it moves a client region's traffic away from a region that lost every backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from simulator.analysis.formatting import shown
from simulator.analysis.summary import latency_stats

REGION_COLUMNS = ["window", "region", "requests", "ok_ratio", "mean", "p50", "p95", "p99",
                  "failovers"]
REGION_FAULTS = ("region_outage", "region_partition")


def _label(fault: Any) -> str:
    what = getattr(fault, "region", None) or " | ".join(getattr(fault, "between", ()))
    return f"{fault.kind} {what}"


def region_summary(requests: pd.DataFrame, events: pd.DataFrame, faults: Sequence[Any],
                   t0: float, t1: float) -> pd.DataFrame:
    """Per window and client region: requests, success ratio, latency of successful requests,
    failovers. Empty when no request has a client region.

    Parameters
    ----------
    requests, events
        The run's tables.
    faults
        The scenario's faults (region faults add windows).
    t0, t1
        The measured window.
    """
    if "region" not in requests or not (requests["region"].astype(str) != "").any():
        return pd.DataFrame(columns=REGION_COLUMNS)
    windows = [("measured", t0, t1)]
    for fault in faults:
        if fault.kind in REGION_FAULTS:
            a, b = max(t0, fault.at), min(t1, fault.end)
            if b > a:
                windows.append((f"during {_label(fault)}", a, b))
    start = requests["start"].to_numpy()
    regions = requests["region"].astype(str).to_numpy()
    ok = (requests["status"] == "ok").to_numpy()
    latency = requests["latency"].to_numpy()
    failover = events[events["event"] == "failover"]
    fo_time = failover["time"].to_numpy()
    fo_region = failover["detail"].astype(str).str.split(" clients:").str[0].to_numpy()
    names = [r for r in requests["region"].cat.categories if r != ""]
    rows = []
    for label, a, b in windows:
        inside = (start >= a) & (start < b)
        for region in names:
            sel = inside & (regions == region)
            n = int(sel.sum())
            if n == 0:
                continue
            rows.append({
                "window": label, "region": region, "requests": n,
                "ok_ratio": float(ok[sel].mean()),
                **{k: v for k, v in latency_stats(latency[sel & ok]).items() if k != "p999"},
                "failovers": int(((fo_time >= a) & (fo_time < b) & (fo_region == region)).sum()),
            })
    return pd.DataFrame(rows, columns=REGION_COLUMNS) if rows else pd.DataFrame(
        columns=REGION_COLUMNS)


def format_region_summary(table: pd.DataFrame) -> pd.DataFrame:
    """The table as ``simulator run`` and the report show it (milliseconds, percentages)."""
    out = table.copy()
    for col in ("mean", "p50", "p95", "p99"):
        out[col] = (out[col] * 1000).map(lambda v: "-" if np.isnan(v) else f"{v:.1f}")
    out = out.rename(columns={c: f"{c}_ms" for c in ("mean", "p50", "p95", "p99")})
    out["ok_ratio"] = out["ok_ratio"].map("{:.2%}".format)
    return shown(out)
