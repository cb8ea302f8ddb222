"""Parameters of ``kind: event_store``: load cost, conflicts, snapshots, publishing."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.calls import CallSpec
from simulator.components.params import ComponentParams, KeyPath
from simulator.distributions import Constant, Distribution, Duration


class LoadCost(BaseModel):
    """What loading (rehydrating) an aggregate costs.

    Parameters
    ----------
    base
        Fixed part, seconds: the round trip, reading the snapshot.
    per_event
        Added per event replayed (read and applied to the state), seconds.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    base: Duration = Field(0.001, ge=0)
    per_event: Duration = Field(0.0001, ge=0)


class EventStoreParams(ComponentParams):
    """Parameters of ``kind: event_store``.

    Parameters
    ----------
    workers
        Commands handled at once (handler threads, each holding a connection to the store);
        a worker is held for the whole command, retries and publish included.
    queue_limit
        Commands allowed to wait for a worker; beyond it a command is ``rejected`` at once.
        Omitted: unbounded.
    load
        Cost of loading an aggregate: ``base`` + ``per_event`` x events replayed (seconds).
    decide_time
        Business logic on the loaded state, seconds (times the request's ``work``).
    append_time
        Writing the event, seconds; the version check and the commit happen at its end.
    snapshot_every
        Write a snapshot when a commit brings an aggregate to a multiple of this many versions
        (omitted: never; every load replays the aggregate's whole history).
    snapshot_time
        Time the snapshot write takes (the worker waits for it; default 1 ms); the snapshot
        is used by loads that start after it is written.
    conflict_retries
        Times a command that lost the version check reloads and tries again before failing
        with status ``conflict``.
    retry_backoff
        Delay before such a retry, seconds (a jittered distribution spreads the retries of
        commands that collided).
    publish
        Where each committed event is published (a queue or a topic, optionally with
        policies); the command waits for the publish. Omitted: events are only stored.
    query_ops
        Operations that only load the aggregate and answer its version (a strongly
        consistent read from the write side); every other operation is a command.
    """

    kind: Literal["event_store"] = "event_store"
    reference_labels: ClassVar[dict[str, str]] = {"publish": "publishes"}
    workers: int = Field(8, ge=1, le=1_000_000)
    queue_limit: int | None = Field(None, ge=0)
    load: LoadCost = LoadCost()
    decide_time: Distribution = Field(default_factory=lambda: Constant(value=0.0))
    append_time: Distribution = Field(default_factory=lambda: Constant(value=0.001))
    snapshot_every: int | None = Field(None, ge=1, le=10**9)
    snapshot_time: Distribution | None = None
    conflict_retries: int = Field(3, ge=0, le=1000)
    retry_backoff: Distribution = Field(default_factory=lambda: Constant(value=0.0))
    publish: CallSpec | None = None
    query_ops: list[str] = Field(default_factory=lambda: ["read"])

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.replicas != 1:
            raise ValueError("replicas must be 1: an event store is one logical log (give it "
                             "more workers for more command handlers)")
        if self.snapshot_time is not None and self.snapshot_every is None:
            raise ValueError("snapshot_time needs snapshot_every (no snapshot is ever written)")
        return self

    def diagram_lines(self) -> list[str]:
        lines = [f"{self.workers} workers"]
        if self.snapshot_every is not None:
            lines.append(f"snapshot every {self.snapshot_every}")
        return lines

    def references(self) -> Iterable[tuple[KeyPath, str]]:
        if self.publish is not None:
            for rel, name in self.publish.references():
                yield ("publish", *rel), name
