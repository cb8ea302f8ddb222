"""Parameters of ``kind: read_model`` and its ``rebuild`` timeline event."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar, Literal, Self

from pydantic import Field, model_validator

from simulator.calls import NAME_PATTERN
from simulator.components.event_store.params import EventStoreParams
from simulator.components.params import ComponentParams, KeyPath
from simulator.distributions import Constant, Distribution
from simulator.kind import TimelineEvent
from simulator.workloads import Rate


class ReadModelParams(ComponentParams):
    """Parameters of ``kind: read_model``.

    Parameters
    ----------
    store
        The ``event_store`` whose events this read model projects (and against whose
        committed versions its staleness is measured). Not a call: the read model never
        calls it, so a store may also publish to the read model directly (an inline,
        synchronous projection).
    workers
        Requests (queries and applies) served at once: connections to the read database.
    queue_limit
        Requests allowed to wait for a worker; beyond it a request is ``rejected``.
        Omitted: unbounded.
    read_time
        Time a query takes, seconds (times the request's ``work``).
    apply_time
        Time applying one event takes (updating the denormalised row), seconds.
    apply_ops
        Operations that apply an event (a projector's calls); every other operation is a
        query.
    reads_during_rebuild
        ``serve``: queries during a rebuild are answered from the partly rebuilt state (and
        measured stale where it is behind); ``reject``: they are refused (status
        ``rejected``), as a projection taken offline for its rebuild.
    """

    kind: Literal["read_model"] = "read_model"
    store: str = Field(pattern=NAME_PATTERN)
    workers: int = Field(8, ge=1, le=1_000_000)
    queue_limit: int | None = Field(None, ge=0)
    read_time: Distribution = Field(default_factory=lambda: Constant(value=0.001))
    apply_time: Distribution = Field(default_factory=lambda: Constant(value=0.001))
    apply_ops: list[str] = Field(default_factory=lambda: ["apply"], min_length=1)
    reads_during_rebuild: Literal["serve", "reject"] = "serve"
    refuses_calls: ClassVar[str | None] = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.replicas != 1:
            raise ValueError("replicas must be 1: a read model is one logical store (give it "
                             "more workers)")
        return self

    def diagram_lines(self) -> list[str]:
        return [f"{self.workers} workers"]

    def related(self) -> Iterable[tuple[str, str]]:
        yield "projects", self.store

    def cross_check(self, components: dict[str, ComponentParams]) -> Iterable[tuple[KeyPath, str]]:
        store = components.get(self.store)
        if store is None:
            close = difflib.get_close_matches(self.store, list(components), n=1, cutoff=0.6)
            yield ("store",), (f"unknown component {self.store!r}"
                               + (f"; did you mean {close[0]!r}?" if close else ""))
        elif not isinstance(store, EventStoreParams):
            yield ("store",), f"must be an event_store; {self.store!r} is a {store.kind}"


class RebuildEvent(TimelineEvent):
    """The target read model's projection is rebuilt from ``at``: its state is dropped and the
    event store's whole log is replayed from the first event, at ``replay_rate`` events per
    second (omitted: one event at a time, each taking a draw of the read model's
    ``apply_time``), until the replay reaches the end of the growing log. It lasts as long as
    that takes, so it has no ``duration``; recovery is measured from its start (the
    rebuild's own end is in the events)."""

    kind: Literal["rebuild"] = "rebuild"
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    replay_rate: Rate | None = Field(None, gt=0)

    def fire(self, instances: list[Any], timeline: Any) -> None:
        """Start the rebuild of the read model."""
        instances[0].rebuild(self)
