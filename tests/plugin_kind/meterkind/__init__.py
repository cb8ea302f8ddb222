"""An out-of-tree component kind, as a third-party package would write one (issue 11's test).

``kind: meter`` serves each request after a fixed time and records a reading (a row of its own
raw table ``meter_readings``) per request; its derived table ``meter_summary`` counts readings
per instance; a ``reset_meter`` timeline event sets an instance's counter back to zero; the
``crash`` fault refuses requests while it lasts. The package registers through the
``simulator.kinds`` entry point of ``meterkind-0.1.dist-info`` beside it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from simulator.components.params import ComponentParams
from simulator.kind import Column, DerivedTable, Kind, RawTable, TimelineEvent


class MeterParams(ComponentParams):
    """Parameters of ``kind: meter``: ``service_time`` (seconds) spent on each request."""

    kind: Literal["meter"] = "meter"
    service_time: float = Field(0.001, gt=0, description="Seconds per request.")


class ResetMeter(TimelineEvent):
    """Set the target meter's counter back to zero at ``at``."""

    kind: Literal["reset_meter"] = "reset_meter"
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*(\[\d+\])?$")
    instance_target = True

    def fire(self, instances: list, timeline: object) -> None:  # type: ignore[type-arg]
        for inst in instances:
            inst.reset()


READINGS = RawTable("meter_readings", "One row per request a meter served.", (
    Column("meter", "category", "Meter (component) that served it.", labels="component"),
    Column("instance", "category", "Instance that served it.", labels="names"),
    Column("request_id", "int64", "Request served."),
    Column("time", "float64", "When it was served (seconds)."),
    Column("reading", "int64", "The meter's counter after it (resets set it back to 0)."),
))

KIND = Kind(
    name="meter",
    params=MeterParams,
    component="meterkind.model:Meter",
    summary="A counter that serves requests in a fixed time (a plug-in example).",
    faults=frozenset({"crash"}),
    events=(ResetMeter,),
    tables=(READINGS,),
    derived=(DerivedTable("meter_summary", "meterkind.tables:meter_summary",
                          "meters (readings per instance)"),),
)
