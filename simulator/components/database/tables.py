"""Derived tables of ``kind: database``: per-shard load, replication and staleness, failovers,
reshards (computed by :mod:`simulator.analysis.data`), and their terminal formatters."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.analysis.formatting import shown

if TYPE_CHECKING:
    from simulator.results import Results


def shard_summary(results: Results) -> pd.DataFrame:
    """Per database shard: reads, writes, share of the database's requests, skew (max over
    mean) and the hottest shard, over the measured window (see
    :func:`simulator.analysis.data.shard_summary`); empty without databases."""
    from simulator.analysis.data import shard_summary as summarise

    t0, t1 = results.window
    return summarise(results.samples, t0, t1)


def replication_summary(results: Results) -> pd.DataFrame:
    """Per database: stale-read ratio, replication (``write_lag_*``: commit to applied per
    replicated write; ``behind_*``: sampled age of a follower's oldest unapplied write;
    seconds), connection-pool wait and timeouts over the measured window (see
    :func:`simulator.analysis.data.replication_summary`); empty without databases."""
    from simulator.analysis.data import replication_summary as summarise

    t0, t1 = results.window
    return summarise(results.samples, results.spans, t0, t1,
                     results.tables.get("replicated_writes"))


def failovers(results: Results) -> pd.DataFrame:
    """Each database failover of the run: shard, node crashed and promoted, times, write
    unavailability, lost writes (see :func:`simulator.analysis.data.failover_summary`)."""
    from simulator.analysis.data import failover_summary

    return failover_summary(results.events)


def reshards(results: Results) -> pd.DataFrame:
    """Each reshard of the run: shard counts and the fraction of keys moved."""
    from simulator.analysis.data import reshard_summary

    return reshard_summary(results.events)


def format_shard_summary(shards: pd.DataFrame) -> pd.DataFrame:
    """Shares in %, skew to 3 decimals, the hottest shard marked."""
    return shown(shards, formatters={
        "share": "{:.1%}".format, "skew": "{:.3f}".format,
        "hottest": lambda v: "hottest" if v else ""})


def format_replication_summary(replication: pd.DataFrame) -> pd.DataFrame:
    """Write lags, behind and pool waits in ms, ratios in %."""
    df = replication.copy()
    times = [f"{p}_{s}" for p in ("write_lag", "behind") for s in ("mean", "p50", "p95", "p99",
                                                                   "max")]
    for c in (*times, "pool_wait_mean", "pool_wait_p99"):
        df[c] = df[c] * 1e3
    fmt: dict[str, Callable[[Any], str]] = {
        c: (lambda v: "-" if pd.isna(v) else f"{v:.2%}")
        for c in ("stale_read_ratio", "pool_timeout_ratio")}
    return shown(df, na_rep="-", formatters=fmt, float_format="{:.3g}".format)


def format_failovers(table: pd.DataFrame) -> pd.DataFrame:
    """Times to the millisecond."""
    return shown(table, float_format="{:.3f}".format)


def format_reshards(table: pd.DataFrame) -> pd.DataFrame:
    """Moved fractions in %."""
    return shown(table, na_rep="-", formatters={
        c: "{:.2%}".format for c in ("moved_ratio", "moved_to_new_ratio", "seen_moved_ratio")})
