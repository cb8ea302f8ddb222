"""Structures that keep the balancer's per-pick cost flat in fleet size.

:class:`Excluding` is the available backends minus the few a retry or hedge already used,
without copying the fleet; :class:`LeastIndex` keeps the available backends bucketed by a
value (outstanding requests, or a cost computed from them) so that the least-loaded rules find
the minimum and its ties in O(log n) instead of scanning every backend; :class:`SmoothWeighted`
is smooth weighted round robin without the scan. All give exactly what the plain scan over
``lb._avail`` gives, ties included (``tests/test_fleet_index.py``; for weighted round robin,
with dyadic weights).
"""
from __future__ import annotations

import bisect
import heapq
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from typing import overload


class Excluding(Sequence[int]):
    """The sorted list ``avail`` without the members of ``used``, as a read-only sequence.

    ``len``, indexing and ``in`` cost O(u log n) or less for u used backends (u is the
    number of attempts of one call, a handful), iteration O(n).

    Parameters
    ----------
    avail
        Available backend indices, ascending (what ``LoadBalancer._refresh`` builds).
    member
        ``member[i]`` is true when ``i`` is in ``avail``.
    used
        Backends to leave out; those not in ``avail`` are ignored.
    """

    __slots__ = ("avail", "skip", "used")

    def __init__(self, avail: list[int], member: list[bool], used: Collection[int]) -> None:
        self.avail = avail
        self.used = frozenset(u for u in used if member[u])
        #: positions in ``avail`` of the left-out backends, ascending
        self.skip = sorted(bisect.bisect_left(avail, u) for u in self.used)

    def __len__(self) -> int:
        return len(self.avail) - len(self.skip)

    @overload
    def __getitem__(self, k: int) -> int: ...
    @overload
    def __getitem__(self, k: slice) -> Sequence[int]: ...
    def __getitem__(self, k: int | slice) -> int | Sequence[int]:
        if isinstance(k, slice):
            return list(self)[k]
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.avail[shift(k, self.skip)]

    def __contains__(self, i: object) -> bool:
        if i in self.used or not isinstance(i, int):
            return False
        avail = self.avail
        p = bisect.bisect_left(avail, i)
        return p < len(avail) and avail[p] == i

    def __iter__(self) -> Iterator[int]:
        used = self.used
        return (i for i in self.avail if i not in used)


def shift(k: int, skip: list[int]) -> int:
    """Position in the full list of the ``k``-th element left after removing the positions
    ``skip`` (ascending)."""
    for p in skip:
        if p > k:
            break
        k += 1
    return k


class LeastIndex:
    """Backends bucketed by ``value(i)``: the least value and its ties in backend order.

    Each bucket holds the indices of one value, ascending; a heap holds the values (lazily:
    a value whose bucket emptied is dropped when it reaches the top, and the heap is rebuilt
    when stale values outnumber live ones, so it stays O(number of distinct values)). Moving a
    backend between buckets costs O(log n) comparisons plus a short list move.

    Parameters
    ----------
    value
        The backend's current value; the owner calls :meth:`update` whenever an input of it
        changes (a request sent or finished, a latency observed).
    """

    __slots__ = ("_buckets", "_heap", "_of", "value")

    def __init__(self, value: Callable[[int], float]) -> None:
        self.value = value
        self._of: dict[int, float] = {}  # indexed backend -> its value when last updated
        self._buckets: dict[float, list[int]] = {}
        self._heap: list[float] = []

    def reset(self, members: Iterable[int]) -> None:
        """Index exactly ``members`` (after a change of availability): O(n log n)."""
        value = self.value
        self._of = {i: value(i) for i in members}
        buckets: dict[float, list[int]] = {}
        for i, v in self._of.items():
            buckets.setdefault(v, []).append(i)
        for b in buckets.values():
            b.sort()
        self._buckets = buckets
        self._heap = list(buckets)
        heapq.heapify(self._heap)

    def update(self, i: int) -> None:
        """Re-bucket backend ``i`` after its value may have changed (no-op if not indexed)."""
        old = self._of.get(i)
        if old is None:
            return
        new = self.value(i)
        if new == old:
            return
        self._of[i] = new
        buckets = self._buckets
        b = buckets[old]
        if len(b) == 1:
            del buckets[old]
        else:
            del b[bisect.bisect_left(b, i)]
        b = buckets.get(new)  # type: ignore[assignment]
        if b is None:
            buckets[new] = [i]
            heap = self._heap
            heapq.heappush(heap, new)
            if len(heap) > 2 * len(buckets) + 16:
                self._heap = list(buckets)
                heapq.heapify(self._heap)
        else:
            bisect.insort(b, i)

    def _top(self) -> float:
        heap, buckets = self._heap, self._buckets
        while heap[0] not in buckets:
            heapq.heappop(heap)
        return heap[0]

    def least(self) -> list[int]:
        """The backends of the least value, ascending (do not modify)."""
        return self._buckets[self._top()]

    def least_excluding(self, used: frozenset[int]) -> tuple[list[int], list[int]]:
        """The bucket of the least value held by a backend outside ``used``, and the
        positions in it of the ``used`` members (ascending). Some indexed backend must be
        outside ``used``."""
        buckets, of = self._buckets, self._of
        popped: list[float] = []
        heap = self._heap
        try:
            while True:
                v = self._top()
                b = buckets[v]
                skip = sorted(bisect.bisect_left(b, u) for u in used if of.get(u) == v)
                if len(skip) < len(b):
                    return b, skip
                popped.append(heapq.heappop(heap))
        finally:
            for v in popped:
                heapq.heappush(heap, v)


