"""A pool of workers with a bounded FIFO queue, and the time integrals of its occupancy.

Event stores and read models serve their requests with a fixed number of workers (command
handler threads, connections to the read database), as a service does; this is that pool on
its own, so a kind that does more than "work, then calls" can hold a worker across several
steps (load, decide, append, retry). The integrals are kept as a service keeps them (``-t`` at
entry, ``+t`` at exit), so the gauges have the same names and utilisation is exact.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Generator, Iterable
from typing import Any

import simpy
from simpy import Event

from simulator.messages import ERROR, OK, REJECTED


class WorkerPool:
    """``workers`` workers in front of one FIFO queue of at most ``queue_limit`` waiters.

    Use: ``status, start = yield from pool.acquire(now)``, then ``pool.release()`` when done.
    A worker freed while requests wait passes straight to the first of them.
    """

    __slots__ = ("_queue", "busy", "busy_area", "crashes", "env", "in_system", "queue_area",
                 "queue_limit", "system_area", "workers")

    def __init__(self, env: simpy.Environment, workers: int, queue_limit: int | None) -> None:
        self.env = env
        self.workers = workers
        self.queue_limit = math.inf if queue_limit is None else queue_limit
        self._queue: deque[Event] = deque()
        self.busy = 0
        self.in_system = 0
        self.busy_area = 0.0
        self.queue_area = 0.0
        self.system_area = 0.0
        self.crashes = 0

    def acquire(self, now: float) -> Generator[Event, Any, tuple[int, float]]:
        """Get a worker for a request arriving at ``now``: (``OK``, start time), or
        (``REJECTED``, NaN) when the queue is full, or (``ERROR``, NaN) when a crash emptied the
        pool while the request waited."""
        if self.busy < self.workers:
            self.take(now)
            return OK, now
        if len(self._queue) >= self.queue_limit:
            return REJECTED, math.nan
        crashes = self.crashes
        yield self.wait(now)
        if self.crashes != crashes:  # woken by a crash, not by a free worker
            return ERROR, math.nan
        start = self.env._now
        self.started(start)
        return OK, start

    def free(self) -> bool:
        """Whether a worker is free now."""
        return self.busy < self.workers

    def full(self) -> bool:
        """Whether the queue is full (an arrival finding no worker would be rejected)."""
        return len(self._queue) >= self.queue_limit

    def take(self, now: float) -> None:
        """Take a free worker at ``now``."""
        self.busy += 1
        self.in_system += 1
        self.system_area -= now
        self.busy_area -= now

    def wait(self, now: float) -> Event:
        """Join the queue at ``now``; the event fires when a worker passes to this request."""
        ev = Event(self.env)
        self._queue.append(ev)
        self.queue_area -= now
        self.in_system += 1
        self.system_area -= now
        return ev

    def started(self, now: float) -> None:
        """The request woken by :meth:`wait` starts at ``now`` (the worker is already its)."""
        self.queue_area += now
        self.busy_area -= now

    def release(self) -> None:
        """Free the worker of a finished request (or hand it to the first waiter)."""
        now = self.env._now
        self.busy_area += now
        self.system_area += now
        self.in_system -= 1
        if self._queue:
            self._queue.popleft().succeed()
        else:
            self.busy -= 1

    def crash(self) -> None:
        """Drop every request held (the owner has crashed): close their integrals, wake the
        waiters (which must see the crash and give up without :meth:`started`), free all."""
        now = self.env._now
        self.crashes += 1
        self.busy_area += self.busy * now
        self.queue_area += len(self._queue) * now
        self.system_area += self.in_system * now
        self.busy = 0
        self.in_system = 0
        waiting = list(self._queue)
        self._queue.clear()
        for ev in waiting:
            ev.succeed()

    @property
    def queue_length(self) -> int:
        """Requests waiting for a worker now."""
        return len(self._queue)

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        """The gauges a service records under the same names (so utilisation applies)."""
        env = self.env
        yield "workers", "", lambda: self.workers
        yield "queue_length", "", lambda: len(self._queue)
        yield "busy", "", lambda: self.busy
        yield "in_system", "", lambda: self.in_system
        yield "busy_time_total", "", lambda: self.busy_area + self.busy * env.now
        yield "queue_time_total", "", lambda: self.queue_area + len(self._queue) * env.now
        yield "system_time_total", "", lambda: self.system_area + self.in_system * env.now
