"""Derived tables of ``kind: cdn``: per edge (hit ratio, origin offload, user latency) and
by client region (computed by :mod:`simulator.analysis.cdn`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.analysis.formatting import shown

if TYPE_CHECKING:
    from simulator.results import Results


def cdn_summary(results: Results) -> pd.DataFrame:
    """Per CDN edge (and per CDN, edge ``all``): requests, hit ratio, origin fetches and
    offload, user latency over the measured window (see
    :func:`simulator.analysis.cdn.cdn_summary`); empty without a CDN."""
    from simulator.analysis.cdn import cdn_summary as summarise

    t0, t1 = results.window
    return summarise(results.samples, results.events, results.requests, results.spans, t0, t1)


def cdn_latency(results: Results) -> pd.DataFrame:
    """Latency users of each region saw through each CDN (see
    :func:`simulator.analysis.cdn.cdn_latency`); empty without a CDN or spans."""
    from simulator.analysis.cdn import cdn_latency as latency

    t0, t1 = results.window
    return latency(results.events, results.requests, results.spans, t0, t1)


def has_client_regions(results: Results) -> bool:
    """Whether the run's requests come from client regions (a latency by region says
    something); False for a streaming run, which keeps no requests table."""
    if results.streaming:
        return False
    req = results.requests
    return "region" in req.columns and bool((req["region"].astype(str) != "").any())


def format_cdn_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Render a CDN table for a terminal: ratios in %, latencies in ms, counts as integers."""
    df = table.copy()
    for col in ("coalesced", "bypassed", "failed"):
        if col in df and df[col].fillna(0).eq(0).all():
            df = df.drop(columns=col)
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in df.columns:
        if c.endswith(("_ratio", "_offload")):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.2%}"
        elif c.startswith("latency_"):
            df[c] = df[c] * 1e3
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.3g}"
        elif c == "mean_entries":
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.1f}"
    df = df.rename(columns={c: f"{c}_ms" for c in df.columns if c.startswith("latency_")})
    fmt = {(f"{c}_ms" if c.startswith("latency_") else c): f for c, f in fmt.items()}
    return shown(df, na_rep="-", formatters=fmt)
