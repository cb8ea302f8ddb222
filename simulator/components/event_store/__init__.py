"""``kind: event_store``: event sourcing, an append-only log per aggregate with optimistic
concurrency, snapshots and publishing of committed events (see
:mod:`simulator.components.event_store.store`). Declares the ``commands`` table."""

from simulator.components.event_store.params import EventStoreParams
from simulator.kind import Column, DerivedTable, Kind, RawTable
from simulator.messages import COMMAND_OUTCOMES

COMMANDS = RawTable("commands", "One row per load-decide-append attempt of an event store.", (
    Column("store", "category", "Event store (component) that ran the command.",
           labels="component"),
    Column("request_id", "int64", "Request the command belongs to."),
    Column("key", "int64", "Aggregate id (the request's key)."),
    Column("attempt", "int16", "1 for the first load-decide-append, 2... for retries after a "
                               "conflict."),
    Column("start", "float64", "When the aggregate's load began (the version was read then)."),
    Column("replayed", "int32", "Events replayed by the load (those after the latest "
                                "snapshot)."),
    Column("loaded", "float64", "When the aggregate was rebuilt (rebuild time = loaded - "
                                "start)."),
    Column("end", "float64", "When the append committed or was refused by the version check."),
    Column("version", "int64", "Version the append wrote (committed) or tried to write."),
    Column("outcome", "category", "committed; retried (a conflict, then another attempt); "
                                  "conflict (a conflict with no retry left: the command "
                                  "failed); crashed (the store crashed before the commit).",
           labels=tuple(COMMAND_OUTCOMES)),
    Column("snapshot", "bool", "Whether the commit triggered a snapshot write."),
))

_TABLES = "simulator.components.event_store.tables"

KIND = Kind(
    name="event_store",
    params=EventStoreParams,
    component="simulator.components.event_store.store:EventStore",
    shape="cylinder",
    colour="#e0f2f1",
    faults=frozenset({"crash", "slow", "error", "latency"}),
    tables=(COMMANDS,),
    derived=(DerivedTable("event_sourcing_summary", f"{_TABLES}:event_sourcing_summary",
                          "event stores (measured window; rebuild = aggregate load time, in ms)",
                          format=f"{_TABLES}:format_event_sourcing_summary"),),
)
