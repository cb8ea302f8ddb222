"""Derived table of ``kind: cache``: hit ratio, misses, loads, evictions and staleness per
cache and per workload (computed by :func:`simulator.analysis.data.cache_summary`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.analysis.formatting import shown

if TYPE_CHECKING:
    from simulator.results import Results


def cache_summary(results: Results) -> pd.DataFrame:
    """Per cache and per workload: hit ratio, misses, coalesced loads, evictions, stale
    reads, mean entries over the measured window; empty without caches. A streaming run's
    workload rows come from its streamed counters."""
    from simulator.analysis.data import cache_summary as summarise

    t0, t1 = results.window
    if not results.streaming:
        return summarise(results.samples, results.requests, t0, t1)
    from simulator.metrics.schema import TABLES
    from simulator.metrics.streaming import cache_workload_rows

    results.check_streamed_window()
    empty = pd.DataFrame({c: pd.Series(dtype=d) for c, (d, _) in TABLES["requests"].items()})
    table = summarise(results.samples, empty, t0, t1)
    rows = cache_workload_rows(results.request_stats)
    if table.empty and not rows:
        return table
    return pd.concat([table, pd.DataFrame(rows, columns=table.columns)],
                     ignore_index=True) if rows else table


def format_cache_summary(caches: pd.DataFrame) -> pd.DataFrame:
    """Render a cache summary for a terminal: ratios in %, counts as integers."""
    df = caches.copy()
    for col in ("coalesced", "evictions", "expirations", "writes", "lost_writes"):
        if df[col].fillna(0).eq(0).all():
            df = df.drop(columns=col)
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in df.columns:
        if c.endswith("_ratio"):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.2%}"
        elif c == "mean_entries":
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.1f}"
        elif c not in ("scope", "name"):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.0f}"
    return shown(df, na_rep="-", formatters=fmt)
