"""Parameters of ``kind: cache`` and its ``flush`` timeline event."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from simulator.calls import Call
from simulator.components.params import ComponentParams, KeyPath
from simulator.distributions import Constant, Distribution, Duration
from simulator.kind import TimelineEvent
from simulator.limits import CACHE_ENTRY_BYTES
from simulator.settings import refuse_ignored
from simulator.units import format_duration

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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

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
        seconds (default 1 s; at least 1 ms: every round is an event of the run, and a
        nanosecond pause meant billions of them).
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
    flush_interval: Duration | None = Field(None, ge=0.001)
    flush_batch: int | None = Field(None, ge=1, le=1_000_000)
    local_to: str | None = None

    def diagram_lines(self) -> list[str]:
        size = f"{self.capacity:,} entries" if self.capacity is not None else "unbounded"
        lines = [self.pattern.replace("_", " "), f"{self.policy}, {size}"]
        if self.ttl is not None:
            lines[-1] += f", ttl {format_duration(self.ttl)}"
        return lines

    def related(self) -> Iterable[tuple[str, str]]:
        if self.local_to is not None:
            yield "local to", self.local_to

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
        refuse_ignored(self, [("ttl_mode", self.ttl is not None,
                               "without a ttl (entries never expire); give a ttl")])
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

    def key_state_bytes(self, keys: int) -> float:
        """An entry per cached key: at most ``capacity`` an instance, and (sharded by key)
        each key in one instance, or (``local_to``) in every local instance."""
        held = min(keys, self.capacity or keys)
        entries = held * self.replicas if self.local_to else min(keys, held * self.replicas)
        return entries * CACHE_ENTRY_BYTES

    def references(self) -> Iterable[tuple[KeyPath, str]]:
        for rel, name in self.backing.references():
            yield ("backing", *(() if rel == ("to",) else rel)), name

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


class FlushEvent(TimelineEvent):
    """The target cache drops every entry at ``at`` (an operator's FLUSHALL, a cold restart of
    the cache tier): the next reads of every key miss. Instantaneous, so it takes no
    ``duration``; it may name one instance (``cache[2]``)."""

    kind: Literal["flush"] = "flush"
    target: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*(\[\d+\])?$")
    duration: Duration | None = Field(None, description="Refused: a flush is instantaneous.")
    instance_target: ClassVar[bool] = True

    @model_validator(mode="after")
    def _instant(self) -> Self:
        if self.duration is not None:
            raise ValueError("duration: a flush is instantaneous; remove duration")
        return self

    def fire(self, instances: list[Any], timeline: Any) -> None:
        """Empty each targeted instance, recording the fault's start."""
        env, rec = timeline.ctx.env, timeline.ctx.recorder
        for inst in instances:
            inst.flush()
            rec.event(env.now, inst.group, inst.name, "fault", "flush starts")
