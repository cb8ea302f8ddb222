"""Streaming request metrics: counters and latency histograms instead of one row per request.

With ``metrics: {requests: streaming}`` the recorder keeps, for the requests created in the
measured window ``[warmup, duration)``, one :class:`RequestStats` per (workload, operation,
final status): counts, exact latency sum, attempts, stale and cache counts, and a
:class:`~simulator.metrics.histogram.LatencyHistogram` with the scenario's
``metrics.latency_error``. Memory depends on the number of (workload, op, status) combinations
and histogram buckets, not on the number of requests, so a run of 10 million requests needs
about what a run of one million does (``benchmarks/streaming_memory.py``).

What is exact: counts, throughput, goodput, ratios, mean latency, attempts, stale and cache
counts. What is approximate: latency percentiles, within the stated relative error of the exact
ones (see :mod:`simulator.metrics.histogram`). What is not available: the ``requests`` and
``spans`` tables and everything computed from them per request (latency over time, CDF plots,
``recovery()``, MSER-5 warm-up detection, a measured window other than the scenario's).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from simulator.errors import SimulatorError
from simulator.messages import HIT, IN_FLIGHT, MISS, STATUS_LABELS, Status
from simulator.metrics.histogram import LatencyHistogram, bucket_bounds, quantiles_of
from simulator.metrics.schema import QUANTILES, SUMMARY_COLUMNS

if TYPE_CHECKING:  # pandas is imported where the tables are assembled, at the end of a run
    import pandas as pd

    from simulator.messages import Request

STATS_COLUMNS = ["workload", "op", "status", "count", "latency_sum", "attempts_sum", "stale",
                 "cache_hits", "cache_misses", "cached_stale"]
"""Columns of the ``request_stats`` table (see :data:`STREAMING_TABLES`)."""

STREAMING_TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "request_stats": {
        "workload": ("category", "Workload."),
        "op": ("category", "Operation."),
        "status": ("category", "Final status (in_flight: created in the window, unfinished "
                               "at the end; only count is set)."),
        "count": ("int64", "Requests created in the measured window with this outcome."),
        "latency_sum": ("float64", "Sum of their latencies, seconds (exact)."),
        "attempts_sum": ("int64", "Sum of their attempts."),
        "stale": ("int64", "Of them, requests that read an outdated version."),
        "cache_hits": ("int64", "Of them, requests the first cache on the path answered."),
        "cache_misses": ("int64", "Of them, requests the first cache on the path missed."),
        "cached_stale": ("int64", "Of them, stale requests that consulted a cache."),
    },
    "latency_histogram": {
        "workload": ("category", "Workload."),
        "op": ("category", "Operation."),
        "status": ("category", "Final status."),
        "bucket": ("int64", "Bucket index i: latencies in (gamma^(i-1), gamma^i]; "
                            "-2^31: zero latencies."),
        "lower": ("float64", "Lower bound of the bucket (exclusive), seconds."),
        "upper": ("float64", "Upper bound of the bucket (inclusive), seconds."),
        "count": ("int64", "Requests in the bucket."),
    },
}


def window_detail(start: float, end: float) -> str:
    """How a streaming run records the window it counted (detail of a ``streamed_window``
    event), so that asking for another window later is refused."""
    return f"{start!r},{end!r}"


class StreamingUnavailableError(SimulatorError):
    """A table or analysis that needs one row per request, asked of a streaming run."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what} needs one row per request, which a run with metrics.requests: streaming "
            "does not keep; use summary(), request_stats or latency_quantiles(), or run with "
            "metrics.requests: table")


class RequestStats:
    """Running totals of one (workload, op, status)."""

    __slots__ = ("attempts", "cached_stale", "count", "hist", "hits", "latency", "misses",
                 "stale")

    def __init__(self, relative_error: float) -> None:
        self.count = 0
        self.latency = 0.0
        self.attempts = 0
        self.stale = 0
        self.hits = 0
        self.misses = 0
        self.cached_stale = 0
        self.hist = LatencyHistogram(relative_error)


