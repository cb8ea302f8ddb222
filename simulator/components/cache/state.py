"""What the concerns of a cache instance share: its state, declared once."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from simpy import Event

from simulator.components.base import (
    Component,
    Target,
)
from simulator.components.edge import Bound
from simulator.messages import Request

if TYPE_CHECKING:
    from simulator.components.cache.patterns import Pattern


class CacheState(Component):
    """The state of one cache instance that its concerns share (set up by
    :class:`~simulator.components.cache.cache.Cache`): the eviction policy and entries, expiry
    heap, the backing call, pattern settings, counters. The concerns are mixins over it:
    serving reads and writes (:mod:`.serving`), entries and expiry (:mod:`.entries`),
    write-behind (:mod:`.write_behind`)."""

    pattern: Any
    _pattern: Pattern
    capacity: float
    _policy: Any
    _entries: Any
    _touch: Any
    _on_miss: Any
    _ttl: Any
    _reset_on_access: Any
    _expires: dict[int, float] | None
    _keep: Any
    _heap: list[tuple[float, int]]
    _hit_delay: Any
    _miss_delay: Any
    _write_ops: Any
    _coalesce: Any
    _loading: dict[int, Event]
    _beta: Any
    _load_time: dict[int, float]
    _exp1: Any
    _flush_interval: Any
    _flush_batch: Any
    _backing: Bound | None
    _backing_target: Target | None
    _truth: Callable[[int], int] | None
    hits_total: Any
    misses_total: Any
    coalesced_total: Any
    loads_total: Any
    early_refreshes_total: Any
    evictions_total: Any
    expirations_total: Any
    invalidations_total: Any
    not_admitted_total: Any
    stale_reads_total: Any
    stale_served_total: Any
    writes_total: Any
    failed_total: Any
    flushed_writes_total: Any
    flush_writes_total: Any
    flush_failures_total: Any
    lost_writes_total: Any
    _area: Any
    _seen: Any
    _pending: OrderedDict[int, list[int]]
    _pending_writes: Any
    _flushing: dict[int, int]
    _wake: Event | None
    _rec: Any
    _code: Any
    up: Any
    _black_hole: Any
    _crashable: Any
    _epoch: Any
    _crash_event: Any

    # ---- what one concern asks of another (implemented by the mixins) ------------------
    def committed_version(self, key: int) -> int:
        """The store's latest committed version of ``key`` (:class:`.cache.Cache`)."""
        raise NotImplementedError

    def _write_back(self, req: Request, key: int) -> None:
        """Queue an acknowledged write for the flusher (:mod:`.write_behind`)."""
        raise NotImplementedError
