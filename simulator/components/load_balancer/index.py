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
from array import array
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

    One bucket holding nearly every member (a large fleet at low load: thousands of idle
    backends, a few busy) is kept *dense*: as the member list itself and the sorted positions
    in it of the few members outside the bucket (its gaps), so that moving a backend in or
    out of it inserts into or deletes from the short gap list instead of moving a list of
    thousands (a 16 KB memmove each way at 4096 backends); the k-th tie is then the k-th
    member once the gaps are skipped (:func:`shift`, O(gaps)). A bucket turns dense when at
    most ``gaps_enter`` members are outside it (with at least ``dense_min`` members), and
    back to a plain list when more than ``gaps_max`` are, each an O(n) rebuild that the gap
    between the two thresholds keeps rare.

    Parameters
    ----------
    value
        The backend's current value; the owner calls :meth:`update` whenever an input of it
        changes (a request sent or finished, a latency observed).
    dense_min, gaps_enter, gaps_max
        Fewest members for a dense bucket; most gaps a bucket may have to turn dense, and
        most it keeps as dense. ``gaps_enter <= gaps_max < dense_min - gaps_enter`` (so a
        dense bucket is never empty and is the only one that large).
    """

    __slots__ = ("_buckets", "_dense_v", "_enter_at", "_gaps", "_heap", "_members", "_of",
                 "_pos", "dense_min", "gaps_enter", "gaps_max", "value")

    def __init__(self, value: Callable[[int], float], *, dense_min: int = 1024,
                 gaps_enter: int = 16, gaps_max: int = 48) -> None:
        if not 0 <= gaps_enter <= gaps_max < dense_min - gaps_enter:
            raise ValueError("need 0 <= gaps_enter <= gaps_max < dense_min - gaps_enter")
        self.value = value
        self.dense_min, self.gaps_enter, self.gaps_max = dense_min, gaps_enter, gaps_max
        self._of: dict[int, float] = {}  # indexed backend -> its value when last updated
        self._buckets: dict[float, list[int]] = {}
        self._heap: list[float] = []
        self._members: list[int] = []  # the indexed backends, ascending
        self._pos: dict[int, int] = {}  # member -> its position in _members
        self._dense_v: float | None = None  # the dense bucket's value (its list: _members)
        self._gaps: list[int] = []  # positions in _members of the others, ascending
        self._enter_at = 0  # a plain bucket this long turns dense

    def reset(self, members: Iterable[int]) -> None:
        """Index exactly ``members`` (after a change of availability): O(n log n)."""
        value = self.value
        self._members = sorted(members)
        self._pos = {i: p for p, i in enumerate(self._members)}
        self._of = {i: value(i) for i in self._members}
        buckets: dict[float, list[int]] = {}
        for i, v in self._of.items():
            buckets.setdefault(v, []).append(i)  # ascending, as _members is
        self._buckets = buckets
        self._heap = list(buckets)
        heapq.heapify(self._heap)
        self._dense_v, self._gaps = None, []
        n = len(self._members)
        self._enter_at = n - self.gaps_enter if n >= self.dense_min else n + 1
        big = max(buckets, key=lambda v: len(buckets[v]), default=None)
        if big is not None and len(buckets[big]) >= self._enter_at:
            self._densify(big)

    def _densify(self, v: float) -> None:
        inside = set(self._buckets[v])
        self._gaps = [p for p, i in enumerate(self._members) if i not in inside]
        self._buckets[v] = self._members
        self._dense_v = v

    def _undensify(self) -> None:
        v = self._dense_v
        assert v is not None
        gaps = set(self._gaps)
        self._buckets[v] = [i for p, i in enumerate(self._members) if p not in gaps]
        self._dense_v, self._gaps = None, []

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
        if b is self._members:  # out of the dense bucket: one gap more
            gaps = self._gaps
            bisect.insort(gaps, self._pos[i])
            if len(gaps) > self.gaps_max:
                self._undensify()
        elif len(b) == 1:
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
        elif b is self._members:  # into the dense bucket: one gap less
            gaps = self._gaps
            del gaps[bisect.bisect_left(gaps, self._pos[i])]
        else:
            bisect.insort(b, i)
            if len(b) >= self._enter_at:
                self._densify(new)

    def _top(self) -> float:
        heap, buckets = self._heap, self._buckets
        while heap[0] not in buckets:
            heapq.heappop(heap)
        return heap[0]

    def least(self) -> tuple[list[int], list[int]]:
        """The backends of the least value, as a list and the positions in it to skip
        (ascending; empty unless the bucket is dense): the k-th tie in backend order is
        ``bucket[shift(k, skip)]``, and there are ``len(bucket) - len(skip)`` (do not modify
        either)."""
        b = self._buckets[self._top()]
        return b, (self._gaps if b is self._members else _NONE)

    def least_excluding(self, used: frozenset[int]) -> tuple[list[int], list[int]]:
        """The bucket of the least value held by a backend outside ``used``, and the
        positions in it to skip, ascending: its gaps if dense and the ``used`` members. Some
        indexed backend must be outside ``used``."""
        buckets, of = self._buckets, self._of
        popped: list[float] = []
        heap = self._heap
        try:
            while True:
                v = self._top()
                b = buckets[v]
                if b is self._members:
                    pos = self._pos
                    skip = sorted(self._gaps + [pos[u] for u in used if of.get(u) == v])
                else:
                    skip = sorted(bisect.bisect_left(b, u) for u in used if of.get(u) == v)
                if len(skip) < len(b):
                    return b, skip
                popped.append(heapq.heappop(heap))
        finally:
            for v in popped:
                heapq.heappush(heap, v)


_NONE: list[int] = []  # no positions to skip (shared: never modified)


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


def ring_lookup(tokens: list[int]) -> Callable[[int], int]:
    """``bisect_left(tokens, h)`` on a sorted ring of 64-bit tokens, with a table of where
    each of ``2**bits`` equal slices of the hash space starts, so that a lookup bisects only
    the few tokens inside one slice.

    The answer is exactly the full bisect's: every token before the slice of ``h`` is below
    ``h`` and every token from the next slice on is above it. Why: at 4096 backends x 150
    vnodes the ring holds 614 400 tokens, and the full bisect's 20 comparisons each load a
    token object from a different place in memory (cache misses: about 3 µs a request in
    ``make bench-fleet``, against 0.7 µs at 8 backends). A slice holds 2 to 4 tokens on
    average at every fleet size, and the table and the tokens are kept as flat arrays of
    machine integers, so a lookup reads two or three cache lines, not a dozen int objects
    scattered over the heap.

    Parameters
    ----------
    tokens
        The ring's tokens, ascending, each in ``[0, 2**64)``
        (:func:`~simulator.components.hashing.hash_ring`; its rings are cached, and so are
        the tables built here, per ring).

    Returns
    -------
    Callable[[int], int]
        ``h -> `` position of the first token at or after ``h`` (``len(tokens)`` if none).
    """
    bits = max(1, len(tokens).bit_length() - 2)
    shift = 64 - bits
    flat, starts = _slices(tokens, bits)
    bisect_left = bisect.bisect_left

    def point(h: int) -> int:
        s = h >> shift
        return bisect_left(flat, h, starts[s], starts[s + 1])

    return point


_SLICES: dict[int, tuple[list[int], array[int], array[int]]] = {}


def _slices(tokens: list[int], bits: int) -> tuple[array[int], array[int]]:
    """The tokens as an unsigned 64-bit array, and ``starts[s]``: the position of the first
    token at or above ``s << (64 - bits)``, for ``s`` in ``0 .. 2**bits`` (the last is
    ``len(tokens)``). Cached per ring object (a sweep's runs share them)."""
    got = _SLICES.get(id(tokens))
    if got is not None and got[0] is tokens:
        return got[1], got[2]
    shift = 64 - bits
    starts = array("q", bytes(8 * ((1 << bits) + 1)))
    s = 0
    for p, t in enumerate(tokens):  # one pass: slice s starts at the first token in it
        top = t >> shift
        while s <= top:
            starts[s] = p
            s += 1
    for rest in range(s, len(starts)):
        starts[rest] = len(tokens)
    flat = array("Q", tokens)
    if len(_SLICES) >= 8:
        _SLICES.clear()
    _SLICES[id(tokens)] = (tokens, flat, starts)
    return flat, starts
