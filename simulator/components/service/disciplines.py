"""Queue disciplines of a service instance: which waiting request a free worker takes.

Each discipline is one class behind a small interface, chosen from the service's ``queue``
block (:mod:`simulator.components.service.queueing`):

* :meth:`Discipline.join` puts a :class:`Waiter` in the queue;
* :meth:`Discipline.pop` hands the next request a free worker should take, first settling
  those it drops at dequeue: a request whose deadline has passed (every discipline; status
  ``expired``) and, for CoDel, the drops of its control law (status ``dropped``);
* :meth:`Discipline.remove` takes out a request that leaves (reneging);
* :meth:`Discipline.drain` empties the queue (a crash).

A waiter is a SimPy event: the service's request generator waits on it. It succeeds with
``None`` when a worker passes to it, or with the status of its leaving without service; the
request's own generator does the bookkeeping (time integrals, counters, span), so a
discipline only orders and drops.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections import deque

import simpy
from simpy import Event

from simulator.components.service.queueing import (
    AdaptiveLifoQueue,
    CoDelQueue,
    FifoQueue,
    LifoQueue,
    PriorityQueue,
    QueueSpec,
)
from simulator.messages import DROPPED, EXPIRED, Request


class Waiter(Event):
    """A request waiting for a worker (``joined``: when it joined this queue)."""

    def __init__(self, env: simpy.Environment, req: Request, joined: float) -> None:
        # Event.__init__ inlined (its two attributes): one per request that queues
        self.env = env
        self.callbacks = []
        self.req = req
        self.joined = joined
        self.gone = False  # left the queue (lazy removal from a heap)


class Discipline:
    """FIFO order; the base of every discipline (subclasses override :meth:`take`)."""

    #: whether the discipline drops requests on its own (not only expired ones)
    drops = False

    def __init__(self, spec: QueueSpec) -> None:
        self.limit: float = math.inf if spec.limit is None else spec.limit
        self._q: deque[Waiter] = deque()

    def __len__(self) -> int:
        return len(self._q)

    def join(self, w: Waiter) -> None:
        """Add a waiting request."""
        self._q.append(w)

    def take(self, now: float) -> Waiter | None:
        """The next waiter in this discipline's order, removed from the queue (None: empty)."""
        return self._q.popleft() if self._q else None

    def pop(self, now: float) -> Waiter | None:
        """The waiter a free worker takes at ``now``; expired ones met first are dropped."""
        while True:
            w = self.take(now)
            if w is None or w.req.deadline > now:
                return w
            w.succeed(EXPIRED)

    def remove(self, w: Waiter) -> None:
        """Take out a waiter that leaves (it is in the queue)."""
        self._q.remove(w)

    def oldest(self) -> float | None:
        """When the longest-waiting request still in the queue joined it (None: empty).

        Every deque discipline appends at the tail, so the head is the oldest whichever end
        it serves from.
        """
        return self._q[0].joined if self._q else None

    def drain(self) -> list[Waiter]:
        """Remove and return every waiter."""
        out = list(self._q)
        self._q.clear()
        return out


class Lifo(Discipline):
    """The newest waiting request first."""

    def take(self, now: float) -> Waiter | None:
        return self._q.pop() if self._q else None


class AdaptiveLifo(Discipline):
    """FIFO, but LIFO while the queue has been non-empty for ``standing_after`` or longer."""

    def __init__(self, spec: AdaptiveLifoQueue) -> None:
        super().__init__(spec)
        self.standing_after = spec.standing_after
        self._since = math.inf  # when the queue last became non-empty

    def join(self, w: Waiter) -> None:
        if not self._q:
            self._since = w.joined
        self._q.append(w)

    def take(self, now: float) -> Waiter | None:
        if not self._q:
            return None
        return self._q.pop() if now - self._since >= self.standing_after else self._q.popleft()


