"""Summary statistics of one run, from its tables.

The measured window is ``[warmup, duration)``: requests created (and hops arriving) in it count.
Latency percentiles are over successful (``ok``) requests; failures are counted in the ratios.
``in_flight`` counts the requests still unfinished when the run ended (the drain included) and
``unfinished_ratio`` their share of ``count``: the requests no latency figure covers.
``error_ratio`` counts every completed request that did not succeed, fallbacks excluded (the
caller got an answer); ``fallback_ratio`` counts the degraded answers; ``goodput`` counts only
successes. ``attempts`` is the retry amplification: attempts per client request.
``stale_ratio`` (workloads) is the fraction of successful requests that read a version older
than the committed one somewhere on their path (``requests.stale``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.metrics.schema import QUANTILES, SUMMARY_COLUMNS


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
        "unfinished_ratio": in_flight / count if count else np.nan,
        "throughput": completed / seconds,
        "goodput": n_ok / seconds,
        **latency_stats(latency[ok.to_numpy()]),
        "error_ratio": (completed - n_ok - n_fallback) / completed if completed else np.nan,
        "rejection_ratio": ratio("rejected"),
        "timeout_ratio": ratio("timeout"),
        "fallback_ratio": ratio("fallback"),
        "attempts": attempts,
        "utilisation": np.nan,
        "stale_ratio": np.nan,
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
        row = _row("workload", str(name), grp["status"], grp["latency"].to_numpy(),
                   seconds, float(grp["attempts"].mean()) if len(grp) else np.nan)
        if "stale" in grp:
            ok = (grp["status"] == "ok").to_numpy()
            row["stale_ratio"] = float(grp["stale"].to_numpy()[ok].mean()) if ok.any() \
                else np.nan
        rows.append(row)
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


QUEUE_SUMMARY_COLUMNS = [
    "queue", "published", "rejected", "acked", "dead_lettered", "queued", "in_flight",
    "redelivered",
    "e2e_mean", "e2e_p50", "e2e_p95", "e2e_p99", "depth_mean", "depth_max", "delayed_mean",
    "delayed_max", "oldest_age_max", "lag_max", "lag_end",
]


def queue_summary(messages: pd.DataFrame, samples: pd.DataFrame, warmup: float, until: float
                  ) -> pd.DataFrame:
    """One row per queue and per topic subscription (``topic.subscription``).

    Parameters
    ----------
    messages, samples
        Tables of one run.
    warmup, until
        The measured window ``[warmup, until)``: messages enqueued in it are counted, with
        their status at the end of the run; gauges sampled in it give the depth and age figures.

    Returns
    -------
    pandas.DataFrame
        ``published`` (accepted) messages, and how many are in each ``messages.status`` at
        the end of the run, under the same names: ``rejected`` (refused by a full queue: not
        published), ``acked``, ``dead_lettered``, ``queued`` (waiting, or delayed before a
        retry) and ``in_flight`` (received, not yet acknowledged), so ``published = acked +
        dead_lettered + queued + in_flight``;
        ``redelivered`` (deliveries after the first); end-to-end time from enqueue to
        acknowledgement (``e2e_*``, seconds, over acknowledged messages); ``depth_mean`` and
        ``depth_max`` (visible messages waiting to be received), ``delayed_mean`` and
        ``delayed_max`` (messages waiting out a retry backoff: not visible, so not in the
        depth), ``oldest_age_max`` (seconds) and ``lag_max`` (published, not yet acknowledged
        or dead-lettered: depth + delayed + in flight) over the window's samples, and
        ``lag_end`` at the end of the run.
    """
    col = messages["queue"]
    queues = ([str(c) for c in col.cat.categories] if isinstance(col.dtype, pd.CategoricalDtype)
              else list(dict.fromkeys(col.astype(str))))
    if not queues:
        return pd.DataFrame(columns=QUEUE_SUMMARY_COLUMNS)
    m = messages[(messages["enqueued"] >= warmup) & (messages["enqueued"] < until)]
    gauges = samples[samples["metric"].isin(["depth", "delayed", "oldest_age", "lag"])]
    if not gauges.empty:
        label = gauges["label"].astype(str)
        gauges = gauges.assign(queue=np.where(label == "", gauges["component"].astype(str),
                                              gauges["component"].astype(str) + "." + label))
    rows = []
    for name in queues:
        q = m[m["queue"].astype(str) == name]
        status = q["status"].astype(str)
        accepted = q[status != "rejected"]
        acked = q[status == "acked"]
        e2e = (acked["finished"] - acked["enqueued"]).to_numpy()
        stats = latency_stats(e2e)
        row: dict[str, object] = {
            "queue": str(name),
            "published": len(accepted),
            "rejected": int((status == "rejected").sum()),
            "acked": len(acked),
            "dead_lettered": int((status == "dead_lettered").sum()),
            "queued": int((status == "queued").sum()),
            "in_flight": int((status == "in_flight").sum()),
            "redelivered": int((accepted["attempts"].astype("int64") - 1).clip(lower=0).sum()),
            "e2e_mean": stats["mean"], "e2e_p50": stats["p50"], "e2e_p95": stats["p95"],
            "e2e_p99": stats["p99"],
        }
        g = gauges[gauges["queue"] == name] if not gauges.empty else gauges
        inside = g[(g["time"] >= warmup - 1e-9) & (g["time"] <= until + 1e-9)]
        for metric, column, how in (("depth", "depth_mean", "mean"),
                                    ("depth", "depth_max", "max"),
                                    ("delayed", "delayed_mean", "mean"),
                                    ("delayed", "delayed_max", "max"),
                                    ("oldest_age", "oldest_age_max", "max"),
                                    ("lag", "lag_max", "max")):
            v = inside.loc[inside["metric"] == metric, "value"]
            row[column] = float(v.agg(how)) if len(v) else np.nan
        lag = g[g["metric"] == "lag"].sort_values("time")["value"]
        row["lag_end"] = float(lag.iloc[-1]) if len(lag) else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=QUEUE_SUMMARY_COLUMNS)
