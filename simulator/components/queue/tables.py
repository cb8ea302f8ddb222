"""The raw ``messages`` table of queues and topic subscriptions, and its derived summary."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd

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


def format_queue_summary(queues: pd.DataFrame) -> str:
    """Render a queue summary for a terminal: counts as integers, times to 3 digits."""
    fmt: dict[str, Callable[[Any], str]] = {}
    for c in queues.columns:
        if c.startswith(("e2e_", "oldest_age", "depth_mean", "delayed_mean")):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.3g}"
        elif c in ("depth_max", "delayed_max", "lag_max", "lag_end"):
            fmt[c] = lambda v: "-" if pd.isna(v) else f"{v:.0f}"
    return queues.to_string(index=False, na_rep="-", formatters=fmt)
