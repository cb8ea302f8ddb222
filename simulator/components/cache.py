"""A cache in front of a backing store: eviction policies, TTLs, the caching patterns of the
seed document, stampede protection, tiers, and measured staleness.

Patterns (``pattern``), as the seed document describes them:

``cache_aside``
    The application does the work; this component models the application's cache logic as it
    would run it. A read looks the key up (``hit_latency`` if found, ``miss_latency`` if not);
    on a miss the application reads the backing store, then stores the value in the cache with
    a ``set`` round trip (``hit_latency``) and answers: miss latency = ``miss_latency`` +
    store read + ``hit_latency``. The value is in the cache when the ``set`` round trip ends.
    A write goes to the store, then deletes the key (a ``del`` round trip, ``hit_latency``);
    the key is gone when that round trip ends. A read that loaded an old version may put it
    back after a concurrent write deleted the key: the classic cache-aside race, measured.
``read_through``
    Reads go to the cache, which loads a missing key from the store itself and answers: miss
    latency = ``miss_latency`` + store read. Writes pass through the cache to the store
    (``hit_latency`` + store write) and the key is invalidated when the store has committed.
``write_through``
    Reads as ``read_through``; a write goes through the cache to the store and, once committed,
    the cache holds the new version (write-allocate): ``hit_latency`` + store write.
``write_behind``
    Reads as ``read_through``; a write updates the cache and is answered after
    ``hit_latency``; the store gets it later. A flush round starts ``flush_interval`` after the
    previous one ended, or as soon as ``flush_batch`` keys are waiting, and writes the keys
    waiting when it starts, oldest first, in batches of ``flush_batch``: one store ``write``
    call per key (writes to the same key since its last flush are coalesced into one), the
    calls of a batch concurrently, batch after batch; writes arriving meanwhile wait for the
    next round. Writes not yet handed to the store when the cache crashes
    are lost, and counted (``lost_writes_total``, and an event).

Versions: the store keeps a committed version per key and sets ``request.version`` on the reads
it serves; a cache keeps the version it was filled with. Every read the cache answers is checked
against the truth, the backing's ``committed_version(key)`` at that instant: an older version is
a stale read (``request.stale``, ``stale_reads_total``). A backing without versions (a plain
``service``) is treated as version 0 for every key: nothing is ever stale.

Modelling assumptions: a cache instance is a pure delay with unlimited concurrency (no queue,
no workers); capacity is counted in entries (all of the same size); a write-behind cache holds
the newest value of the keys it has not yet flushed, with version ``committed + 1`` (the
version the store will have after the flush), and a read that misses on such a key (evicted
meanwhile) loads the store's older value, as real write-behind caches do.
"""

from __future__ import annotations

import difflib
import heapq
import math
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterable
from typing import Any, ClassVar, Literal, Self, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator
from simpy import AllOf, AnyOf, Event, Timeout

from simulator.calls import Call, CallSpec
from simulator.components.base import (
    BuildContext,
    Component,
    ComponentParams,
    Handler,
    KeyPath,
    Target,
)
from simulator.components.edge import Bound, bind_call
from simulator.distributions import Constant, Distribution, Duration
from simulator.messages import ERROR, FALLBACK, HIT, MISS, OK, Request
from simulator.registry import register

Pattern = Literal["cache_aside", "read_through", "write_through", "write_behind"]
Policy = Literal["lru", "lfu", "fifo", "random", "ttl"]


