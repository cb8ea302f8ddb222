"""One cache instance: set-up, wiring, gauges and faults; serving, entries and
write-behind are the mixins it combines."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, cast

from simpy import Event

from simulator.calls import CallSpec
from simulator.components.base import (
    BuildContext,
    Component,
    Target,
)
from simulator.components.cache.eviction import make_policy
from simulator.components.cache.params import CacheParams
from simulator.components.cache.patterns import PATTERNS
from simulator.components.cache.serving import CacheServing
from simulator.components.cache.tiers import CacheShards, LocalCaches, _delay_sampler, _reader
from simulator.components.cache.write_behind import CacheWriteBehind
from simulator.components.edge import Bound, bind_call
from simulator.messages import ERROR


def _versioned(target: Any) -> bool:
    """Whether a backing target keeps versions (exposes ``committed_version``)."""
    has = getattr(target, "has_versions", None)
    if has is not None:
        return bool(has())
    return callable(getattr(target, "committed_version", None))



class Cache(CacheServing, CacheWriteBehind):
    """A cache in front of a backing store: eviction, TTLs, the seed's patterns, staleness.

    One instance holds its entries and serves the pattern's read and write paths.

    Records one span per request served (arrival = start, end = answer). Gauges: ``size``
    (entries now), ``capacity`` (NaN when unbounded), ``hit_ratio`` (over the last sampling
    interval; NaN without reads), and the cumulative ``hits_total``, ``misses_total`` (early
    refreshes and coalesced reads included), ``coalesced_total`` (misses that waited for a load
    in flight), ``loads_total`` (store reads), ``early_refreshes_total``, ``evictions_total``,
    ``expirations_total``, ``invalidations_total``, ``not_admitted_total`` (perfect LFU),
    ``stale_reads_total`` (reads answered with a version older than the committed one),
    ``writes_total``, ``stale_served_total`` (``stale_if_error`` answers),
    ``entries_time_total`` (integral of the number of live entries over time: mean occupancy
    over any window from two samples), ``failed_total``; with ``write_behind``
    also ``pending_writes`` (acknowledged, not yet handed to the store), ``flushed_writes_total``,
    ``flush_writes_total`` (store write calls), ``flush_failures_total``, ``lost_writes_total``.

    Expired entries leave at their expiry instant (purged lazily: before each insertion, at each
    sample, or when read), so they never hold capacity and occupancy is exact; with
    ``stale_if_error`` they leave that much later.

    Faults: ``crash`` empties the cache, fails the requests it holds at that instant, loses the
    unflushed writes (event ``lost_writes``), and refuses or black-holes requests until it
    recovers, empty; ``flush`` empties it at once (write-behind writes still waiting stay
    queued; loads in flight still fill it when they return).
    """

    Params = CacheParams

    def __init__(self, group: str, index: int, params: CacheParams, ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        p = params
        self.pattern = p.pattern
        self._pattern = PATTERNS[p.pattern]
        self.capacity: float = math.inf if p.capacity is None else float(p.capacity)
        uniform = ctx.streams.batched(self.name, "evict", lambda rng, k: rng.random(k))
        self._policy = make_policy(p.policy, p.lfu_counts, uniform)
        self._entries = self._policy.entries
        self._touch = self._policy.touch
        self._on_miss = self._policy.on_miss
        self._ttl = p.ttl
        self._reset_on_access = p.ttl_mode == "after_access"
        self._expires: dict[int, float] | None = {} if p.ttl is not None else None
        self._keep = p.stale_if_error or 0.0  # how long expired entries are kept
        self._heap: list[tuple[float, int]] = []
        self._hit_delay = _delay_sampler(ctx, group, "hit_latency", p.hit_latency)
        miss = p.miss_latency if p.miss_latency is not None else p.hit_latency
        self._miss_delay = _delay_sampler(ctx, group, "miss_latency", miss)
        self._write_ops = frozenset(p.write_ops)
        self._coalesce = p.coalesce
        self._loading: dict[int, Event] = {}
        self._beta = p.early_expiration.beta if p.early_expiration is not None else None
        self._load_time: dict[int, float] = {}
        self._exp1 = ctx.streams.batched(self.name, "early_expiration",
                                         lambda rng, k: rng.exponential(1.0, k))
        self._flush_interval = p.flush_interval if p.flush_interval is not None else 1.0
        self._flush_batch = p.flush_batch if p.flush_batch is not None else 100
        self._backing: Bound | None = None
        self._backing_target: Target | None = None
        self._truth: Callable[[int], int] | None = None
        # counters (gauges)
        self.hits_total = 0
        self.misses_total = 0
        self.coalesced_total = 0
        self.loads_total = 0
        self.early_refreshes_total = 0
        self.evictions_total = 0
        self.expirations_total = 0
        self.invalidations_total = 0
        self.not_admitted_total = 0
        self.stale_reads_total = 0
        self.stale_served_total = 0
        self.writes_total = 0
        self.failed_total = 0
        self.flushed_writes_total = 0
        self.flush_writes_total = 0
        self.flush_failures_total = 0
        self.lost_writes_total = 0
        self._area = 0.0  # integral of live entries: -t at insertion, +t at removal
        self._seen = (0, 0)  # (hits, misses) at the last hit_ratio sample
        # write-behind: key -> [writes coalesced, version]; oldest first
        self._pending: OrderedDict[int, list[int]] = OrderedDict()
        self._pending_writes = 0
        self._flushing: dict[int, int] = {}  # key -> version being written to the store
        self._wake: Event | None = None
        rec = ctx.recorder
        self._rec = rec if ctx.record_spans else None
        self._code = rec.instance_code(group, self.name)
        # faults
        self.up = True
        self._black_hole = False
        self._crashable = False
        self._epoch = 0
        self._crash_event = Event(ctx.env)

    # ---- wiring and versions ------------------------------------------------------------
    @classmethod
    def group_target(cls, name: str, members: list[Component], ctx: BuildContext) -> Target:
        if len(members) == 1:
            return members[0]
        caches = cast(list[Cache], members)
        local_to = caches[0].params.local_to
        if local_to is None:
            return CacheShards(name, caches)
        return LocalCaches(name, caches, local_to)

    def wire(self, resolve: Callable[[str], Target]) -> None:
        spec: CallSpec = self.params.backing
        target = resolve(spec.to)
        self._backing_target = target
        self._backing = bind_call(spec, target, self.ctx, (self.group, self.name),
                                  resolve=resolve)

    def start(self) -> None:
        target = self._backing_target
        if target is not None and _versioned(target):
            self._truth = target.committed_version  # type: ignore[attr-defined]
        if self._pattern.flushes:
            self.env.process(self._flusher())

    def has_versions(self) -> bool:
        """Whether the store behind this cache keeps versions."""
        return self._backing_target is not None and _versioned(self._backing_target)

    def committed_version(self, key: int) -> int:
        """The latest committed version of ``key`` in the store behind this cache (0 if the
        store keeps no versions); a cache in front of this one measures staleness against it."""
        truth = self._truth
        return truth(key) if truth is not None else 0

    # ---- gauges -------------------------------------------------------------------------
    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        cap = self.capacity if math.isfinite(self.capacity) else math.nan
        yield "capacity", "", lambda: cap
        yield "size", "", self._size
        yield "hit_ratio", "", self._window_hit_ratio
        yield "entries_time_total", "", self._entries_time
        for counter in ("hits_total", "misses_total", "coalesced_total", "loads_total",
                        "early_refreshes_total", "evictions_total", "expirations_total",
                        "invalidations_total", "not_admitted_total", "stale_reads_total",
                        "writes_total", "failed_total", "lost_writes_total",
                        "stale_served_total"):
            yield counter, "", _reader(self, counter)
        if self._pattern.flushes:
            yield "pending_writes", "", lambda: self._pending_writes
            for counter in ("flushed_writes_total", "flush_writes_total",
                            "flush_failures_total"):
                yield counter, "", _reader(self, counter)

    def _size(self) -> float:
        if self._expires is not None:
            self._purge(self.env._now)
        return len(self._entries)

    def _entries_time(self) -> float:
        now = self.env._now
        if self._expires is not None:
            self._purge(now)
        return self._area + len(self._entries) * now

    def _window_hit_ratio(self) -> float:
        hits, misses = self.hits_total, self.misses_total
        h0, m0 = self._seen
        self._seen = (hits, misses)
        reads = hits - h0 + misses - m0
        return (hits - h0) / reads if reads else math.nan


    # ---- faults -------------------------------------------------------------------------
    def prepare_faults(self, kinds: set[str]) -> None:
        self._crashable = "crash" in kinds

    def crash(self, black_hole: bool) -> None:
        env = self.env
        self.up = False
        self._black_hole = black_hole
        self._epoch += 1
        lost = self._pending_writes
        if lost:
            self.lost_writes_total += lost
            self.ctx.recorder.event(env._now, self.group, self.name, "lost_writes",
                                    f"{lost} unflushed writes of {len(self._pending)} keys")
        self._pending.clear()
        self._pending_writes = 0
        self._clear()
        waiting = list(self._loading.values())
        self._loading.clear()
        for ev in waiting:
            ev.succeed((ERROR, -1))
        crashed, self._crash_event = self._crash_event, Event(env)
        crashed.succeed()

    def recover(self) -> None:
        self.up = True

    def flush(self) -> None:
        self._clear()