class RequestStream:
    """The streaming replacement of the requests table (see the module documentation).

    Parameters
    ----------
    workloads
        Workload names by index.
    start, end
        The measured window ``[start, end)``: requests created in it are counted.
    relative_error
        Relative error of the latency histograms.
    """

    def __init__(self, workloads: list[str], start: float, end: float,
                 relative_error: float) -> None:
        self.workloads = workloads
        self.start = start
        self.end = end
        self.relative_error = relative_error
        self.created_total = 0
        self.created: dict[tuple[int, str], int] = {}
        self.stats: dict[tuple[int, str, int], RequestStats] = {}

    def created_at(self, workload: int, op: str, now: float) -> int:
        """Count a request created now; return its id."""
        rid = self.created_total
        self.created_total = rid + 1
        if self.start <= now < self.end:
            key = (workload, op)
            created = self.created
            created[key] = created.get(key, 0) + 1
        return rid

    def completed(self, req: Request, status: int, now: float) -> None:
        """Fold a finished request into its (workload, op, status) totals."""
        start = req.created_at
        if not self.start <= start < self.end:
            return
        key = (req.workload, req.op, status)
        s = self.stats.get(key)
        if s is None:
            s = self.stats[key] = RequestStats(self.relative_error)
        latency = now - start
        s.count += 1
        s.latency += latency
        s.attempts += req.attempts
        s.hist.add(latency)
        cache = req.lookup
        if req.stale:
            s.stale += 1
            if cache:
                s.cached_stale += 1
        if cache == HIT:
            s.hits += 1
        elif cache == MISS:
            s.misses += 1

    # ---- tables -------------------------------------------------------------------------
    def tables(self) -> dict[str, pd.DataFrame]:
        """The ``request_stats`` and ``latency_histogram`` tables."""
        import pandas as pd

        done: dict[tuple[int, str], int] = {}
        rows = []
        for (w, op, status), s in sorted(self.stats.items(), key=lambda kv: kv[0]):
            done[w, op] = done.get((w, op), 0) + s.count
            rows.append((w, op, status, s.count, s.latency, s.attempts, s.stale, s.hits,
                         s.misses, s.cached_stale))
        for (w, op), n in sorted(self.created.items()):
            left = n - done.get((w, op), 0)
            if left:
                rows.append((w, op, IN_FLIGHT, left, 0.0, 0, 0, 0, 0, 0))
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(STATS_COLUMNS)
        stats = pd.DataFrame({
            "workload": _categorical(cols[0], self.workloads),
            "op": pd.Categorical([str(x) for x in cols[1]]),
            "status": _categorical(cols[2], STATUS_LABELS),
            **{name: np.array(values, dtype=np.float64 if name == "latency_sum" else np.int64)
               for name, values in zip(STATS_COLUMNS[3:], cols[3:], strict=True)},
        })
        w_col: list[int] = []
        op_col: list[str] = []
        st_col: list[int] = []
        b_parts: list[np.ndarray] = []
        c_parts: list[np.ndarray] = []
        for (w, op, status), s in sorted(self.stats.items(), key=lambda kv: kv[0]):
            b, c = s.hist.arrays()
            w_col.extend([w] * len(b))
            op_col.extend([op] * len(b))
            st_col.extend([status] * len(b))
            b_parts.append(b)
            c_parts.append(c)
        buckets = np.concatenate(b_parts) if b_parts else np.empty(0, np.int64)
        counts = np.concatenate(c_parts) if c_parts else np.empty(0, np.int64)
        lower, upper = bucket_bounds(buckets, self.relative_error)
        hist = pd.DataFrame({
            "workload": _categorical(w_col, self.workloads),
            "op": pd.Categorical(op_col),
            "status": _categorical(st_col, STATUS_LABELS),
            "bucket": buckets,
            "lower": lower,
            "upper": upper,
            "count": counts,
        })
        return {"request_stats": stats, "latency_histogram": hist}


def _categorical(codes: object, categories: list[str]) -> pd.Categorical[str]:
    import pandas as pd

    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int16),
                                     categories=pd.Index(categories))


# ---- analyses -----------------------------------------------------------------------------