class SmoothWeighted:
    """nginx's smooth weighted round robin in O(K + log n) per pick for K distinct weights.

    The scan adds each candidate's weight to its ``current`` and takes the first (lowest
    index) of the largest, which then loses the candidates' total. All backends of one weight
    gain alike, so a class of weight w keeps one offset ``o_w`` (``current = base + o_w``)
    and a heap of its members by (largest base, lowest index); a pick compares the K class
    tops. Identical to the scan when the weights are dyadic (integers, halves, quarters...,
    so every sum is exact in floating point); with other weights the scan's running sums and
    the offsets round differently and a near tie may go the other way.

    Parameters
    ----------
    weights
        One weight per backend.
    """

    __slots__ = ("_base", "_classes", "_current", "_heaps", "_offset", "_stamp", "_total",
                 "_weights")

    def __init__(self, weights: list[float]) -> None:
        self._weights = weights
        self._current = [0.0] * len(weights)  # of backends outside the indexed set
        self._base: dict[int, float] = {}
        self._stamp = [0] * len(weights)
        self._classes: list[float] = []
        self._offset: dict[float, float] = {}
        self._heaps: dict[float, list[tuple[float, int, int]]] = {}
        self._total = 0.0

    def reset(self, members: list[int]) -> None:
        """Candidates become ``members`` (ascending): O(n log n), on availability changes."""
        w, cur = self._weights, self._current
        for i, b in self._base.items():  # write the indexed values back
            cur[i] = b + self._offset[w[i]]
        self._base = {i: cur[i] for i in members}
        total = 0.0
        for i in members:  # the scan's order of summation
            total += w[i]
        self._total = total
        heaps: dict[float, list[tuple[float, int, int]]] = {}
        for i in members:
            heaps.setdefault(w[i], []).append((-cur[i], i, self._stamp[i]))
        for h in heaps.values():
            heapq.heapify(h)
        self._heaps = heaps
        self._classes = list(heaps)
        self._offset = dict.fromkeys(heaps, 0.0)

    def _top(self, h: list[tuple[float, int, int]], used: frozenset[int],
             aside: list[tuple[float, int, int]]) -> tuple[float, int, int] | None:
        stamp = self._stamp
        while h:
            e = h[0]
            if e[2] != stamp[e[1]]:
                heapq.heappop(h)  # stale
            elif e[1] in used:
                aside.append(heapq.heappop(h))
            else:
                return e
        return None

    def pick(self, used: frozenset[int] = frozenset()) -> int:
        """The next backend among the members outside ``used`` (some must be left)."""
        w, offset, base = self._weights, self._offset, self._base
        total = self._total
        for c in self._classes:
            offset[c] += c
        for u in used:  # a left-out candidate gains nothing: take back its class's gain
            total -= w[u]
            self._set(u, base[u] - w[u])
        best = -1
        best_value = 0.0
        best_class = 0.0
        aside: list[tuple[float, int, int]] = []
        for c in self._classes:
            e = self._top(self._heaps[c], used, aside)
            if e is None:
                continue
            value = -e[0] + offset[c]
            if best < 0 or value > best_value or (value == best_value and e[1] < best):
                best, best_value, best_class = e[1], value, c
        for e in aside:
            heapq.heappush(self._heaps[w[e[1]]], e)
        self._set(best, best_value - total - offset[best_class])
        return best

    def _set(self, i: int, b: float) -> None:
        self._base[i] = b
        self._stamp[i] += 1
        h = self._heaps[self._weights[i]]
        heapq.heappush(h, (-b, i, self._stamp[i]))
        if len(h) > 2 * len(self._base) + 16:  # drop the stale entries
            stamp = self._stamp
            h[:] = [e for e in h if e[2] == stamp[e[1]]]
            heapq.heapify(h)
