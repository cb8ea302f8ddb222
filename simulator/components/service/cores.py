"""The cores of a service instance with ``internals``: a thread pool's, time-sliced over its
runnable threads (:class:`ThreadCores`), and an event loop's (:class:`Loop`, one per core).

Both are frozen by a stop-the-world GC pause: a timer running then is voided (SimPy
timeouts cannot be cancelled: a loop's carries a generation number, the thread pool's has its
callbacks emptied) and re-armed with the work left when it ends. A loop reports each core
that starts or stops running a step through ``core_busy(+1 / -1)``; the thread pool's cores
update the service's busy counters themselves (the same two updates, on its hot path).
"""

from __future__ import annotations

import heapq
import itertools
from collections import deque
from collections.abc import Callable
from typing import Protocol

import simpy
from simpy import Event, Timeout
from simpy.events import NORMAL

from simulator.components.service.sharing import _EPS


class Loop:
    """One event loop on one core: CPU steps run one at a time, in the order they became
    ready, each to completion (a pause delays the one running by its length)."""

    def __init__(self, env: simpy.Environment, core_busy: Callable[[int], None]) -> None:
        self.env = env
        self._core_busy = core_busy
        self.ready: deque[tuple[Event, float]] = deque()
        self.current: Event | None = None
        self.end = 0.0  # when the running step ends (no pause meanwhile)
        self.left = 0.0  # work the running step had left when a pause began
        self.generation = 0
        self.paused = False

    def run(self, work: float) -> Event:
        """A CPU step of ``work`` seconds on this loop; the event fires when it is done."""
        ev = Event(self.env)
        if self.current is None and not self.paused:
            self._start(ev, work)
        else:
            self.ready.append((ev, work))
        return ev

    def _start(self, ev: Event, work: float) -> None:
        if self.current is None:
            self._core_busy(1)
        self.current = ev
        self._arm(work)

    def _arm(self, work: float) -> None:
        self.end = self.env._now + work
        self.generation += 1
        generation = self.generation
        Timeout(self.env, work).callbacks.append(lambda _e: self._done(generation))

    def _done(self, generation: int) -> None:
        if generation != self.generation:
            return  # voided by a pause or a crash
        ev = self.current
        assert ev is not None
        if self.ready:  # the core goes straight to the next ready step
            self.current, work = self.ready.popleft()
            self._arm(work)
        else:
            self.current = None
            self._core_busy(-1)
        ev.succeed()

    def pause(self) -> None:
        self.paused = True
        if self.current is not None:
            self.left = self.end - self.env._now
            self.generation += 1

    def resume(self) -> None:
        self.paused = False
        if self.current is not None:
            self._arm(self.left)
        elif self.ready:
            self._start(*self.ready.popleft())

    def crash(self) -> None:
        self.ready.clear()
        self.current = None
        self.generation += 1

    def __len__(self) -> int:
        return len(self.ready)


class Busy(Protocol):
    """What keeps the busy cores and their integral (the service: ``busy`` cores now,
    ``_busy_area`` = the integral of ``busy`` minus ``busy * now``)."""

    busy: int
    _busy_area: float


class Tick(Event):
    """A timer's event: a Timeout without its checks, created triggered with one callback
    (the caller schedules it)."""

    def __init__(self, env: simpy.Environment, callback: Callable[[Event], None]) -> None:
        self.env = env
        self.callbacks = [callback]
        self._ok = True
        self._value = None


class FastStep(Timeout):
    """A CPU step of a thread pool running at full speed: its own timer, which its thread
    waits on. Moved into the shared cores, it keeps its heap entry there and ``waiters``
    holds the thread's callbacks, taken off the timer (which then fires as a no-op)."""

    waiters: list[Callable[[Event], None]]

    def __init__(self, env: simpy.Environment, work: float,
                 on_end: Callable[[Event], None]) -> None:
        # Timeout.__init__ without its call overhead (the same attributes, the same schedule)
        if work < 0:
            raise ValueError(f"negative CPU work {work}")
        self.env = env
        self.callbacks = [on_end]
        self._value = None
        self._delay = work
        self._ok = True
        self.end = env._now + work  # the timer's own instant, the same float
        env.schedule(self, NORMAL, work)