class Priority(Discipline):
    """Strict priority by ``Request.priority`` (0 first), FIFO within a class.

    A heap of (class, sequence, waiter); a preempted request re-enters at the head of its class
    (a negative sequence number). Removal is lazy (the waiter is marked and skipped).
    """

    def __init__(self, spec: PriorityQueue) -> None:
        super().__init__(spec)
        self.preemptive = spec.preemptive
        self._heap: list[tuple[int, int, Waiter]] = []
        self._n = 0
        self._seq = itertools.count()
        self._front = itertools.count(-1, -1)

    def __len__(self) -> int:
        return self._n

    def join(self, w: Waiter) -> None:
        heapq.heappush(self._heap, (w.req.priority, next(self._seq), w))
        self._n += 1

    def join_front(self, w: Waiter) -> None:
        """Put a preempted request back at the head of its class."""
        heapq.heappush(self._heap, (w.req.priority, next(self._front), w))
        self._n += 1

    def take(self, now: float) -> Waiter | None:
        heap = self._heap
        while heap:
            w = heapq.heappop(heap)[2]
            if not w.gone:
                self._n -= 1
                return w
        return None

    def remove(self, w: Waiter) -> None:
        w.gone = True
        self._n -= 1

    def oldest(self) -> float | None:
        # a scan (the heap is ordered by class): paid only by shedding on queue time
        return min((w.joined for _, _, w in self._heap if not w.gone), default=None)

    def drain(self) -> list[Waiter]:
        out = [w for _, _, w in self._heap if not w.gone]
        self._heap.clear()
        self._n = 0
        return out


class CoDel(Discipline):
    """Controlled Delay (RFC 8289, section 5, with requests for packets) over a FIFO queue.

    The RFC's "fewer than MAXPACKET bytes left" test, which stops CoDel from dropping the last
    packet of a queue, is read as "at most one request left waiting". Times are the
    simulation's; ``count``, ``lastcount``, ``drop_next`` and ``first_above_time`` keep the
    RFC's names and meaning (a ``first_above_time`` of 0 means "not above target").
    """

    drops = True

    def __init__(self, spec: CoDelQueue) -> None:
        super().__init__(spec)
        self.target = spec.target
        self.interval = spec.interval
        self.first_above_time = 0.0
        self.drop_next = 0.0
        self.count = 0
        self.lastcount = 0
        self.dropping = False

    def _control_law(self, t: float, count: int) -> float:
        return t + self.interval / math.sqrt(count)

    def _dodequeue(self, now: float) -> tuple[Waiter | None, bool]:
        w = super().pop(now)  # the head, past any expired requests
        if w is None:
            self.first_above_time = 0.0
            return None, False
        if now - w.joined < self.target or len(self._q) <= 1:
            self.first_above_time = 0.0
            return w, False
        if self.first_above_time == 0.0:
            self.first_above_time = now + self.interval
            return w, False
        return w, now >= self.first_above_time

    def pop(self, now: float) -> Waiter | None:
        w, ok_to_drop = self._dodequeue(now)
        if self.dropping:
            if not ok_to_drop:
                self.dropping = False  # sojourn below target: leave the dropping state
            while now >= self.drop_next and self.dropping:
                assert w is not None  # ok_to_drop implies a request
                w.succeed(DROPPED)
                self.count += 1
                w, ok_to_drop = self._dodequeue(now)
                if not ok_to_drop:
                    self.dropping = False
                else:
                    self.drop_next = self._control_law(self.drop_next, self.count)
        elif ok_to_drop:
            assert w is not None
            w.succeed(DROPPED)
            w, ok_to_drop = self._dodequeue(now)
            self.dropping = True
            # re-entering soon after leaving: resume near the drop rate that controlled it
            delta = self.count - self.lastcount
            self.count = 1
            if delta > 1 and now - self.drop_next < 16 * self.interval:
                self.count = delta
            self.drop_next = self._control_law(now, self.count)
            self.lastcount = self.count
        return w


def discipline(spec: QueueSpec) -> Discipline:
    """The runtime of a queue block (processor sharing excepted: it is not a queue)."""
    if isinstance(spec, FifoQueue):
        return Discipline(spec)
    if isinstance(spec, LifoQueue):
        return Lifo(spec)
    if isinstance(spec, PriorityQueue):
        return Priority(spec)
    if isinstance(spec, CoDelQueue):
        return CoDel(spec)
    if isinstance(spec, AdaptiveLifoQueue):
        return AdaptiveLifo(spec)
    raise TypeError(f"no queue discipline for {spec!r}")
