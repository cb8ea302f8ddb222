"""The result tables: their columns, dtypes and meaning.

Every table is long/tidy with fixed columns. Times are simulated seconds from the start of the
run. Tables of one run carry no run tags; experiments add ``seed``, ``replication`` and swept
parameters as columns when they combine runs.
"""

from __future__ import annotations

TABLES: dict[str, dict[str, tuple[str, str]]] = {
    "requests": {
        "request_id": ("int64", "Sequence number of the request within the run, from 0."),
        "workload": ("category", "Workload that created it."),
        "op": ("category", "Operation (read, write...)."),
        "key": ("int64", "Key touched (0 = most popular; -1 when the workload has no keys)."),
        "start": ("float64", "Creation time."),
        "end": ("float64", "Completion time (NaN while in flight at the end)."),
        "latency": ("float64", "end - start, seconds (NaN while in flight)."),
        "status": ("category", "ok, error, rejected, timeout, short_circuited, dropped, "
                               "fallback, cancelled, conflict or in_flight."),
        "attempts": ("int16", "Attempts made (1 without retries)."),
        "cache": ("category", "What the first cache on the path answered: hit, miss, or '' "
                              "(no cache consulted)."),
        "stale": ("bool", "Whether a read on the path returned an outdated version."),
        "region": ("category", "Region of the request's client ('' without regions)."),
    },
    "spans": {
        "request_id": ("int64", "Request served (-1: a write-behind cache's flush, which "
                                "serves no request)."),
        "component": ("category", "Component (group) name."),
        "instance": ("category", "Instance name (api[2], or the group name if not replicated)."),
        "op": ("category", "Operation served."),
        "arrival": ("float64", "Arrival at the instance."),
        "start": ("float64", "Service start (a worker taken); NaN if rejected."),
        "end": ("float64", "Reply sent, downstream calls included."),
        "status": ("category", "Status of this hop."),
    },
    "samples": {
        "time": ("float64", "Sampling time."),
        "component": ("category", "Component (group) name."),
        "instance": ("category", "Instance name."),
        "metric": ("category", "Gauge name (see each component's docs)."),
        "label": ("category", "Qualifier of per-peer gauges (a balancer's backend), else ''."),
        "value": ("float64", "Value at that time (cumulative metrics end in _total)."),
    },
    "events": {
        "time": ("float64", "When it happened."),
        "component": ("category", "Component (group) name, or 'run'."),
        "instance": ("category", "Instance name."),
        "event": ("category", "What happened."),
        "detail": ("object", "Free-form detail."),
    },
}


#: Latency percentiles of the summary, by column.
QUANTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99, "p999": 0.999}
#: Columns of ``Results.summary()`` (in seconds, ratios as fractions).
SUMMARY_COLUMNS = [
    "scope", "name", "count", "completed", "in_flight", "unfinished_ratio", "throughput", "goodput",
    "mean", "p50", "p95", "p99", "p999",
    "error_ratio", "rejection_ratio", "timeout_ratio", "fallback_ratio", "attempts",
    "utilisation", "stale_ratio",
]


def describe(table: str) -> str:
    """Return a human-readable description of a table's columns."""
    cols = TABLES[table]
    return "\n".join(f"{name:<12} {dtype:<9} {doc}" for name, (dtype, doc) in cols.items())
