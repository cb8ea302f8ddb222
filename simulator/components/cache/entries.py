"""Entries: fills, removals, expiry (a heap of expiry instants, purged as of
    each instant) and invalidation."""

from __future__ import annotations

import heapq
from typing import cast

from simulator.components.cache.state import CacheState


class CacheEntries(CacheState):
    """Entries: fills, removals, expiry (a heap of expiry instants, purged as of
    each instant) and invalidation."""

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
