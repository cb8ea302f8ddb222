"""CDN figures from the tables: edge hit ratio, origin offload, and the latency users see.

Computed from what ``kind: cdn`` edges record (see :mod:`simulator.components.cdn`): their
``edge_region`` events say where each edge is, their cumulative gauges give the counts over
the measured window, and their spans joined with the ``requests`` table give the end-to-end
latency of the requests each edge served. Nothing here simulates.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from simulator.analysis.summary import window_delta

CDN_COLUMNS = ["component", "edge", "region", "requests", "hits", "misses", "hit_ratio",
               "coalesced", "origin_fetches", "origin_offload", "bypassed", "failed",
               "mean_entries", "latency_mean", "latency_p50", "latency_p95", "latency_p99"]
CDN_LATENCY_COLUMNS = ["component", "region", "requests", "ok", "latency_mean", "latency_p50",
                       "latency_p95", "latency_p99"]
_COUNTERS = {"requests": "edge_requests_total", "hits": "hits_total",
             "misses": "misses_total", "coalesced": "coalesced_total",
             "loads": "loads_total", "bypassed": "bypassed_total", "failed": "failed_total"}


def edge_regions(events: pd.DataFrame) -> pd.DataFrame:
    """Where each CDN edge is: one row per edge (``component``, ``edge``, ``region``), in the
    order the edges were declared."""
    ev = events[events["event"] == "edge_region"]
    return pd.DataFrame({
        "component": ev["component"].astype(str).to_numpy(),
        "edge": ev["instance"].astype(str).to_numpy(),
        "region": [str(d).partition("region=")[2] for d in ev["detail"]],
    })


def _served(requests: pd.DataFrame, spans: pd.DataFrame, edges: pd.DataFrame, t0: float,
            t1: float) -> pd.DataFrame:
    """Requests created in ``[t0, t1)`` that reached a CDN, with the edge that first served
    each (``component``, ``edge``, ``edge_region``)."""
    if spans.empty or edges.empty:
        return pd.DataFrame(columns=[*requests.columns, "component", "edge", "edge_region"])
    sp = spans[spans["instance"].astype(str).isin(edges["edge"])]
    sp = sp.sort_values("arrival", kind="stable").drop_duplicates("request_id")
    where = edges.set_index("edge")
    inst = sp["instance"].astype(str)
    first = pd.DataFrame({
        "request_id": sp["request_id"].to_numpy(),
        "component": inst.map(where["component"]).to_numpy(),
        "edge": inst.to_numpy(),
        "edge_region": inst.map(where["region"]).to_numpy(),
    })
    req = requests[(requests["start"] >= t0) & (requests["start"] < t1)]
    return req.merge(first, on="request_id", how="inner")


def _latency(frame: pd.DataFrame) -> dict[str, float]:
    ok = frame.loc[frame["status"].astype(str) == "ok", "latency"].to_numpy(dtype=float)
    if not len(ok):
        return {"latency_mean": np.nan, "latency_p50": np.nan, "latency_p95": np.nan,
                "latency_p99": np.nan}
    q = np.quantile(ok, [0.5, 0.95, 0.99])
    return {"latency_mean": float(ok.mean()), "latency_p50": float(q[0]),
            "latency_p95": float(q[1]), "latency_p99": float(q[2])}


def cdn_summary(samples: pd.DataFrame, events: pd.DataFrame, requests: pd.DataFrame,
                spans: pd.DataFrame, t0: float, t1: float) -> pd.DataFrame:
    """Per CDN edge over ``[t0, t1]``: hit ratio, origin offload and user latency.

    Parameters
    ----------
    samples, events, requests, spans
        Tables of a run (without spans the latency columns are NaN).
    t0, t1
        The window, seconds (the measured window: warm-up to duration).

    Returns
    -------
    pandas.DataFrame
        One row per edge, then one row per CDN with ``edge`` ``all`` (its edges summed).
        Counts are changes of the edges' cumulative gauges between the samples nearest the
        window's edges: ``requests`` (routed to the edge: counted as they reach it, or as
        they are sent to the origin instead), ``hits``, ``misses`` (coalesced
        ones included), ``hit_ratio`` = hits / (hits + misses), ``coalesced``,
        ``origin_fetches`` (fetches for misses + requests sent straight to the origin),
        ``origin_offload`` = 1 - origin_fetches / requests (the share of requests the origin
        did not see), ``bypassed``, ``failed`` (requests the edge failed, e.g. while crashed),
        ``mean_entries`` (time-average assets held). Latency (seconds, successful requests
        created in the window, end to end as the user saw it): ``latency_mean``, ``_p50``,
        ``_p95``, ``_p99`` of the requests each edge served.
    """
    edges = edge_regions(events)
    if edges.empty:
        return pd.DataFrame(columns=CDN_COLUMNS)
    mine = samples[samples["instance"].astype(str).isin(edges["edge"])]
    totals = {}
    for col, metric in _COUNTERS.items():
        d = window_delta(mine, metric, t0, t1)
        totals[col] = dict(zip(d["instance"].astype(str), d["delta"].astype(float),
                               strict=True))
    area = window_delta(mine, "entries_time_total", t0, t1)
    span = (area["t1"] - area["t0"]).where(area["t1"] > area["t0"])
    mean_entries = dict(zip(area["instance"].astype(str), area["delta"] / span, strict=True))
    served = _served(requests, spans, edges, t0, t1)
    rows: list[dict[str, object]] = []

    def row(component: str, edge: str, region: str, names: list[str],
            frame: pd.DataFrame) -> dict[str, object]:
        got = {col: sum(totals[col].get(n, 0.0) for n in names) for col in _COUNTERS}
        reads = got["hits"] + got["misses"]
        fetches = got["loads"] + got["bypassed"]
        entries = [mean_entries.get(n, np.nan) for n in names]
        return {
            "component": component, "edge": edge, "region": region,
            "requests": int(got["requests"]), "hits": int(got["hits"]),
            "misses": int(got["misses"]), "hit_ratio": got["hits"] / reads if reads else np.nan,
            "coalesced": int(got["coalesced"]), "origin_fetches": int(fetches),
            "origin_offload": 1.0 - fetches / got["requests"] if got["requests"] else np.nan,
            "bypassed": int(got["bypassed"]), "failed": int(got["failed"]),
            "mean_entries": float(np.sum(entries)) if entries else np.nan,
            **_latency(frame),
        }

    for component, group in edges.groupby("component", sort=False):
        names = list(group["edge"])
        for edge, region in zip(group["edge"], group["region"], strict=True):
            rows.append(row(str(component), edge, region, [edge],
                            served[served["edge"] == edge]))
        rows.append(row(str(component), "all", "", names,
                        served[served["component"] == component]))
    return pd.DataFrame(rows, columns=CDN_COLUMNS)


def cdn_latency(events: pd.DataFrame, requests: pd.DataFrame, spans: pd.DataFrame, t0: float,
                t1: float) -> pd.DataFrame:
    """Latency users of each region saw through each CDN, over requests created in
    ``[t0, t1)``.

    The client's region is the request's (the ``region`` column of the requests table, in a
    scenario with regions); for requests without one, the region of the edge that served
    them. Returns one row per (CDN, region): ``requests``, ``ok`` (successful), and the
    mean and percentiles of the successful requests' end-to-end latency, seconds. Empty
    without CDN edges or spans.
    """
    edges = edge_regions(events)
    served = _served(requests, spans, edges, t0, t1)
    if served.empty:
        return pd.DataFrame(columns=CDN_LATENCY_COLUMNS)
    region = served["edge_region"].astype(str)
    if "region" in served.columns:
        own = served["region"].astype(object)
        known = own.notna() & (own.astype(str) != "")
        region = region.where(~known, own.astype(str))
    served = served.assign(client_region=region)
    rows = []
    for (component, reg), grp in served.groupby(["component", "client_region"], sort=True):
        rows.append({"component": component, "region": reg, "requests": len(grp),
                     "ok": int((grp["status"].astype(str) == "ok").sum()), **_latency(grp)})
    return pd.DataFrame(rows, columns=CDN_LATENCY_COLUMNS)
