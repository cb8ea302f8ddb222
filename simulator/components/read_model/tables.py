"""Derived tables of ``kind: read_model``: projection lag and staleness, rebuilds."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.analysis.formatting import shown

if TYPE_CHECKING:
    from simulator.results import Results


def projection_summary(results: Results) -> pd.DataFrame:
    """Per read model: events applied, projection lag percentiles, stale-read ratio, events
    behind (see :func:`simulator.analysis.event_sourcing.projection_summary`); empty without
    one."""
    from simulator.analysis.event_sourcing import projection_summary as summarise

    t0, t1 = results.window
    return summarise(results.tables["projections"], results.samples, t0, t1)


def rebuilds(results: Results) -> pd.DataFrame:
    """Each projection rebuild of the run: start, end, duration, events replayed."""
    from simulator.analysis.event_sourcing import rebuild_summary

    return rebuild_summary(results.events, results.tables["projections"])


def format_projection_summary(models: pd.DataFrame) -> pd.DataFrame:
    """Lags in ms, the stale-read ratio in %."""
    df = models.copy()
    for c in ("lag_mean", "lag_p50", "lag_p95", "lag_p99", "lag_max"):
        df[c] = df[c] * 1e3
    ratio: dict[str, Callable[[Any], str]] = {
        "stale_read_ratio": lambda v: "-" if pd.isna(v) else f"{v:.2%}"}
    return shown(df, na_rep="-", float_format="{:.3g}".format, formatters=ratio)


def format_rebuilds(table: pd.DataFrame) -> pd.DataFrame:
    """Times to 3 digits."""
    return shown(table, na_rep="-", float_format="{:.3g}".format)