class ThreadCores:
    """The cores of a thread pool: egalitarian processor sharing over the runnable threads
    (each at ``min(1, cores / runnable)`` of a core), with a fast path.

    While no more threads are runnable than there are cores, each runs at full speed: a CPU
    step that starts then is one plain timer, which its thread waits on (the cost of the
    simple model's service time). The first step that would make them share a core (or a GC
    pause) moves every step running on its own timer into the shared cores with the work it
    has left. The steps in the shared cores stay there; a step starting while the runnable
    ones (on their own timers and shared) are fewer than the cores takes the fast path
    again: all of them run at full speed, the shared ones included.

    The shared cores are kept in virtual time, as
    :class:`~simulator.components.service.sharing.SharedProcessor` does (the same arithmetic,
    so the same floats): ``V`` grows at the rate of each runnable thread (0 during a pause),
    a step that joins at ``V = v`` with work ``w`` ends when ``V`` reaches its tag ``v + w``;
    a heap of tags and one timer, for the head. What makes a step cheaper than there: the
    timer calls a bound method (no closure, no generation number: a timer replaced has its
    callbacks emptied and fires as a no-op), a batch of moved steps sets one timer, and the
    threads a completion ends are woken from the timer's own callback, in tag order, once
    the state is updated (no event scheduled per thread: theirs are processed in place, so
    they run before, not after, any other event that falls on exactly that instant).

    Parameters
    ----------
    env
        The environment.
    cores
        Cores of the instance.
    busy
        The counters of busy cores (the service).
    """

    def __init__(self, env: simpy.Environment, cores: int, busy: Busy) -> None:
        self.env = env
        self.cores = cores
        self._busy = busy
        self._fast: dict[FastStep, None] = {}  # insertion-ordered: moves are deterministic
        self._on_fast_end = self._fast_end  # one bound method for every timer
        self._on_fire = self._fire
        self.n = 0  # threads in the shared cores
        self._v = 0.0  # virtual time: work done by each shared step since V = 0
        self._last = 0.0
        self._heap: list[tuple[float, int, Event]] = []
        self._seq = itertools.count()
        self._timer: Event | None = None  # the head's completion
        self.paused = False

    def __len__(self) -> int:
        """Runnable threads beyond the cores (the ready queue)."""
        return max(0, self.n - self.cores)

    def run(self, work: float) -> Event:
        """A CPU step of ``work`` seconds; the event its thread waits for."""
        fast = self._fast
        env = self.env
        if not self.paused and self.n + len(fast) < self.cores:
            step = FastStep(env, work, self._on_fast_end)
            fast[step] = None
            busy = self._busy
            busy.busy += 1
            busy._busy_area -= env._now
            return step
        now = env._now
        if fast:
            self._share(now)
        return self._join(now, work)

    def _fast_end(self, step: Event) -> None:
        try:
            del self._fast[step]  # type: ignore[arg-type]
        except KeyError:
            return  # lost in a crash
        busy = self._busy
        busy.busy -= 1
        busy._busy_area += self.env._now

    # ---- the shared cores -------------------------------------------------------------
    # (``min``, ``max`` and the calls on the hot path are written out: the same floats)
    def _advance(self, now: float) -> None:
        n = self.n
        if self.paused or not n:
            rate = 0.0
        else:
            rate = self.cores / n
            if rate > 1.0:
                rate = 1.0
        self._v += (now - self._last) * rate
        self._last = now

    def _join(self, now: float, work: float) -> Event:
        """One thread starts sharing with ``work`` seconds of a core's time: the cores are
        all taken (or paused), so the head's instant changes with the rate."""
        self._advance(now)
        ev = Event(self.env)
        heapq.heappush(self._heap, (self._v + work, next(self._seq), ev))
        self.n += 1
        if self.n <= self.cores:  # (only when paused)
            busy = self._busy
            busy.busy += 1
            busy._busy_area -= now
        self._schedule()
        return ev

    def _share(self, now: float) -> None:
        """Move the steps running on their own timers into the shared cores (the caller
        sets the timer: every step of the batch would replace the previous one's)."""
        self._advance(now)
        heap, seq, on_end, busy = self._heap, self._seq, self._on_fast_end, self._busy
        v, cores = self._v, self.cores
        for step in self._fast:
            # not running on its own any more; counted again as a shared step (the same two
            # updates of the integral as before: the floats do not cancel exactly)
            busy.busy -= 1
            busy._busy_area += now
            left = step.end - now
            heapq.heappush(heap, (v + (left if left > 0.0 else 0.0), next(seq), step))
            self.n += 1
            if self.n <= cores:
                busy.busy += 1
                busy._busy_area -= now
            callbacks = step.callbacks
            assert callbacks is not None and callbacks[0] is on_end
            step.waiters = callbacks[1:]  # its thread now waits for the shared completion
            step.callbacks = []
        self._fast.clear()

    def _schedule(self) -> None:
        """Replace the head's completion timer (none while paused or empty)."""
        if self._timer is not None:
            self._timer.callbacks = []  # a SimPy timeout cannot be cancelled: a no-op
            self._timer = None
        heap = self._heap
        if self.paused or not heap:
            return
        rate = self.cores / self.n
        delay = (heap[0][0] - self._v) / (rate if rate < 1.0 else 1.0)
        timer = self._timer = Tick(self.env, self._on_fire)
        self.env.schedule(timer, NORMAL, delay if delay > 0.0 else 0.0)

    def _fire(self, _timer: Event) -> None:
        self._timer = None
        now = self.env._now
        cores = self.cores
        rate = cores / self.n  # _advance (n > 0, not paused)
        v = self._v + (now - self._last) * (rate if rate < 1.0 else 1.0)
        self._last = now
        heap = self._heap
        # the head is the step this timer was set for (nothing joined or left since), done
        # whatever rounding left of its tag; others finishing at the same instant go with it
        head = heap[0][0]
        if head > v:
            v = head
        self._v = v
        limit = v + _EPS * (v if v > 1.0 else 1.0)  # (V >= 0)
        busy = self._busy
        woken = [heapq.heappop(heap)[2]]
        while True:
            self.n -= 1
            if self.n < cores:
                busy.busy -= 1
                busy._busy_area += now
            if not heap or heap[0][0] > limit:
                break
            woken.append(heapq.heappop(heap)[2])
        self._schedule()
        for wake in woken:  # as SimPy would process their events, in this order
            if type(wake) is FastStep:
                callbacks = wake.waiters
                if now < wake.end:  # (rounding) its thread waits for its own timer too
                    assert wake.callbacks is not None
                    wake.callbacks.extend(callbacks)
                    continue
            else:
                wake._ok = True
                wake._value = None
                callbacks, wake.callbacks = wake.callbacks, None  # type: ignore[assignment]
            for callback in callbacks:
                callback(wake)

    # ---- pauses and crashes -------------------------------------------------------------
    def pause(self) -> None:
        now = self.env._now
        if self._fast:
            self._share(now)
        self._advance(now)
        self.paused = True
        self._schedule()

    def resume(self) -> None:
        self._last = self.env._now  # virtual time did not grow during the pause
        self.paused = False
        self._schedule()

    def crash(self) -> None:
        self._fast.clear()
        self._advance(self.env._now)
        self._heap.clear()
        self.n = 0
        self._schedule()
