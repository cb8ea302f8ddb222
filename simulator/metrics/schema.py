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
        "request_id": ("int64", "Request served."),
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
    "messages": {
        "message_id": ("int64", "Sequence number of the message within the run, from 0."),
        "queue": ("category", "Where it was stored: a queue's name, or topic.subscription (one "
                              "row per subscription for a message published to a topic)."),
        "request_id": ("int64", "Request that published it (consumer spans carry the same id)."),
        "enqueued": ("float64", "When the queue accepted it (or refused it: status rejected)."),
        "first_delivered": ("float64", "First delivery to a consumer (NaN if never delivered)."),
        "finished": ("float64", "When it was acknowledged, dead-lettered or rejected (NaN "
                                "while queued or in flight at the end)."),
        "attempts": ("int16", "Deliveries to consumers (redeliveries are attempts - 1)."),
        "status": ("category", "acked, dead_lettered, rejected, or where it was at the end: "
                               "queued (waiting, or delayed before a retry) or in_flight "
                               "(delivered, not yet acknowledged)."),
    },
    "commands": {
        "store": ("category", "Event store (component) that ran the command."),
        "request_id": ("int64", "Request the command belongs to."),
        "key": ("int64", "Aggregate id (the request's key)."),
        "attempt": ("int16", "1 for the first load-decide-append, 2... for retries after a "
                             "conflict."),
        "start": ("float64", "When the aggregate's load began (the version was read then)."),
        "replayed": ("int32", "Events replayed by the load (those after the latest snapshot)."),
        "loaded": ("float64", "When the aggregate was rebuilt (rebuild time = loaded - start)."),
        "end": ("float64", "When the append committed or was refused by the version check."),
        "version": ("int64", "Version the append wrote (committed) or tried to write."),
        "outcome": ("category", "committed; retried (a conflict, then another attempt); "
                                "conflict (a conflict with no retry left: the command failed); "
                                "crashed (the store crashed before the commit)."),
        "snapshot": ("bool", "Whether the commit triggered a snapshot write."),
    },
    "projections": {
        "read_model": ("category", "Read model (component) that applied the event."),
        "request_id": ("int64", "Request whose command appended the event."),
        "key": ("int64", "Aggregate id."),
        "version": ("int64", "Version of the aggregate the event created."),
        "committed": ("float64", "When the event store committed it."),
        "applied": ("float64", "When the read model applied it (projection lag = applied - "
                               "committed)."),
        "replay": ("bool", "Applied by a projection rebuild's replay rather than live."),
    },
}


def describe(table: str) -> str:
    """Return a human-readable description of a table's columns."""
    cols = TABLES[table]
    return "\n".join(f"{name:<12} {dtype:<9} {doc}" for name, (dtype, doc) in cols.items())
