"""The raw ``messages`` table of queues and topic subscriptions, and its derived summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

from simulator.analysis.formatting import shown

if TYPE_CHECKING:
    from simulator.results import Results


def queue_summary(results: Results) -> pd.DataFrame:
    """Per queue and topic subscription: messages published and how many end in each
    ``messages.status`` (``rejected``, ``acked``, ``dead_lettered``, ``queued``,
    ``in_flight``); redeliveries; end-to-end time; depth (visible, waiting), delayed (waiting out a
    retry backoff), oldest age (seconds) and lag (see
    :func:`simulator.analysis.summary.queue_summary`)."""
    from simulator.analysis.summary import queue_summary as summarise

    t0, t1 = results.window
    return summarise(results.tables["messages"], results.samples, t0, t1)


def format_queue_summary(queues: pd.DataFrame) -> pd.DataFrame:
    """The queue summary as people read it: end-to-end times and the oldest message's age in
    milliseconds (``_ms`` in the header), counts as integers, mean depths to 3 digits."""
    df = queues.copy()
    times = [c for c in df.columns if c.startswith(("e2e_", "oldest_age"))]
    for c in times:
        df[c] = df[c] * 1e3
    df = df.rename(columns={c: f"{c}_ms" for c in times})
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in df.columns:
        if c.endswith("_ms"):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.4g}"
        elif c.startswith(("depth_mean", "delayed_mean")):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.3g}"
        elif c in ("depth_max", "delayed_max", "lag_max", "lag_end"):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.0f}"
    return shown(df, na_rep="-", formatters=fmt)
