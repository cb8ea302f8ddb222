"""Faults on the scenario's timeline: what breaks, when, and for how long.

Each fault starts ``at`` a time and lasts ``duration`` (omitted: to the end of the run). Targets
name a component (every instance) or one instance (``db[2]``). Faults are behaviour, not flags:
a crashed instance fails the requests it holds and refuses (or silently drops) new ones; a
slowed instance keeps its queue; a partition fails exactly the calls that cross it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.distributions import Distribution, Duration
from simulator.workloads import Rate

TARGET_PATTERN = r"^[A-Za-z_][A-Za-z0-9_-]*(\[\d+\])?$"
_TARGET = re.compile(r"^(?P<group>[A-Za-z_][A-Za-z0-9_-]*)(\[(?P<index>\d+)\])?$")


def split_target(target: str) -> tuple[str, int | None]:
    """Split ``db[2]`` into ``("db", 2)`` and ``db`` into ``("db", None)``."""
    m = _TARGET.match(target)
    if m is None:
        raise ValueError(f"bad fault target {target!r}")
    index = m.group("index")
    return m.group("group"), None if index is None else int(index)


class _Fault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Duration = Field(ge=0, description="When the fault starts.")
    duration: Duration | None = Field(None, gt=0, description="How long it lasts (default: "
                                                              "to the end).")

    @property
    def end(self) -> float:
        """When the fault ends (``inf`` if it does not)."""
        return self.at + self.duration if self.duration is not None else float("inf")


class CrashFault(_Fault):
    """The target crashes: requests it holds fail (status ``error``) at once; new requests are
    refused at once (``mode: refuse``, connection refused) or never answered (``mode:
    black_hole``: only a caller's timeout ends them). It recovers empty when the fault ends.

    ``node`` crashes one server of a database shard instead of the whole shard: ``leader``
    (whichever node leads when the fault starts) or ``followerN`` (the node built as the N-th
    follower); see :mod:`simulator.components.database`."""

    kind: Literal["crash"] = "crash"
    target: str = Field(pattern=TARGET_PATTERN)
    mode: Literal["refuse", "black_hole"] = "refuse"
    node: str | None = None


class SlowFault(_Fault):
    """The target works ``factor`` times slower (service times are multiplied)."""

    kind: Literal["slow"] = "slow"
    target: str = Field(pattern=TARGET_PATTERN)
    factor: float = Field(gt=0)


class ErrorFault(_Fault):
    """Each request arriving at the target fails at once with ``probability`` (Envoy's abort)."""

    kind: Literal["error"] = "error"
    target: str = Field(pattern=TARGET_PATTERN)
    probability: float = Field(gt=0, le=1)


class LatencyFault(_Fault):
    """Each request arriving at the target is delayed by a draw of ``added`` (Envoy's delay)."""

    kind: Literal["latency"] = "latency"
    target: str = Field(pattern=TARGET_PATTERN)
    added: Distribution


class FlushFault(_Fault):
    """The target cache drops every entry at ``at`` (an operator's FLUSHALL, a cold restart of
    the cache tier): the next reads of every key miss. Instantaneous, so it takes no
    ``duration``."""

    kind: Literal["flush"] = "flush"
    target: str = Field(pattern=TARGET_PATTERN)

    @model_validator(mode="after")
    def _instant(self) -> Self:
        if self.duration is not None:
            raise ValueError("duration: a flush is instantaneous; remove duration")
        return self

    @property
    def end(self) -> float:
        """A flush ends when it starts (recovery is measured from then)."""
        return self.at


class PartitionFault(_Fault):
    """Calls between the two components fail, in both directions: at once (``refuse``) or
    never answered (``black_hole``: only a caller's timeout ends them)."""

    kind: Literal["partition"] = "partition"
    between: tuple[str, str]
    mode: Literal["refuse", "black_hole"] = "refuse"


class RegionPartitionFault(_Fault):
    """Calls crossing between the two regions fail, in both directions (replies coming back
    across it too): at once (``refuse``) or never answered (``black_hole``: only a caller's
    timeout ends them). Calls within a region, or between other regions, are untouched."""

    kind: Literal["region_partition"] = "region_partition"
    between: tuple[str, str]
    mode: Literal["refuse", "black_hole"] = "refuse"


class RegionOutageFault(_Fault):
    """Every instance placed in ``region`` crashes (as a ``crash`` fault: what it holds fails,
    new calls are refused or black-holed) and recovers empty when the fault ends. Kinds that
    cannot crash (queues, topics) stay up; clients in the region keep sending."""

    kind: Literal["region_outage"] = "region_outage"
    region: str
    mode: Literal["refuse", "black_hole"] = "refuse"


class SpikeFault(_Fault):
    """The workload's arrival rate is multiplied by ``factor`` (open-loop Poisson, schedule and
    on/off workloads)."""

    kind: Literal["spike"] = "spike"
    workload: str
    factor: float = Field(gt=0)


class ReshardEvent(BaseModel):
    """The target database's shard map changes ``at`` a time to ``shards`` shards (adding or
    removing shards); the fraction of keys that move is recorded as a ``reshard`` event.
    Instantaneous: it has no duration. ``boundaries`` gives the new split keys of a
    range-sharded database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Duration = Field(ge=0, description="When the shard map changes.")
    kind: Literal["reshard"] = "reshard"
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    shards: int = Field(ge=1, le=10_000)
    boundaries: list[int] | None = None

    @property
    def end(self) -> float:
        """An instantaneous change ends when it starts."""
        return self.at


class RebuildEvent(BaseModel):
    """The target read model's projection is rebuilt from ``at``: its state is dropped and the
    event store's whole log is replayed from the first event, at ``replay_rate`` events per
    second (omitted: one event at a time, each taking a draw of the read model's
    ``apply_time``), until the replay reaches the end of the growing log. It lasts as long as
    that takes, so it has no ``duration``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Duration = Field(ge=0, description="When the rebuild starts.")
    kind: Literal["rebuild"] = "rebuild"
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    replay_rate: Rate | None = Field(None, gt=0)

    @property
    def end(self) -> float:
        """Recovery is measured from the start (the rebuild's own end is in the events)."""
        return self.at


Fault = Annotated[
    CrashFault | SlowFault | ErrorFault | LatencyFault | FlushFault | PartitionFault
    | SpikeFault | ReshardEvent | RebuildEvent | RegionPartitionFault | RegionOutageFault,
    Field(discriminator="kind"),
]
"""One fault: ``{at: 60s, duration: 15s, kind: crash, target: db[2]}``."""

INSTANCE_FAULTS = ("crash", "slow", "error", "latency", "flush")
