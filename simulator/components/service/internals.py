"""The runtime of a service's ``internals`` block: cores, threads or event loops, steps,
memory and GC pauses (the parameters and the modelling assumptions are in
:mod:`simulator.components.service.internals_params`).

The :class:`Internals` of an instance serves every request of it (the service's ``handle``
is bound to :meth:`Internals.handle`). It keeps the service's own counters so that the
generic summaries read it as any service: ``workers`` are the cores, ``busy`` the busy
cores (``busy_time_total``: core-seconds, so the summary's utilisation is the CPU's),
``queue_length`` the requests waiting for a thread, ``in_system`` the requests in the
instance. Its own gauges: ``ready_queue`` (CPU steps waiting for a core), ``threads`` and
``threads_busy`` (a thread pool), ``memory_bytes`` and ``gc_pause_time_total``.

Cores (:mod:`simulator.components.service.cores`): a thread pool's are one
:class:`~simulator.components.service.cores.ThreadCores` (egalitarian processor sharing, the
OS's time slicing), an event loop's one :class:`~simulator.components.service.cores.Loop` per
core (FIFO, run to completion). A GC pause freezes both.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable
from typing import TYPE_CHECKING, Any, cast

from simpy import Event, Timeout

from simulator.calls import AnyStep
from simulator.components.service.cores import Loop, ThreadCores
from simulator.components.service.internals_params import (
    CpuStep,
    IoStep,
    MemoryStep,
)
from simulator.components.service.internals_params import (
    Internals as InternalsSpec,
)
from simulator.components.service.modes import left
from simulator.components.steps import Plan, run_plan
from simulator.messages import BAULKED, CANCELLED, ERROR, EXPIRED, OK, Request

if TYPE_CHECKING:
    from simulator.components.service.service import Service

_CPU, _IO, _MEMORY, _CALL = range(4)
_Compiled = list[tuple[int, Any]]  # (step kind, sampler / bytes / plan)


class Internals:
    """The step-based model of one service instance (see the module)."""

    def __init__(self, svc: Service, spec: InternalsSpec) -> None:
        self.svc = svc
        self.env = svc.env
        self.spec = spec
        self.cores = spec.cores
        self.threads = spec.thread_count
        self.threads_busy = 0
        self.event_loop = spec.threading == "event_loop"
        self._loops = [Loop(self.env, self.core_busy) for _ in range(spec.cores)] \
            if self.event_loop else []
        self._next_loop = 0
        self._threads_cores = None if self.event_loop else ThreadCores(
            self.env, spec.cores, svc)
        self._plans: dict[str, _Compiled] = {}
        self._default: _Compiled | None = None
        self.memory = 0.0
        mem = spec.memory
        self._limit = math.inf if mem is None else mem.limit
        self._refuse = mem is not None and mem.on_limit == "refuse"
        self._slowdown = 1.0 if mem is None or mem.on_limit != "slow" else mem.slowdown
        self._gc_after = math.inf
        if spec.gc is not None and spec.gc.after_allocated is not None:
            self._gc_after = spec.gc.after_allocated
        self._allocated = 0.0  # bytes since the last pause (allocation-driven GC)
        self.paused = False
        self.gc_time = 0.0
        self._pause_started = 0.0

    # ---- building -------------------------------------------------------------------------
    def wire(self, sampler: Callable[[str, Any], Callable[[], float]],
             compile_steps: Callable[[list[AnyStep], str], Plan]) -> None:
        """Compile each operation's steps: samplers for cpu and io, plans for calls."""
        for op, steps in self.spec.steps.items():
            compiled: _Compiled = []
            for i, step in enumerate(steps):
                where = f"internals.steps.{op}.{i}"
                if isinstance(step, CpuStep):
                    compiled.append((_CPU, sampler(where, step.cpu)))
                elif isinstance(step, IoStep):
                    compiled.append((_IO, sampler(where, step.io)))
                elif isinstance(step, MemoryStep):
                    compiled.append((_MEMORY, step.memory))
                else:
                    compiled.append((_CALL, compile_steps([step], where)))
            if op == "*":
                self._default = compiled
            else:
                self._plans[op] = compiled

    def start(self) -> None:
        gc = self.spec.gc
        if gc is not None and gc.every is not None:
            self.env.process(self._scheduled_gc(gc.every, gc.pause))

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        yield "ready_queue", "", self.ready_queue
        if not self.event_loop:  # (an event loop has no threads to hold: one loop per core)
            yield "threads", "", lambda: self.threads
            yield "threads_busy", "", lambda: self.threads_busy
        yield "memory_bytes", "", lambda: self.memory
        yield "gc_pause_time_total", "", lambda: self.gc_time + (
            self.env.now - self._pause_started if self.paused else 0.0)

    def ready_queue(self) -> int:
        """CPU steps waiting for a core now."""
        if self._threads_cores is not None:
            return len(self._threads_cores)
        return sum(len(loop) for loop in self._loops)

    # ---- cores ----------------------------------------------------------------------------
    def core_busy(self, change: int) -> None:
        """A core starts (+1) or stops (-1) running a step: the service's busy integral."""
        svc = self.svc
        svc.busy += change
        svc._busy_area -= change * self.env._now

    def _pause(self) -> None:
        self.paused = True
        self._pause_started = self.env._now
        if self._threads_cores is not None:
            self._threads_cores.pause()
        for loop in self._loops:
            loop.pause()

    def _resume(self) -> None:
        self.paused = False
        self.gc_time += self.env._now - self._pause_started
        if self._threads_cores is not None:
            self._threads_cores.resume()
        for loop in self._loops:
            loop.resume()

    def _scheduled_gc(self, every: float, pause: float) -> Generator[Event, Any, None]:
        env = self.env
        wait = every  # the first pause at ``every``, then one starting every ``every``
        while True:
            yield Timeout(env, wait)
            wait = every - pause
            self._pause()
            yield Timeout(env, pause)
            self._resume()

    def _allocation_gc(self) -> Generator[Event, Any, None]:
        gc = self.spec.gc
        assert gc is not None
        self._pause()
        yield Timeout(self.env, gc.pause)
        self._resume()

    def _allocate(self, amount: float) -> None:
        self.memory += amount
        self._allocated += amount
        if self._allocated >= self._gc_after and not self.paused:
            self._allocated = 0.0
            self.env.process(self._allocation_gc())

    def crash(self) -> None:
        """Everything the instance holds is gone (the service closes its integrals)."""
        for loop in self._loops:
            loop.crash()
        if self._threads_cores is not None:
            self._threads_cores.crash()
        self.threads_busy = 0
        self.memory = 0.0

    # ---- a request ------------------------------------------------------------------------
    def handle(self, req: Request, op: str) -> Generator[Event, Any, int]:
        """Serve ``req``: take a thread (a thread pool), run the steps, reply."""
        svc = self.svc
        env = self.env
        arrival = env._now
        slow = 1.0
        if svc._faulted:
            if not (yield from svc._meet_faults()):
                return svc._fail(req, op, arrival, math.nan)
            arrival = env._now
            slow = svc._slow_factor
        epoch = svc._epoch
        if req.deadline <= arrival:
            return left(svc, req, op, arrival, math.nan, EXPIRED)
        if self._refuse and self.memory >= self._limit:
            return svc._reject(req, op, arrival)
        loop = None
        if self.event_loop:
            loop = self._loops[self._next_loop]
            self._next_loop = (self._next_loop + 1) % self.cores
        elif self.threads_busy >= self.threads:
            queue = svc._queue
            if len(queue) >= svc._queue_limit:
                return svc._reject(req, op, arrival)
            if len(queue) >= req.baulk_at:
                return left(svc, req, op, arrival, math.nan, BAULKED)
            outcome = yield from svc.enqueue(req, arrival)
            if svc._epoch != epoch:
                return svc._fail(req, op, arrival, math.nan)
            svc._queue_area += env._now
            if outcome is not None:  # left the queue unserved
                svc.leave_system(env._now)
                return left(svc, req, op, arrival, math.nan, outcome)
            # the thread passed to it from a request that ended (threads_busy unchanged)
        else:
            self.threads_busy += 1
            svc.in_system += 1
            svc._system_area -= arrival
        if loop is not None:
            svc.in_system += 1
            svc._system_area -= arrival
        start = env._now
        if req.cancelled:  # a hedged copy nobody waits for any more: as the simple model
            self._release(loop, start)
            svc.cancelled_total += 1
            svc.leave_system(start)
            svc._span(req, op, arrival, start, start, CANCELLED)
            return CANCELLED
        plan = self._plans.get(op, self._default)
        if plan is None:
            status = OK
        elif svc._crashable:  # a crash cuts it short; a crashed run stops at its next step
            run = env.process(self._steps(req, op, plan, loop, slow, epoch))
            racing = svc._racing
            racing[run] = None  # a crash cuts the wait short (service.cut_short)
            yield run
            if svc._epoch != epoch:
                return svc._fail(req, op, arrival, start)
            del racing[run]
            status = cast(int, run.value)
        else:
            status = yield from self._steps(req, op, plan, loop, slow, epoch)
        now = env._now
        self._release(loop, now)
        svc.served_total += 1
        svc.leave_system(now)
        svc._span(req, op, arrival, start, now, status)
        return status

    def _release(self, loop: Loop | None, now: float) -> None:
        """A thread pool's thread passes to the next waiting request, if any."""
        if loop is None:
            svc = self.svc
            nxt = svc._queue.pop(now) if svc._queue else None
            if nxt is not None:
                nxt.succeed()
            else:
                self.threads_busy -= 1

    def _steps(self, req: Request, op: str, plan: _Compiled, loop: Loop | None, slow: float,
               epoch: int) -> Generator[Event, Any, int]:
        env = self.env
        svc = self.svc
        held = 0.0
        status = OK
        for kind, what in plan:
            if kind == _CPU:
                work = what() * req.work * svc._inv_speed * slow
                if self.memory >= self._limit:
                    work *= self._slowdown
                if loop is not None:
                    yield loop.run(work)
                else:
                    assert self._threads_cores is not None
                    yield self._threads_cores.run(work)
            elif kind == _IO:
                yield Timeout(env, what())
            elif kind == _MEMORY:
                held += what
                self._allocate(what)
                continue
            else:
                status = yield from run_plan(env, req, op, what)
            if svc._epoch != epoch:
                return ERROR  # crashed meanwhile: the state it held is gone
            if status != OK:
                break
        self.memory -= held
        return status
