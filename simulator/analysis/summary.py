"""Summary statistics of one run, from its tables.

The measured window is ``[warmup, duration)``: requests created (and hops arriving) in it count.
Latency percentiles are over successful (``ok``) requests; failures are counted in the ratios.
``error_ratio`` counts every completed request that did not succeed, fallbacks excluded (the
caller got an answer); ``fallback_ratio`` counts the degraded answers; ``goodput`` counts only
successes. ``attempts`` is the retry amplification: attempts per client request.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99, "p999": 0.999}
SUMMARY_COLUMNS = [
    "scope", "name", "count", "completed", "in_flight", "throughput", "goodput",
    "mean", "p50", "p95", "p99", "p999",
    "error_ratio", "rejection_ratio", "timeout_ratio", "fallback_ratio", "attempts",
    "utilisation",
]


def latency_stats(latency: np.ndarray) -> dict[str, float]:
    """Mean and percentiles (linear interpolation) of a latency sample; NaN when empty."""
    if len(latency) == 0:
        return {"mean": np.nan, **dict.fromkeys(QUANTILES, np.nan)}
    qs = np.quantile(latency, list(QUANTILES.values()))
    return {"mean": float(latency.mean()), **dict(zip(QUANTILES, map(float, qs), strict=True))}


def _row(scope: str, name: str, status: pd.Series, latency: np.ndarray, seconds: float,
         attempts: float = np.nan) -> dict[str, object]:
    count = len(status)
    in_flight = int((status == "in_flight").sum())
    completed = count - in_flight
    ok = status == "ok"
    n_ok = int(ok.sum())
    n_fallback = int((status == "fallback").sum())

    def ratio(label: str) -> float:
        return float((status == label).sum() / completed) if completed else np.nan

    return {
        "scope": scope,
        "name": name,
        "count": count,
        "completed": completed,
        "in_flight": in_flight,
        "throughput": completed / seconds,
        "goodput": n_ok / seconds,
        **latency_stats(latency[ok.to_numpy()]),
        "error_ratio": (completed - n_ok - n_fallback) / completed if completed else np.nan,
        "rejection_ratio": ratio("rejected"),
        "timeout_ratio": ratio("timeout"),
        "fallback_ratio": ratio("fallback"),
        "attempts": attempts,
        "utilisation": np.nan,
    }


def summarize(
    requests: pd.DataFrame,
    spans: pd.DataFrame,
    samples: pd.DataFrame,
    warmup: float,
    until: float,
) -> pd.DataFrame:
    """Return one row per workload and per component that records spans.

    Parameters
    ----------
    requests, spans, samples
        Tables of one run.
    warmup, until
        The measured window ``[warmup, until)`` (``until`` is the scenario's duration).
    """
    seconds = until - warmup
    rows = []
    req = requests[(requests["start"] >= warmup) & (requests["start"] < until)]
    for name, grp in req.groupby("workload", observed=False, sort=False):
        rows.append(_row("workload", str(name), grp["status"], grp["latency"].to_numpy(),
                         seconds, float(grp["attempts"].mean()) if len(grp) else np.nan))
    sp = spans[(spans["arrival"] >= warmup) & (spans["arrival"] < until)]
    util = utilisation(samples, warmup, until)
    for name, grp in sp.groupby("component", observed=True, sort=True):
        row = _row("component", str(name), grp["status"],
                   (grp["end"] - grp["arrival"]).to_numpy(), seconds)
        row["utilisation"] = util.get(str(name), np.nan)
        rows.append(row)
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def window_delta(samples: pd.DataFrame, metric: str, t0: float, t1: float) -> pd.DataFrame:
    """Change of a cumulative gauge between the samples nearest to ``[t0, t1]`` inside it.

    Returns one row per (component, instance, label) with ``delta`` and the window actually
    covered (``t0``, ``t1``).
    """
    s = samples[(samples["metric"] == metric) & (samples["time"] >= t0 - 1e-9)
                & (samples["time"] <= t1 + 1e-9)]
    if s.empty:
        return pd.DataFrame(columns=["component", "instance", "label", "delta", "t0", "t1"])
    g = s.sort_values("time").groupby(["component", "instance", "label"], observed=True)
    first, last = g.first(), g.last()
    out = pd.DataFrame({
        "delta": last["value"] - first["value"],
        "t0": first["time"],
        "t1": last["time"],
    })
    return out.reset_index()


def utilisation(samples: pd.DataFrame, t0: float, t1: float) -> dict[str, float]:
    """Busy fraction of the workers of each component over ``[t0, t1]`` (exact, from integrals)."""
    busy = window_delta(samples, "busy_time_total", t0, t1)
    if busy.empty:
        return {}
    workers = samples[samples["metric"] == "workers"].groupby(
        ["component", "instance"], observed=True)["value"].last()
    busy["capacity"] = [
        workers.get((c, i), np.nan) * (b - a)
        for c, i, a, b in zip(busy["component"], busy["instance"], busy["t0"], busy["t1"],
                              strict=True)
    ]
    per = busy.groupby("component", observed=True)[["delta", "capacity"]].sum()
    return {str(k): float(v) for k, v in (per["delta"] / per["capacity"]).items()}


def backend_share(samples: pd.DataFrame, t0: float, t1: float) -> pd.DataFrame:
    """Requests each balancer sent to each backend over ``[t0, t1]``, with shares."""
    routed = window_delta(samples, "routed_total", t0, t1)
    if routed.empty:
        return pd.DataFrame(columns=["balancer", "backend", "routed", "share"])
    per = routed.groupby(["component", "label"], observed=True, sort=False)["delta"].sum()
    out = per.reset_index().rename(
        columns={"component": "balancer", "label": "backend", "delta": "routed"})
    out["routed"] = out["routed"].astype("int64")
    out["share"] = out["routed"] / out.groupby("balancer", observed=True)["routed"].transform(
        "sum")
    return out
