"""Processor sharing: the local work of every request present progresses at once.

``n`` requests share ``capacity`` workers, each progressing at ``rate(n) = min(1, capacity /
n)`` (egalitarian processor sharing, at most one worker per request). The state is kept in
virtual time: ``V`` grows at ``rate(n)``, so a request that joins when ``V = v`` with work
``w`` finishes when ``V`` reaches ``v + w`` whatever happens meanwhile, and the requests
present finish in order of these tags. One timer stands for the next completion; when ``n``
changes the timer is replaced (a SimPy timeout cannot be cancelled: a stale one finds its
generation outdated and does nothing), so a request costs a few events whatever ``n`` is.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

import simpy
from simpy import Event, Timeout

#: relative slack under which a tag counts as reached (rounding of V)
_EPS = 1e-12


class SharedProcessor:
    """Egalitarian processor sharing over ``capacity`` workers.

    Parameters
    ----------
    env
        The environment.
    capacity
        Workers whose capacity is shared.
    count
        Called with ``(now, before, after)`` at every arrival and departure (one request at a
        time), so the owner keeps its busy and queue integrals.
    """

    def __init__(self, env: simpy.Environment, capacity: int,
                 count: Callable[[float, int, int], None]) -> None:
        self.env = env
        self.capacity = capacity
        self._count = count
        self.n = 0
        self._v = 0.0  # virtual time: work done by each request present since V = 0
        self._last = 0.0
        self._heap: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()
        self._generation = 0

    def __len__(self) -> int:
        """Requests beyond the capacity (the "queue" of a shared processor)."""
        return max(0, self.n - self.capacity)

    def _rate(self) -> float:
        return min(1.0, self.capacity / self.n) if self.n else 0.0

    def _advance(self, now: float) -> None:
        self._v += (now - self._last) * self._rate()
        self._last = now

    def join(self, work: float) -> Event:
        """Start sharing with ``work`` seconds of one worker's time; the event fires when done."""
        now = self.env._now
        self._advance(now)
        ev = Event(self.env)
        heapq.heappush(self._heap, (self._v + work, next(self._seq), ev))
        self.n += 1
        self._count(now, self.n - 1, self.n)
        self._schedule()
        return ev

    def _schedule(self) -> None:
        self._generation += 1
        if not self._heap:
            return
        delay = max(0.0, (self._heap[0][0] - self._v) / self._rate())
        generation = self._generation
        Timeout(self.env, delay).callbacks.append(lambda _ev: self._fire(generation))

    def _fire(self, generation: int) -> None:
        if generation != self._generation:
            return  # replaced by a later arrival or departure
        now = self.env._now
        self._advance(now)
        heap = self._heap
        # the head is the request this timer was set for (nothing joined or left since), done
        # whatever rounding left of its tag; others finishing at the same instant go with it
        self._v = max(self._v, heap[0][0])
        slack = _EPS * max(1.0, abs(self._v))
        while heap and heap[0][0] <= self._v + slack:
            ev = heapq.heappop(heap)[2]
            self.n -= 1
            self._count(now, self.n + 1, self.n)
            ev.succeed()
        self._schedule()

    def crash(self) -> list[Event]:
        """Drop every request present (the owner closes its integrals); return their events."""
        self._advance(self.env._now)
        out = [ev for _, _, ev in self._heap]
        self._heap.clear()
        self.n = 0
        self._generation += 1
        return out

    def drain(self) -> list[Event]:
        """Same as :meth:`crash` (the service drains its queue object on a crash)."""
        return self.crash()
