"""The cores of a service instance with ``internals``: a thread pool's, time-sliced over its
runnable threads (:class:`ThreadCores`), and an event loop's (:class:`Loop`, one per core).

Both are frozen by a stop-the-world GC pause: a timer running then is voided (a generation
number: SimPy timeouts cannot be cancelled) and re-armed with the work left when it ends.
Both report each core that starts or stops running a step through ``core_busy(+1 / -1)``.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable

import simpy
from simpy import Event, Timeout

from simulator.components.service.sharing import SharedProcessor


class PausableSharing(SharedProcessor):
    """Processor sharing over the cores that a stop-the-world pause freezes (rate 0).

    A join that leaves every thread at full speed (still no more runnable threads than
    cores) and does not finish first keeps the completion timer already set: the head and
    the rate are unchanged, so is its instant (one timer fewer per step below saturation).
    """

    paused = False

    def join(self, work: float) -> Event:
        heap = self._heap
        if self.paused or not heap or self.n >= self.capacity:
            return super().join(work)
        now = self.env._now
        self._advance(now)
        tag = self._v + work
        ev = Event(self.env)
        first = tag < heap[0][0]
        heapq.heappush(heap, (tag, next(self._seq), ev))
        self.n += 1
        self._count(now, self.n - 1, self.n)
        if first:
            self._schedule()
        return ev

    def _rate(self) -> float:
        n = self.n
        return 0.0 if self.paused or not n else min(1.0, self.capacity / n)

    def _schedule(self) -> None:
        if self.paused:
            self._generation += 1  # no completion while paused; resume() re-arms
            return
        super()._schedule()

    def pause(self) -> None:
        self._advance(self.env._now)
        self.paused = True
        self._schedule()

    def resume(self) -> None:
        self._last = self.env._now  # virtual time did not grow during the pause
        self.paused = False
        self._schedule()


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


class FastStep:
    """A CPU step of a thread pool running at full speed on its own timer; ``done`` is set
    (the shared processor's event) once it had to share a core or stop for a pause."""

    __slots__ = ("done", "end", "generation")

    def __init__(self, end: float, generation: int) -> None:
        self.end = end
        self.generation = generation
        self.done: Event | None = None


class ThreadCores:
    """The cores of a thread pool: egalitarian processor sharing over the runnable threads
    (each at ``min(1, cores / runnable)`` of a core), with a fast path.

    While no more threads are runnable than there are cores, each runs at full speed: a CPU
    step that starts then is one plain timer, which its thread waits on (the cost of the
    simple model's service time). The first step that would make them share a core (or a GC
    pause) moves every step running on its own timer into a :class:`PausableSharing` with the
    work it has left (``FastStep.done`` then says to wait for that processor's event
    instead). The steps in the shared processor stay there; a step starting while the
    runnable ones (on their own timers and shared) are fewer than the cores takes the fast
    path again: all of them run at full speed, the shared ones included (their processor
    has at most ``cores`` steps).
    """

    def __init__(self, env: simpy.Environment, cores: int,
                 core_busy: Callable[[int], None]) -> None:
        self.env = env
        self.cores = cores
        self._core_busy = core_busy
        self._fast: dict[FastStep, None] = {}  # insertion-ordered: moves are deterministic
        self.shared = PausableSharing(env, cores, self._count)
        self.generation = 0

    def __len__(self) -> int:
        """Runnable threads beyond the cores (the ready queue)."""
        return len(self.shared)

    def run(self, work: float) -> tuple[Event, FastStep | None]:
        """A CPU step of ``work`` seconds: the event to wait for and, on the fast path, the
        step (if its ``done`` is set once the event fires, wait for ``done`` too)."""
        shared = self.shared
        if not shared.paused and shared.n + len(self._fast) < self.cores:
            step = FastStep(self.env._now + work, self.generation)
            self._fast[step] = None
            self._core_busy(1)
            timer = Timeout(self.env, work)
            timer.callbacks.append(lambda _ev: self._fast_end(step))
            return timer, step
        self._share()
        return shared.join(work), None

    def _fast_end(self, step: FastStep) -> None:
        if step.done is None and step.generation == self.generation:
            del self._fast[step]
            self._core_busy(-1)

    def _share(self) -> None:
        """Move the steps running on their own timers into the shared processor."""
        if not self._fast:
            return
        now = self.env._now
        for step in self._fast:
            self._core_busy(-1)  # counted again by the shared processor
            step.done = self.shared.join(max(0.0, step.end - now))
        self._fast.clear()

    def _count(self, now: float, before: int, after: int) -> None:
        # one thread joins or leaves the runnable ones: a core changes only below saturation
        if after > before:
            if before < self.cores:
                self._core_busy(1)
        elif after < self.cores:
            self._core_busy(-1)

    def pause(self) -> None:
        self._share()
        self.shared.pause()

    def resume(self) -> None:
        self.shared.resume()

    def crash(self) -> None:
        self.generation += 1
        self._fast.clear()
        self.shared.crash()