def latency_quantiles(histogram: pd.DataFrame, qs: list[float], relative_error: float,
                      by: list[str] | None = None, status: str | None = "ok") -> pd.DataFrame:
    """Latency quantiles from ``latency_histogram`` rows, merged over everything not in ``by``.

    Parameters
    ----------
    histogram
        Rows of one or several ``latency_histogram`` tables (several replications concatenated
        merge exactly: their bucket counts add).
    qs
        Quantiles in [0, 1].
    relative_error
        The histograms' relative error (``metrics.latency_error``).
    by
        Columns to group by (default: none, one row).
    status
        Only requests with this status (default ``ok``); None: every completed request.

    Returns
    -------
    pandas.DataFrame
        One row per group, one column per quantile (``q0.99``...), within ``relative_error`` of
        the exact quantiles of the pooled latencies.
    """
    import pandas as pd

    h = histogram if status is None else histogram[histogram["status"].astype(str) == status]
    names = [f"q{q:g}" for q in qs]
    if not by:
        vals = quantiles_of(h["bucket"].to_numpy(), h["count"].to_numpy(), qs, relative_error)
        return pd.DataFrame([dict(zip(names, vals.tolist(), strict=True))], columns=names)
    rows = []
    for key, g in h.groupby(by, observed=True, sort=True):
        vals = quantiles_of(g["bucket"].to_numpy(), g["count"].to_numpy(), qs, relative_error)
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, keys, strict=True)),
                     **dict(zip(names, vals.tolist(), strict=True))})
    return pd.DataFrame(rows, columns=[*by, *names])


def summarize_streaming(stats: pd.DataFrame, histogram: pd.DataFrame, relative_error: float,
                        seconds: float) -> pd.DataFrame:
    """The workload rows of :func:`simulator.analysis.summary.summarize`, from streaming tables.

    Counts, ratios and means are exact; percentiles are within ``relative_error`` of the exact
    ones. There are no component rows (they come from spans, which streaming runs do not keep).
    """
    import pandas as pd

    ok_label, fb_label = Status.OK.label, Status.FALLBACK.label
    rows = []
    for workload in stats["workload"].cat.categories:
        s = stats[stats["workload"] == workload]
        status = s["status"].astype(str)
        count = int(s["count"].sum())
        in_flight = int(s.loc[status == "in_flight", "count"].sum())
        completed = count - in_flight
        ok = s[status == ok_label]
        n_ok = int(ok["count"].sum())
        n_fb = int(s.loc[status == fb_label, "count"].sum())

        def ratio(label: str, s: pd.DataFrame = s, status: pd.Series = status,
                  completed: int = completed) -> float:
            return float(s.loc[status == label, "count"].sum() / completed) if completed \
                else np.nan

        h = histogram[(histogram["workload"] == workload)
                      & (histogram["status"].astype(str) == ok_label)]
        qs = quantiles_of(h["bucket"].to_numpy(), h["count"].to_numpy(),
                          list(QUANTILES.values()), relative_error)
        done = s[status != "in_flight"]
        rows.append({
            "scope": "workload",
            "name": str(workload),
            "count": count,
            "completed": completed,
            "in_flight": in_flight,
            "unfinished_ratio": in_flight / count if count else np.nan,
            "throughput": completed / seconds,
            "goodput": n_ok / seconds,
            "mean": float(ok["latency_sum"].sum() / n_ok) if n_ok else np.nan,
            **dict(zip(QUANTILES, map(float, qs), strict=True)),
            "error_ratio": (completed - n_ok - n_fb) / completed if completed else np.nan,
            "rejection_ratio": ratio("rejected"),
            "timeout_ratio": ratio("timeout"),
            "fallback_ratio": ratio("fallback"),
            # as in the table: an unfinished request counts its first attempt only
            "attempts": float((done["attempts_sum"].sum() + in_flight) / count) if count
            else np.nan,
            "utilisation": np.nan,
            "stale_ratio": float(ok["stale"].sum() / n_ok) if n_ok else np.nan,
        })
    return pd.DataFrame(rows, columns=SUMMARY_COLUMNS)


def cache_workload_rows(stats: pd.DataFrame) -> list[dict[str, object]]:
    """The workload rows of :func:`simulator.analysis.data.cache_summary` from ``request_stats``."""
    rows: list[dict[str, object]] = []
    for workload in stats["workload"].cat.categories:
        s = stats[stats["workload"] == workload]
        hits, misses = int(s["cache_hits"].sum()), int(s["cache_misses"].sum())
        reads = hits + misses
        if not reads:
            continue
        stale = int(s["cached_stale"].sum())
        rows.append({"scope": "workload", "name": str(workload), "reads": reads, "hits": hits,
                     "misses": misses, "hit_ratio": hits / reads, "stale_reads": stale,
                     "stale_read_ratio": stale / reads})
    return rows
