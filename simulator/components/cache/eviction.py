"""Eviction policies (LRU, FIFO, random, LFU, TTL-only), each keeping its entries in the
structure that makes a hit O(1); plain Python, testable without SimPy."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any


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
