"""Diagnostics of failure behaviour: breaker time in each state, recovery after faults.

Computed from the tables of a run; nothing here simulates.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

BREAKER_COLUMNS = ["component", "instance", "target", "closed_s", "open_s", "half_open_s",
                   "openings", "transitions_per_minute"]
RECOVERY_COLUMNS = ["fault", "start", "end", "baseline_ok_ratio", "baseline_p99",
                    "recovered_at", "recovery_time", "recovered", "outcome"]

#: The ``outcome`` of a fault in :func:`fault_recovery`.
RECOVERED, NOT_RECOVERED = "recovered", "did not recover"
RUN_ENDED = "run ended during the fault"
ARRIVALS_ENDED = "arrivals ended during the fault"
AFTER_ARRIVALS = "starts after arrivals end (not measured)"
NO_BASELINE = "no traffic before the fault (no baseline)"


def breaker_summary(events: pd.DataFrame, t0: float, t1: float) -> pd.DataFrame:
    """Seconds each breaker spent in each state over ``[t0, t1]``, and how often it opened.

    A breaker that never changed state is not listed (it was closed throughout).
    """
    ev = events[events["event"] == "breaker"]
    rows = []
    for (component, instance), grp in ev.groupby(["component", "instance"], observed=True):
        parts = grp["detail"].str.split(": ", n=1, expand=True)
        for target, tg in grp.assign(target=parts[0], change=parts[1]).groupby("target"):
            times = tg["time"].to_numpy()
            states = [c.split("->")[1] for c in tg["change"]]
            spent = {"closed": 0.0, "open": 0.0, "half_open": 0.0}
            edges = [0.0, *times.tolist(), np.inf]
            names = ["closed", *states]
            for state, a, b in zip(names, edges[:-1], edges[1:], strict=True):
                lo, hi = max(a, t0), min(b, t1)
                if hi > lo:
                    spent[state] += hi - lo
            inside = (times >= t0) & (times <= t1)
            rows.append({
                "component": component, "instance": instance, "target": target,
                "closed_s": spent["closed"], "open_s": spent["open"],
                "half_open_s": spent["half_open"],
                "openings": int(sum(s == "open" for s, i in zip(states, inside, strict=True)
                                    if i)),
                "transitions_per_minute": float(inside.sum() / (t1 - t0) * 60),
            })
    return pd.DataFrame(rows, columns=BREAKER_COLUMNS)


def fault_recovery(
    requests: pd.DataFrame, faults: Sequence[Any], warmup: float, until: float,
    bin_width: float = 1.0, hold: float = 5.0, run_end: float = np.inf,
) -> pd.DataFrame:
    """How long the system took to recover after each fault ended.

    The baseline is the traffic created between the warm-up and the fault's start: its success
    ratio and its p99 over successful requests. After the fault ends, requests are binned by
    creation time (``bin_width`` seconds); a bin is healthy when its success ratio is at least
    95% of the baseline's and its p99 at most twice the baseline's. The system has recovered at
    the start of the first run of healthy bins that lasts ``hold`` seconds (or to the end of
    the run).

    Parameters
    ----------
    requests
        The run's requests table.
    faults
        The scenario's faults.
    warmup, until
        The measured window, seconds; ``until`` is the end of arrivals (the scenario's
        ``duration``): no request is created after it, so recovery is measured before it.
    bin_width, hold
        Seconds.
    run_end
        The end of the run (``duration`` + ``drain``), seconds.

    Returns
    -------
    pandas.DataFrame
        One row per fault. ``outcome`` says what was measured: ``recovered``; ``did not
        recover`` (it ended before ``until`` and the system stayed degraded to the end);
        ``run ended during the fault`` (it ends at or after ``run_end``, or never) or
        ``arrivals ended during the fault`` (it ends in the drain): no request arrives after
        it, so nothing can be said about recovery; ``starts after arrivals end (not
        measured)`` (it acts on the drain only); ``no traffic before the fault (no
        baseline)``. ``recovered`` is True only for the first.
    """
    rows = []
    start_all = requests["start"].to_numpy()
    ok_all = (requests["status"] == "ok").to_numpy()
    lat_all = requests["latency"].to_numpy()
    for fault in faults:
        end = fault.end
        label = fault_label(fault)
        base_from = warmup if warmup < fault.at else 0.0
        base = (start_all >= base_from) & (start_all < fault.at)
        row: dict[str, Any] = {"fault": label, "start": fault.at, "end": end,
                               "baseline_ok_ratio": np.nan, "baseline_p99": np.nan,
                               "recovered_at": np.nan, "recovery_time": np.nan,
                               "recovered": False, "outcome": NOT_RECOVERED}
        if fault.at >= until:
            row["outcome"] = AFTER_ARRIVALS
        elif not base.any():
            row["outcome"] = NO_BASELINE
        elif end >= until:
            row["outcome"] = RUN_ENDED if end >= run_end else ARRIVALS_ENDED
        if row["outcome"] != NOT_RECOVERED:
            rows.append(row)
            continue
        ok_ratio = ok_all[base].mean()
        base_lat = lat_all[base & ok_all]
        p99 = float(np.quantile(base_lat, 0.99)) if len(base_lat) else np.inf
        row["baseline_ok_ratio"], row["baseline_p99"] = ok_ratio, p99
        edges = np.arange(end, until + 1e-9, bin_width)
        healthy = []
        for a, b in itertools.pairwise(edges):
            sel = (start_all >= a) & (start_all < b)
            if not sel.any():
                healthy.append(True)
                continue
            good = sel & ok_all
            bin_p99 = float(np.quantile(lat_all[good], 0.99)) if good.any() else np.inf
            healthy.append(ok_all[sel].mean() >= 0.95 * ok_ratio and bin_p99 <= 2 * p99)
        need = max(1, round(hold / bin_width))
        for i in range(len(healthy)):
            window = healthy[i:i + need]
            if all(window) and (len(window) == need or i + len(window) == len(healthy)):
                row["recovered_at"] = float(edges[i])
                row["recovery_time"] = float(edges[i] - end)
                row["recovered"] = True
                row["outcome"] = RECOVERED
                break
        rows.append(row)
    return pd.DataFrame(rows, columns=RECOVERY_COLUMNS)


def fault_label(fault: Any) -> str:
    """A short name for a fault: its kind and what it hits (``crash api[2]``)."""
    what = (getattr(fault, "target", None) or getattr(fault, "workload", None)
            or getattr(fault, "region", None))
    if what is None:
        what = " | ".join(getattr(fault, "between", ()))
    return f"{fault.kind} {what}"
