"""Derived table of ``kind: event_store``: conflicts and aggregate rebuild (load) costs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.analysis.formatting import shown

if TYPE_CHECKING:
    from simulator.results import Results


def event_sourcing_summary(results: Results) -> pd.DataFrame:
    """Per event store: commands, conflicts and conflict ratio, retries, failures, rebuild
    (load) time percentiles, events replayed, snapshots (see
    :func:`simulator.analysis.event_sourcing.command_summary`); empty without one."""
    from simulator.analysis.event_sourcing import command_summary

    t0, t1 = results.window
    return command_summary(results.tables["commands"], t0, t1)


def format_event_sourcing_summary(stores: pd.DataFrame) -> pd.DataFrame:
    """Rebuild times in ms, ratios in %."""
    df = stores.copy()
    for c in ("rebuild_mean", "rebuild_p50", "rebuild_p99", "rebuild_max"):
        df[c] = df[c] * 1e3
    fmt: dict[str, Callable[[Any], str]] = {
        c: (lambda v: "-" if pd.isna(v) else f"{v:.2%}") for c in ("conflict_ratio",
                                                                    "failed_ratio")}
    return shown(df, na_rep="-", float_format="{:.3g}".format, formatters=fmt)