class EarlyExpiration(BaseModel):
    """Probabilistic early expiration (XFetch).

    A read that finds an entry with expiry ``e`` at time ``t`` reloads it early (as a miss)
    when ``t + beta * delta * X >= e``, ``X ~ Exp(1)``, ``delta`` the time the entry's last load
    took. Refreshes spread out before the expiry instead of piling up after it (Vattani,
    Chierichetti and Lowenstein, "Optimal probabilistic cache stampede prevention", VLDB 2015).

    Parameters
    ----------
    beta
        Eagerness; 1 is the paper's optimum, larger refreshes earlier.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    beta: float = Field(1.0, gt=0, le=100)


class CacheParams(ComponentParams):
    """Parameters of ``kind: cache``.

    Parameters
    ----------
    backing
        The backing store: a component name or a call (``{to: db, timeout: 50ms, retry:
        {...}}``) whose policies apply to every load and store write. The cache chooses the
        operation (``read`` for loads, ``write`` for writes), so ``op`` must not be given.
    pattern
        ``cache_aside``, ``read_through``, ``write_through`` or ``write_behind`` (see the module
        documentation for what each does and costs).
    policy
        Eviction when full: ``lru`` (least recently used), ``lfu`` (least frequently used,
        least recently used among equals), ``fifo`` (oldest insertion), ``random``, or ``ttl``
        (no capacity bound: entries leave only when they expire).
    capacity
        Entries one instance holds (required except with ``policy: ttl``).
    lfu_counts
        ``in_cache``: an entry's count starts at 1 when it enters and is forgotten when it
        leaves (what LFU caches do). ``all_keys``: counts are kept for every key ever read
        ("perfect" LFU) and a missed key enters a full cache only if its count beats the lowest
        count in the cache; under independent requests it converges to the static cache of the
        ``capacity`` most popular keys.
    ttl
        Time to live of an entry, seconds (none: entries never expire).
    ttl_mode
        ``after_write``: expiry = time the entry was filled or written + ``ttl``; hits do not
        extend it (Caffeine's expireAfterWrite, a non-resetting TTL). ``after_access``: every
        hit, fill or write resets the expiry to now + ``ttl`` (expireAfterAccess).
    stale_if_error
        Keep an entry this long after it expires (needs ``ttl``), seconds, as HTTP's
        ``stale-if-error`` (RFC 5861) and nginx's ``proxy_cache_use_stale error`` do. A read of
        an expired entry still loads from the backing; only if that load fails is the kept
        value served, with status ``fallback`` (counted in ``stale_served_total``; the read is
        also ``stale`` if the store has a newer version). Kept entries hold capacity until they
        leave, and a call edge's ``fallback: {kind: stale, cache: ...}`` can serve them too.
    hit_latency
        Round trip of a lookup that finds the key, seconds (also the cost of a ``set`` or
        ``del`` round trip in cache-aside, and of a write's hop to the cache).
    miss_latency
        Round trip of a lookup that does not find the key, seconds (default: ``hit_latency``).
    coalesce
        Request coalescing: one load per key in flight; reads that miss meanwhile wait for it
        and share its result (counted in ``coalesced_total``), as singleflight or memcache
        leases do.
    early_expiration
        Probabilistic early expiration (XFetch, ``{beta: 1}``); needs ``ttl``.
    write_ops
        Operations treated as writes (default ``[write]``). The operation ``invalidate``
        removes the key (after ``hit_latency``); every other operation is a read.
    flush_interval
        ``write_behind``: pause between the end of one flush round and the start of the next,
        seconds (default 1 s).
    flush_batch
        ``write_behind``: keys written per batch, and the number of waiting keys that starts a
        flush round early (default 100).
    local_to
        Makes this a per-instance local cache of the named component: instance ``i`` of that
        component calls instance ``i`` of this cache (so ``replicas`` must match). Without it, a
        replicated cache is a sharded cluster: each key lives on one instance, chosen by a hash
        of the key (as memcached and Redis cluster clients do).
    """

    kind: Literal["cache"] = "cache"
    keeps_entries: ClassVar[bool] = True
    backing: Call
    pattern: Pattern = "read_through"
    policy: Policy = "lru"
    capacity: int | None = Field(None, ge=1, le=100_000_000)
    lfu_counts: Literal["in_cache", "all_keys"] = "in_cache"
    ttl: Duration | None = Field(None, gt=0)
    ttl_mode: Literal["after_write", "after_access"] = "after_write"
    stale_if_error: Duration | None = Field(None, gt=0)
    hit_latency: Distribution = Field(default_factory=lambda: Constant(value=0.0))
    miss_latency: Distribution | None = None
    coalesce: bool = False
    early_expiration: EarlyExpiration | None = None
    write_ops: list[str] = Field(default_factory=lambda: ["write"])
    flush_interval: Duration | None = Field(None, gt=0)
    flush_batch: int | None = Field(None, ge=1, le=1_000_000)
    local_to: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.policy == "ttl":
            if self.capacity is not None:
                raise ValueError("capacity: policy ttl has no capacity (entries leave only when "
                                 "they expire); use lru, lfu, fifo or random with a ttl for a "
                                 "bounded cache")
            if self.ttl is None:
                raise ValueError("ttl: policy ttl needs a ttl")
        elif self.capacity is None:
            raise ValueError(f"capacity: policy {self.policy} needs a capacity (entries)")
        if self.lfu_counts != "in_cache" and self.policy != "lfu":
            raise ValueError("lfu_counts applies only to policy lfu")
        if self.stale_if_error is not None and self.ttl is None:
            raise ValueError("stale_if_error needs a ttl (it keeps entries after they expire)")
        if self.early_expiration is not None and self.ttl is None:
            raise ValueError("early_expiration needs a ttl (it refreshes entries before they "
                             "expire)")
        if self.pattern != "write_behind":
            for name in ("flush_interval", "flush_batch"):
                if getattr(self, name) is not None:
                    raise ValueError(f"{name} applies only to pattern write_behind")
        if self.backing.op is not None:
            raise ValueError("backing: the cache chooses the operation (read for loads, write "
                             "for writes); remove op")
        if "invalidate" in self.write_ops:
            raise ValueError("write_ops: invalidate is the cache's own operation")
        return self

    def references(self) -> Iterable[tuple[KeyPath, str]]:
        yield ("backing",), self.backing.to

    def cross_check(self, components: dict[str, ComponentParams]) -> Iterable[tuple[KeyPath, str]]:
        if self.local_to is None:
            return
        caller = components.get(self.local_to)
        if caller is None:
            close = difflib.get_close_matches(self.local_to, list(components), n=1)
            yield ("local_to",), (f"unknown component {self.local_to!r}"
                                  + (f"; did you mean {close[0]!r}?" if close else ""))
        elif caller.replicas != self.replicas:
            yield ("replicas",), (f"a cache local to {self.local_to!r} needs one instance per "
                                  f"instance of it: replicas must be {caller.replicas}, got "
                                  f"{self.replicas}")


# --------------------------------------------------------------------------------------------
# eviction policies: which entries stay. ``entries`` maps key -> cached version.


class _LRU:
    """Least recently used: an OrderedDict in recency order (oldest first)."""

    def __init__(self) -> None:
        self.entries: OrderedDict[int, int] = OrderedDict()
        self.touch: Callable[[int], Any] | None = self.entries.move_to_end
        self.on_miss: Callable[[int], Any] | None = None

    def insert(self, key: int, version: int) -> None:
        self.entries[key] = version

    def update(self, key: int, version: int) -> None:
        self.entries[key] = version
        self.entries.move_to_end(key)

    def evict(self) -> int:
        return self.entries.popitem(last=False)[0]

    def remove(self, key: int) -> None:
        del self.entries[key]

    def admit(self, key: int) -> bool:
        return True

    def clear(self) -> None:
        self.entries.clear()


class _FIFO(_LRU):
    """First in, first out: insertion order; hits and updates do not move an entry."""

    def __init__(self) -> None:
        super().__init__()
        self.touch = None

    def update(self, key: int, version: int) -> None:
        self.entries[key] = version


class _Random:
    """Random replacement: a key list with swap-remove, victims drawn uniformly."""

    def __init__(self, uniform: Callable[[], float]) -> None:
        self.entries: dict[int, int] = {}
        self.touch: Callable[[int], Any] | None = None
        self.on_miss: Callable[[int], Any] | None = None
        self._keys: list[int] = []
        self._pos: dict[int, int] = {}
        self._uniform = uniform

    def insert(self, key: int, version: int) -> None:
        self._pos[key] = len(self._keys)
        self._keys.append(key)
        self.entries[key] = version

    def update(self, key: int, version: int) -> None:
        self.entries[key] = version

    def evict(self) -> int:
        key = self._keys[int(self._uniform() * len(self._keys))]
        self.remove(key)
        return key

    def remove(self, key: int) -> None:
        i = self._pos.pop(key)
        last = self._keys.pop()
        if last != key:
            self._keys[i] = last
            self._pos[last] = i
        del self.entries[key]

    def admit(self, key: int) -> bool:
        return True

    def clear(self) -> None:
        self.entries.clear()
        self._keys.clear()
        self._pos.clear()


class _LFU:
    """Least frequently used, O(1): frequency buckets (count -> keys in recency order).

    ``_min`` is the lowest count in the cache; when ``_min_stale`` it is only a lower bound
    (a removal emptied its bucket) and is recomputed when next needed.
    """

    def __init__(self, all_keys: bool) -> None:
        self.entries: dict[int, int] = {}
        self._count: dict[int, int] = {}
        self._buckets: dict[int, OrderedDict[int, None]] = {}
        self._min = 0
        self._min_stale = False
        self._all_keys = all_keys
        self.touch: Callable[[int], Any] | None = self._touch
        self.on_miss: Callable[[int], Any] | None = self._count_miss if all_keys else None

    def _count_miss(self, key: int) -> None:
        self._count[key] = self._count.get(key, 0) + 1

    def _touch(self, key: int) -> None:
        count, buckets = self._count, self._buckets
        c = count[key]
        b = buckets[c]
        del b[key]
        if not b:
            del buckets[c]
            if c == self._min:  # the bucket existed, so the bound was exact: key is now the min
                self._min = c + 1
                self._min_stale = False
        c += 1
        count[key] = c
        nb = buckets.get(c)
        if nb is None:
            nb = buckets[c] = OrderedDict()
        nb[key] = None

    def insert(self, key: int, version: int) -> None:
        count, buckets = self._count, self._buckets
        c = max(count.get(key, 0), 1) if self._all_keys else 1
        count[key] = c
        first = not self.entries
        self.entries[key] = version
        b = buckets.get(c)
        if b is None:
            b = buckets[c] = OrderedDict()
        b[key] = None
        m = self._min
        if first or c <= m:
            self._min = c
        elif self._min_stale:
            while m not in buckets:  # stops at c at the latest
                m += 1
            self._min = m
        self._min_stale = False

    def update(self, key: int, version: int) -> None:
        self.entries[key] = version

    def _exact_min(self) -> int:
        if self._min_stale and self._buckets:
            self._min = min(self._buckets)
            self._min_stale = False
        return self._min

    def evict(self) -> int:
        m = self._exact_min()
        b = self._buckets[m]
        key = b.popitem(last=False)[0]
        if not b:
            del self._buckets[m]
            self._min_stale = True
        self._forget(key)
        return key

    def remove(self, key: int) -> None:
        c = self._count[key]
        b = self._buckets[c]
        del b[key]
        if not b:
            del self._buckets[c]
            if c == self._min:
                self._min_stale = True
        self._forget(key)

    def _forget(self, key: int) -> None:
        del self.entries[key]
        if not self._all_keys:
            del self._count[key]

    def admit(self, key: int) -> bool:
        if not self._all_keys:
            return True
        return self._count.get(key, 0) > self._exact_min()

    def clear(self) -> None:
        self.entries.clear()
        self._count.clear()
        self._buckets.clear()
        self._min = 0
        self._min_stale = False


class _Unbounded:
    """No eviction (``policy: ttl``): entries leave when they expire or are invalidated."""

    def __init__(self) -> None:
        self.entries: dict[int, int] = {}
        self.touch: Callable[[int], Any] | None = None
        self.on_miss: Callable[[int], Any] | None = None

    def insert(self, key: int, version: int) -> None:
        self.entries[key] = version

    update = insert

    def evict(self) -> int:  # pragma: no cover - capacity is infinite
        raise AssertionError("an unbounded cache never evicts")

    def remove(self, key: int) -> None:
        del self.entries[key]

    def admit(self, key: int) -> bool:
        return True

    def clear(self) -> None:
        self.entries.clear()


_PolicyImpl = _LRU | _Random | _LFU | _Unbounded


def make_policy(policy: str, lfu_counts: str = "in_cache",
                uniform: Callable[[], float] | None = None) -> _PolicyImpl:
    """Return the entry store of an eviction policy (``uniform`` draws victims for random)."""
    if policy == "lru":
        return _LRU()
    if policy == "fifo":
        return _FIFO()
    if policy == "random":
        if uniform is None:
            raise ValueError("random eviction needs a uniform draw")
        return _Random(uniform)
    if policy == "lfu":
        return _LFU(all_keys=lfu_counts == "all_keys")
    if policy == "ttl":
        return _Unbounded()
    raise ValueError(f"unknown policy {policy!r}")


# --------------------------------------------------------------------------------------------
# the component

_CACHE_ASIDE, _READ_THROUGH, _WRITE_THROUGH, _WRITE_BEHIND = (
    "cache_aside", "read_through", "write_through", "write_behind")


def _versioned(target: Any) -> bool:
    """Whether a backing target keeps versions (exposes ``committed_version``)."""
    has = getattr(target, "has_versions", None)
    if has is not None:
        return bool(has())
    return callable(getattr(target, "committed_version", None))


@register("cache")
class Cache(Component):
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
    supported_faults = frozenset({"crash", "flush"})
    spans_regions = False  # shards and local tiers are routed without regard to regions

    def __init__(self, group: str, index: int, params: CacheParams, ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        p = params
        self.pattern = p.pattern
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
        self._backing = bind_call(spec, target, self.ctx, (self.group, self.name))

    def start(self) -> None:
        target = self._backing_target
        if target is not None and _versioned(target):
            self._truth = target.committed_version  # type: ignore[attr-defined]
        if self.pattern == _WRITE_BEHIND:
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
        if self.pattern == _WRITE_BEHIND:
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

    # ---- serving ------------------------------------------------------------------------
    def handle(self, req: Request, op: str) -> Handler:
        env = self.env
        now = env._now
        if not self.up:
            if self._black_hole:
                yield Event(env)  # never answered: only the caller's timeout ends it
            return self._fail(req, op, now)
        if op in self._write_ops:
            return (yield from self._write(req, op, now))
        if op == "invalidate":
            return (yield from self._invalidate_op(req, op, now))
        key = req.key
        version = self._entries.get(key)
        expires = self._expires
        if version is not None and expires is not None:
            exp = expires[key]
            if exp <= now:
                if now < exp + self._keep:  # kept for stale-if-error: load, serve it on failure
                    return (yield from self._miss(req, op, now, version))
                self._expire(key, exp + self._keep)
                version = None
            elif (self._beta is not None
                  and now + self._beta * self._load_time.get(key, 0.0) * self._exp1() >= exp
                  and not (self._coalesce and key in self._loading)):
                self.early_refreshes_total += 1  # XFetch: this read reloads the entry early
                if self._touch is not None:
                    self._touch(key)
                return (yield from self._miss(req, op, now))
            elif self._reset_on_access:
                exp = now + self._ttl_of(key)
                expires[key] = exp
                self._push_expiry(exp, key)
        if version is None:
            return (yield from self._miss(req, op, now))
        if self._touch is not None:
            self._touch(key)
        self.hits_total += 1
        if req.cache == 0:
            req.cache = HIT
        truth = self._truth
        if truth is not None and version < truth(key):
            req.stale = True
            self.stale_reads_total += 1
        req.version = version
        delay = self._hit_delay
        if delay is not None:
            if self._crashable:
                epoch = self._epoch
                yield AnyOf(env, (Timeout(env, delay()), self._crash_event))
                if self._epoch != epoch:
                    return self._fail(req, op, now)
            else:
                yield Timeout(env, delay())
        if self._rec is not None:
            self._span(req, op, now, OK)
        return OK

    def _miss(self, req: Request, op: str, arrival: float, kept: int | None = None) -> Handler:
        """A read that did not find a fresh entry: wait for a load in flight, or load.

        ``kept`` is the version of an expired entry kept for stale-if-error."""
        env = self.env
        key = req.key
        epoch = self._epoch
        self.misses_total += 1
        if req.cache == 0:
            req.cache = MISS
        if self._on_miss is not None and key not in self._entries:
            self._on_miss(key)
        delay = self._miss_delay
        if delay is not None:
            yield from self._sleep(delay())
            if self._epoch != epoch:
                return self._fail(req, op, arrival)
        loading = self._loading
        ev: Event | None = None
        if self._coalesce:
            ev = loading.get(key)
            if ev is not None:
                self.coalesced_total += 1
                yield ev
                status, version = cast(tuple[int, int], ev.value)
                if self._epoch != epoch:
                    return self._fail(req, op, arrival)
                if status == OK:
                    self._answer(req, key, version)
                elif kept is not None:
                    status = self._serve_kept(req, key, status)
                self._span(req, op, arrival, status)
                return int(status)
            ev = loading[key] = Event(env)
        started = env._now
        self.loads_total += 1
        req.version = -1
        if self._crashable:
            status = yield from self._call(req, "read")
        else:
            status = yield from cast(Bound, self._backing)(req, "read")
        if self._epoch != epoch:
            return self._fail(req, op, arrival)
        version = req.version if req.version >= 0 else 0
        if status == OK:
            if self.pattern == _CACHE_ASIDE:
                set_delay = self._hit_delay
                if set_delay is not None:  # the set round trip
                    yield from self._sleep(set_delay())
                    if self._epoch != epoch:
                        return self._fail(req, op, arrival)
                self._fill(key, version, env._now - started, overwrite=True)
            else:
                self._fill(key, version, env._now - started, overwrite=False)
            self._answer(req, key, version)
        if ev is not None:
            if loading.get(key) is ev:
                del loading[key]
            ev.succeed((status, version))
        if status != OK and kept is not None:
            status = self._serve_kept(req, key, status)
        self._span(req, op, arrival, status)
        return status

    def _serve_kept(self, req: Request, key: int, status: int) -> int:
        """The load failed: answer the expired entry if it is still kept (stale-if-error)."""
        version = self.peek(key)
        if version is None:
            return status
        self.stale_served_total += 1
        self._answer(req, key, version)
        return FALLBACK

    def peek(self, key: int) -> int | None:
        """The version of ``key`` this instance holds, fresh or kept for stale-if-error (``None``
        if it holds none or is down). Changes nothing: no recency, no counts."""
        if not self.up:
            return None
        if self._expires is not None:
            self._purge(self.env._now)
        return self._entries.get(key)

    def _answer(self, req: Request, key: int, version: int) -> None:
        """Hand a loaded version to the reader, and measure its staleness now."""
        req.version = version
        truth = self._truth
        if truth is not None and version < truth(key):
            req.stale = True
            self.stale_reads_total += 1

    def _write(self, req: Request, op: str, arrival: float) -> Handler:
        key = req.key
        epoch = self._epoch
        self.writes_total += 1
        pattern = self.pattern
        hop = self._hit_delay
        if pattern == _CACHE_ASIDE:
            status = yield from self._call(req, "write")
            if self._epoch != epoch:
                return self._fail(req, op, arrival)
            if status == OK:
                if hop is not None:  # the del round trip
                    yield from self._sleep(hop())
                    if self._epoch != epoch:
                        return self._fail(req, op, arrival)
                self._invalidate(key)
            self._span(req, op, arrival, status)
            return status
        if hop is not None:  # the write's hop to the cache
            yield from self._sleep(hop())
            if self._epoch != epoch:
                return self._fail(req, op, arrival)
        if pattern == _WRITE_BEHIND:
            self._write_back(req, key)
            self._span(req, op, arrival, OK)
            return OK
        req.version = -1
        status = yield from self._call(req, "write")
        if self._epoch != epoch:
            return self._fail(req, op, arrival)
        if status == OK:
            if pattern == _WRITE_THROUGH:
                version = req.version if req.version >= 0 else self.committed_version(key)
                self._fill(key, version, None, overwrite=True)
                req.version = version
            else:
                self._invalidate(key)
        self._span(req, op, arrival, status)
        return status

    def _invalidate_op(self, req: Request, op: str, arrival: float) -> Handler:
        epoch = self._epoch
        hop = self._hit_delay
        if hop is not None:
            yield from self._sleep(hop())
            if self._epoch != epoch:
                return self._fail(req, op, arrival)
        self._invalidate(req.key)
        self._span(req, op, arrival, OK)
        return OK

    # ---- entries --------------------------------------------------------------------------
    def _ttl_of(self, key: int) -> float:
        """Time to live of ``key``'s entry, seconds (a CDN edge gives asset classes their
        own)."""
        return cast(float, self._ttl)

    def _fill(self, key: int, version: int, load_time: float | None, overwrite: bool) -> None:
        """Put ``key`` at ``version`` in the cache now (evicting if full)."""
        now = self.env._now
        expires = self._expires
        if expires is not None:
            self._purge(now)
        policy = self._policy
        current = self._entries.get(key)
        if current is not None:
            if not overwrite and version < current:
                return  # a newer version is already there (a loader's put-if-newer)
            policy.update(key, version)
        else:
            if len(self._entries) >= self.capacity:
                if not policy.admit(key):
                    self.not_admitted_total += 1
                    return
                victim = policy.evict()
                self._forget(victim, now)
                self.evictions_total += 1
            policy.insert(key, version)
            self._area -= now
        if expires is not None:
            exp = now + self._ttl_of(key)
            expires[key] = exp
            self._push_expiry(exp, key)
        if self._beta is not None and load_time is not None:
            self._load_time[key] = load_time

    def _forget(self, key: int, at: float) -> None:
        """Bookkeeping of an entry that left at ``at`` (the policy has removed it)."""
        self._area += at
        if self._expires is not None:
            del self._expires[key]
        if self._beta is not None:
            self._load_time.pop(key, None)

    def _remove(self, key: int, at: float) -> None:
        self._policy.remove(key)
        self._forget(key, at)

    def _expire(self, key: int, at: float) -> None:
        self._remove(key, at)
        self.expirations_total += 1

    def _invalidate(self, key: int) -> None:
        if key in self._entries:
            self._remove(key, self.env._now)
            self.invalidations_total += 1

    def _push_expiry(self, exp: float, key: int) -> None:
        heap = self._heap
        heapq.heappush(heap, (exp, key))
        expires = cast(dict[int, float], self._expires)
        if len(heap) > 2 * len(expires) + 1024:  # drop records superseded by later expiries
            self._heap = [(e, k) for k, e in expires.items()]
            heapq.heapify(self._heap)

    def _purge(self, now: float) -> None:
        """Remove every entry whose expiry has passed, as of its expiry instant."""
        heap = self._heap
        expires = cast(dict[int, float], self._expires)
        keep = self._keep
        while heap and heap[0][0] + keep <= now:
            exp, key = heapq.heappop(heap)
            if expires.get(key) == exp:
                self._expire(key, exp + keep)

    def _clear(self) -> None:
        now = self.env._now
        self._area += len(self._entries) * now
        self._policy.clear()
        if self._expires is not None:
            self._expires.clear()
            self._heap.clear()
        self._load_time.clear()

    # ---- write-behind ---------------------------------------------------------------------
    def _write_back(self, req: Request, key: int) -> None:
        pending = self._pending.get(key)
        if pending is not None:
            pending[0] += 1
            version = pending[1]
        else:
            truth = self._truth
            version = (max(truth(key), self._flushing.get(key, -1)) + 1 if truth is not None
                       else 0)
            self._pending[key] = [1, version]
        self._pending_writes += 1
        self._fill(key, version, None, overwrite=True)
        req.version = version
        wake = self._wake
        if wake is not None and len(self._pending) >= self._flush_batch:
            self._wake = None
            wake.succeed()

    def _flusher(self) -> Generator[Event, Any, None]:
        env = self.env
        while True:
            wake = self._wake = Event(env)
            yield AnyOf(env, (Timeout(env, self._flush_interval), wake))
            self._wake = None
            pending = self._pending
            todo = len(pending)  # this round: the keys waiting now; later writes wait for the next
            while todo > 0 and pending:
                epoch = self._epoch
                calls = []
                n = min(self._flush_batch, todo, len(pending))
                todo -= n
                for _ in range(n):
                    key, (writes, version) = pending.popitem(last=False)
                    self._pending_writes -= writes
                    self._flushing[key] = version
                    calls.append(env.process(self._flush_key(key, writes, version, epoch)))
                yield AllOf(env, calls)

    def _flush_key(self, key: int, writes: int, version: int, epoch: int
                   ) -> Generator[Event, Any, None]:
        """Write one key's coalesced writes to the store; put them back if that fails."""
        assert self._backing is not None
        req = Request(-1, -1, "write", key, 1.0, self.env._now)
        status = yield from self._backing(req, "write")
        if self._flushing.get(key) == version:
            del self._flushing[key]
        self.flush_writes_total += 1
        if status == OK:
            self.flushed_writes_total += writes
        elif self._epoch != epoch or not self.up:  # crashed meanwhile: nobody retries them
            self.lost_writes_total += writes
            self.ctx.recorder.event(self.env._now, self.group, self.name, "lost_writes",
                                    f"{writes} writes of key {key}: flush failed after a crash")
        else:
            self.flush_failures_total += 1
            pending = self._pending.get(key)
            if pending is None:
                self._pending[key] = [writes, version]
                self._pending.move_to_end(key, last=False)
            else:
                pending[0] += writes
            self._pending_writes += writes

    # ---- waiting, calling, failing ----------------------------------------------------------
    def _sleep(self, delay: float) -> Generator[Event, Any, None]:
        if self._crashable:
            yield AnyOf(self.env, (Timeout(self.env, delay), self._crash_event))
        else:
            yield Timeout(self.env, delay)

    def _call(self, req: Request, op: str) -> Handler:
        assert self._backing is not None
        if not self._crashable:
            return (yield from self._backing(req, op))
        call = self.env.process(self._backing(req, op))
        yield AnyOf(self.env, (call, self._crash_event))
        return cast(int, call.value) if call.triggered else ERROR

    def _span(self, req: Request, op: str, arrival: float, status: int) -> None:
        if self._rec is not None:
            self._rec.span(req.id, self._code, op, arrival, arrival, self.env._now, status)

    def _fail(self, req: Request, op: str, arrival: float) -> int:
        self.failed_total += 1
        self._span(req, op, arrival, ERROR)
        return ERROR

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


def _reader(obj: object, attr: str) -> Callable[[], float]:
    return lambda: getattr(obj, attr)


def _delay_sampler(ctx: BuildContext, group: str, purpose: str, dist: Any
                   ) -> Callable[[], float] | None:
    """A sampler of ``dist`` shared by the group, or None when it is always zero."""
    if isinstance(dist, Constant) and dist.value + dist.shift == 0:
        return None
    return ctx.sampler(group, purpose, dist)


def _mix(key: int) -> int:
    """A 32-bit hash of an integer key (Fibonacci hashing), to spread keys over shards."""
    return ((key * 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF) >> 32


class CacheShards:
    """The instances of a replicated cache as one sharded cluster: a key's instance is a hash of
    the key modulo the number of instances (client-side sharding)."""

    def __init__(self, name: str, members: list[Cache]) -> None:
        self.name = name
        self.members = members
        self._handlers = [m.handle for m in members]
        self._n = len(members)

    @property
    def instances(self) -> list[Component]:
        """Every instance."""
        return list(self.members)

    def handle(self, req: Request, op: str) -> Handler:
        """Send the request to the instance that owns its key."""
        return self._handlers[_mix(req.key) % self._n](req, op)

    def has_versions(self) -> bool:
        """Whether the store behind the caches keeps versions."""
        return self.members[0].has_versions()

    def committed_version(self, key: int) -> int:
        """The store's latest committed version of ``key``."""
        return self.members[0].committed_version(key)

    def peek(self, key: int) -> int | None:
        """The version of ``key`` its instance holds (see :meth:`Cache.peek`)."""
        return self.members[_mix(key) % self._n].peek(key)


class LocalCaches(CacheShards):
    """Per-instance local caches: instance ``i`` of the owner calls cache instance ``i``.

    Callers that are not instances of the owner are spread by key, as :class:`CacheShards`.
    """

    def __init__(self, name: str, members: list[Cache], owner: str) -> None:
        super().__init__(name, members)
        n = len(members)
        self._by_caller = {f"{owner}[{i}]": m for i, m in enumerate(members)} if n > 1 else {
            owner: members[0]}

    def for_caller(self, caller: str) -> Target:
        """The target a call from instance ``caller`` goes to."""
        return self._by_caller.get(caller, self)
