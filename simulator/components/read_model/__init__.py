"""``kind: read_model``: the CQRS query side, fed by projectors, with projection lag,
measured staleness and rebuilds on the timeline (see
:mod:`simulator.components.read_model.read_model`). Declares the ``projections`` table."""

from simulator.components.read_model.params import ReadModelParams, RebuildEvent
from simulator.kind import Column, DerivedTable, Kind, RawTable

PROJECTIONS = RawTable("projections", "One row per event applied by a read model (live or "
                                      "replayed by a rebuild).", (
    Column("read_model", "category", "Read model (component) that applied the event.",
           labels="component"),
    Column("request_id", "int64", "Request whose command appended the event."),
    Column("key", "int64", "Aggregate id."),
    Column("version", "int64", "Version of the aggregate the event created."),
    Column("committed", "float64", "When the event store committed it."),
    Column("applied", "float64", "When the read model applied it (projection lag = applied - "
                                 "committed)."),
    Column("replay", "bool", "Applied by a projection rebuild's replay rather than live."),
))

_TABLES = "simulator.components.read_model.tables"

KIND = Kind(
    name="read_model",
    params=ReadModelParams,
    backlog=("behind",),
    component="simulator.components.read_model.read_model:ReadModel",
    shape="box",
    colour="#f1f8e9",
    faults=frozenset({"crash", "slow"}),
    events=(RebuildEvent,),
    tables=(PROJECTIONS,),
    derived=(
        DerivedTable("projection_summary", f"{_TABLES}:projection_summary",
                     "read models (measured window; projection lag = commit to applied, in ms)",
                     format=f"{_TABLES}:format_projection_summary"),
        DerivedTable("rebuilds", f"{_TABLES}:rebuilds",
                     "projection rebuilds (seconds; end '-': not caught up by the end of the "
                     "run)", format=f"{_TABLES}:format_rebuilds"),
    ),
)
