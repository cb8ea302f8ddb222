"""Faults on the scenario's timeline: what breaks, when, and for how long.

Each fault starts ``at`` a time and lasts ``duration`` (omitted: to the end of the run). Targets
name a component (every instance) or one instance (``db[2]``). Faults are behaviour, not flags:
a crashed instance fails the requests it holds and refuses (or silently drops) new ones; a
slowed instance keeps what waits for it; a partition fails exactly the calls that cross it.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from simulator.distributions import Distribution, Duration

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
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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

    ``node`` crashes one node of an instance made of several (a replicated shard: ``leader``,
    whichever node leads when the fault starts, or ``followerN``, the node built as the N-th
    follower) instead of the whole instance; kinds whose instances have nodes say so."""

    kind: Literal["crash"] = "crash"
    target: str = Field(pattern=TARGET_PATTERN)
    mode: Literal["refuse", "black_hole"] = "refuse"
    node: str | None = None


class SlowFault(_Fault):
    """The target works ``factor`` times slower (the time it spends on each request is
    multiplied)."""

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


#: The faults every scenario accepts; the kinds add their timeline events
#: (:func:`simulator.registry.timeline_events`) to the scenario's ``faults`` list.
GENERIC_FAULTS: tuple[type[BaseModel], ...] = (
    CrashFault, SlowFault, ErrorFault, LatencyFault, PartitionFault, SpikeFault,
    RegionPartitionFault, RegionOutageFault)

Fault = Annotated[
    CrashFault | SlowFault | ErrorFault | LatencyFault | PartitionFault | SpikeFault
    | RegionPartitionFault | RegionOutageFault,
    Field(discriminator="kind"),
]
"""One generic fault: ``{at: 60s, duration: 15s, kind: crash, target: api[2]}``."""
