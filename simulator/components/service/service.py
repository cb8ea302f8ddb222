"""A service: a fleet of instances with workers, a bounded queue, and downstream calls."""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable
from functools import partial
from typing import Any, cast

from simpy import Event, Timeout

from simulator.calls import AnyStep, CallSpec
from simulator.components.base import (
    BuildContext,
    Component,
    FaultState,
    Handler,
    Target,
)
from simulator.components.edge import Bound, bind_call
from simulator.components.service.disciplines import Discipline, Waiter, discipline
from simulator.components.service.internals import Internals
from simulator.components.service.limiter import Algorithm, admitting
from simulator.components.service.modes import (
    LEAVING,
    Job,
    left,
    preempt,
    renege,
    share,
    share_work,
    void_jobs,
    work_preemptible,
)
from simulator.components.service.params import ServiceParams
from simulator.components.service.queueing import FifoQueue, PriorityQueue, ProcessorSharing
from simulator.components.service.scaling import ScalableService
from simulator.components.service.sharing import SharedProcessor
from simulator.components.steps import Plan, compile_plan
from simulator.kernel import Timer
from simulator.messages import BAULKED, CANCELLED, ERROR, EXPIRED, OK, REJECTED, Request
from simulator.tasks import Join

_Plan = Plan


def cut_short(held: dict[Event, None], _crashed: Event) -> None:
    """The crash event's callback: wake every hop still waiting on an event of ``held`` (a
    service-time timer, a calls process, a preemptible job's end) by moving its callbacks to a
    new event triggered now, in the order the hops began waiting, the order in which racing each
    hop's event against the crash event would wake them; the event itself still fires later,
    to nobody (as a lost race's event does)."""
    for ev in held:
        callbacks = ev.callbacks
        if callbacks:  # None once processed: that hop has woken already
            ev.callbacks = []
            wake = Event(ev.env)
            wake.callbacks = callbacks
            wake.succeed()


def _only_call(plan: _Plan) -> Bound | None:
    """The call of a plan of one sequential step (``_run`` of it is that call), else None."""
    if len(plan) == 1 and not isinstance(plan[0], list):
        return plan[0]
    return None


class Service(ScalableService, FaultState, Component):
    """One instance of a service: ``workers`` servers in front of one queue.

    Modelling assumptions: a request first waits for a worker (in its discipline's order), then
    the worker spends the service time on it (the draw times the request's ``work`` divided by the
    instance's ``speed``), then the request's downstream calls for its operation run in order.
    Service times are drawn on arrival from one stream shared by the group, so routing variants
    see the same work per request. A rejected request is answered at once.

    The waiting requests are ordered by the queue discipline of the ``queue`` block
    (:mod:`~simulator.components.service.disciplines`; FIFO by default); preemptive priority
    and processor sharing are in :mod:`~simulator.components.service.modes`. A request
    leaves unserved when its deadline has passed (at arrival or at dequeue: ``expired``), when
    CoDel drops it (``dropped``), when its patience runs out while it waits (``reneged``) or
    when it finds at least ``baulk_at`` waiting (``baulked``); each has a span and a counter
    (gauges ``dropped_total``, ``expired_total``, ``reneged_total``, ``baulked_total``,
    recorded when a ``queue`` block is given or some workload sets a deadline, patience or
    ``baulk_at``).

    Records one span per request served or rejected. Gauges: ``queue_length``, ``busy``
    (workers busy), ``in_system`` (waiting + holding a worker), and the cumulative
    ``busy_time_total``, ``queue_time_total``, ``system_time_total`` (integrals over time, from
    which utilisation, Lq and L over any window follow exactly), ``served_total``,
    ``rejected_total``, ``failed_total`` (failed by a fault), ``cancelled_total`` (hedged
    copies dropped when their turn came because another copy had already answered).

    With an ``admission`` block (:mod:`~simulator.components.service.limiter`) ``handle`` is
    wrapped: refused arrivals end ``rejected`` at once (gauge ``shed_total``); a concurrency
    limit adds the gauges ``concurrency_limit`` and ``in_flight`` and the rows of the
    ``concurrency_limits`` table.

    Faults: ``crash`` fails every request the instance holds, queued, in service or awaiting
    its downstream calls, at the instant of the crash (the callees carry on), then refuses or
    black-holes new ones until it recovers, empty; ``slow`` multiplies the service time of
    requests arriving meanwhile; ``error`` fails arriving requests at once with a probability;
    ``latency`` delays arriving requests before they queue.
    """

    Params = ServiceParams

    def __init__(self, group: str, index: int, params: ServiceParams, ctx: BuildContext) -> None:
        super().__init__(group, index, params, ctx)
        self.workers = params.workers
        spec = params.queue_spec()
        self._shared: SharedProcessor | None = None  # processor sharing: nothing waits
        if isinstance(spec, ProcessorSharing):
            self._shared = SharedProcessor(ctx.env, self.workers,
                                           lambda *change: share(self, *change))
            spec = FifoQueue(limit=spec.limit)  # a queue that stays empty
        self._queue: Discipline = discipline(spec)
        self._queue_limit = math.inf if spec.limit is None else spec.limit
        self._preemptive = isinstance(spec, PriorityQueue) and spec.preemptive
        self._working: list[Job] = []  # preemptive priority: requests doing local work
        self._leaving = ctx.request_limits or params.queue is not None
        self._inv_speed = 1.0 / params.speed_of(index)
        self._draw = ctx.sampler(group, "service_time", params.service_time)
        self._draw_by_op = {
            op: ctx.sampler(group, f"service_time:{op}", d)
            for op, d in params.service_time_by_op.items()
        }
        self._hold = params.hold_worker
        self._plans: dict[str, _Plan] = {}
        self._default_plan: _Plan | None = None
        self._compensations: dict[str, _Plan] = {}
        # the one call of a one-step plan, by operation (None: the op's plan is longer), run
        # without the frame of _run, which only forwards it when nothing compensates
        self._single: dict[str, Bound | None] = {}
        self._default_single: Bound | None = None
        self.busy = 0
        self.in_system = 0
        self.served_total = 0
        self.rejected_total = 0
        # integrals kept as "sum of -t at entry and +t at exit"; value at t adds count * t
        self._busy_area = 0.0
        self._queue_area = 0.0
        self._system_area = 0.0
        rec = ctx.recorder
        self._rec = rec if ctx.record_spans else None
        self._code = rec.instance_code(group, self.name)
        # faults: the hot path checks only ``_faulted`` and ``_crashable``
        self.failed_total = 0
        self.cancelled_total = 0
        self.left_total = dict.fromkeys(LEAVING, 0)  # dropped, expired, reneged, baulked
        self._init_fault_state(ctx, self.name)
        # what the hops of a crashable (or stoppable) instance wait on, in the order they began
        # waiting: a crash cuts them short (see cut_short) instead of every hop racing the
        # crash event, which cost an event a hop
        self._racing: dict[Event, None] = {}
        self._internals: Internals | None = None  # the opt-in step-based model
        if params.internals is not None:
            self._internals = Internals(self, params.internals)
            self.workers = params.internals.cores
            # it serves every request: bound here, a hop costs no extra generator
            self.handle = self._internals.handle  # type: ignore[method-assign]
        # admission (service/limiter.py): only an instance with the block wraps its handle
        self.shed_total = 0
        self.in_flight = 0  # admitted by a concurrency limit and not yet answered
        self.admission_start: Callable[[], None] | None = None
        self.limit_algorithm: Algorithm | None = None
        if params.admission is not None:
            self.handle = admitting(  # type: ignore[method-assign,assignment]
                self, self.handle, params.admission)

    def wire(self, resolve: Callable[[str], Target]) -> None:
        def bind(call: CallSpec) -> Bound:
            return bind_call(call, resolve(call.to), self.ctx, (self.group, self.name),
                             resolve=resolve)

        def compile_steps(steps: list[AnyStep], path: str) -> _Plan:
            return compile_plan(steps, bind, self.ctx, self.group, path)

        for op, steps in self.params.calls.items():
            if op == "*":
                self._default_plan = compile_steps(steps, "calls.*")
            else:
                self._plans[op] = compile_steps(steps, f"calls.{op}")
        self._compensations = {op: compile_steps(steps, f"on_failure.{op}")
                               for op, steps in self.params.on_failure.items()}
        if not self._compensations:
            self._single = {op: _only_call(plan) for op, plan in self._plans.items()}
            if self._default_plan is not None:
                self._default_single = _only_call(self._default_plan)
        if self._internals is not None:
            self._internals.wire(partial(self.ctx.sampler, self.group), compile_steps)

    def gauges(self) -> Iterable[tuple[str, str, Callable[[], float]]]:
        env = self.env
        yield "workers", "", lambda: self.workers
        yield "queue_length", "", lambda: self.queue_length
        yield "busy", "", lambda: self.busy
        yield "in_system", "", lambda: self.in_system
        yield "busy_time_total", "", lambda: self._busy_area + self.busy * env.now
        yield "queue_time_total", "", lambda: self._queue_area + self.queue_length * env.now
        yield "system_time_total", "", lambda: self._system_area + self.in_system * env.now
        yield "served_total", "", lambda: self.served_total
        yield "rejected_total", "", lambda: self.rejected_total
        yield "failed_total", "", lambda: self.failed_total
        yield "cancelled_total", "", lambda: self.cancelled_total
        if self._leaving:  # only where requests can leave a queue unserved (same tables else)
            for code, count in LEAVING.items():
                yield f"{count}_total", "", partial(self.left_total.__getitem__, code)
        if self._internals is not None:
            yield from self._internals.gauges()
        if self.params.admission is not None:
            yield "shed_total", "", lambda: self.shed_total
        if self.limit_algorithm is not None:
            algo = self.limit_algorithm
            yield "concurrency_limit", "", lambda: algo.limit
            yield "in_flight", "", lambda: self.in_flight

    def start(self) -> None:
        if self.admission_start is not None:
            self.admission_start()
        if self._internals is not None:
            self._internals.start()

    @property
    def queue_length(self) -> int:
        """Requests waiting for a worker now (beyond the capacity, with processor sharing)."""
        return len(self._queue) if self._shared is None else len(self._shared)

    def enqueue(self, req: Request, arrival: float) -> Generator[Event, Any, Any]:
        """Wait in the queue for a worker (a thread, with internals): the waiter joins, its
        patience starts, the queue's and the system's time areas open; returns the waiter's
        outcome (None: a worker was passed to it; a status: it left unserved). A crash wakes
        it too: the caller compares epochs."""
        w = Waiter(self.env, req, arrival)
        self._queue.join(w)
        if req.patience < math.inf:
            Timeout(self.env, req.patience).callbacks.append(lambda _ev: renege(self, w))
        self._queue_area -= arrival
        self.in_system += 1
        self._system_area -= arrival
        return (yield w)

    def handle(self, req: Request, op: str) -> Handler:
        env = self.env
        arrival = env._now
        draw = self._draw_by_op.get(op, self._draw) if self._draw_by_op else self._draw
        work = draw() * req.work * self._inv_speed
        if self._faulted:
            if not (yield from self._meet_faults()):
                return self._fail(req, op, arrival, math.nan)
            arrival = env._now
            work *= self._slow_factor
        epoch = self._epoch
        if req.deadline <= arrival:  # nobody waits for the answer any more (gRPC: not started)
            return left(self, req, op, arrival, math.nan, EXPIRED)
        if self._shared is not None:
            return (yield from share_work(self, req, op, arrival, work, epoch))
        if self.busy < self.workers:
            self.busy += 1
            start = arrival
            self.in_system += 1
            self._system_area -= arrival
        elif (queued := len(self._queue)) >= self._queue_limit:
            return self._reject(req, op, arrival)
        elif queued >= req.baulk_at:
            return left(self, req, op, arrival, math.nan, BAULKED)
        elif self._preemptive and preempt(self, req, arrival):
            start = arrival  # the worker of a less important request passed to this one
            self.in_system += 1
            self._system_area -= arrival
        else:
            # enqueue(), inlined: the wait passes through one generator frame fewer
            w = Waiter(env, req, arrival)
            self._queue.join(w)
            if req.patience < math.inf:
                Timeout(env, req.patience).callbacks.append(lambda _ev: renege(self, w))
            self._queue_area -= arrival
            self.in_system += 1
            self._system_area -= arrival
            outcome = yield w
            if self._epoch != epoch:  # woken by a crash, not by a free worker
                return self._fail(req, op, arrival, math.nan)
            start = env._now
            self._queue_area += start
            if outcome is not None:  # left the queue unserved (dropped, expired, reneged)
                self.leave_system(start)
                return left(self, req, op, arrival, math.nan, outcome)
        self._busy_area -= start
        if req.cancelled:
            return self._drop_cancelled(req, op, arrival, start)
        crashable = self._crashable
        if self._preemptive:
            status = yield from work_preemptible(self, req, work, epoch)
            if status != OK:
                return self._fail(req, op, arrival, start) if status == ERROR else \
                    left(self, req, op, arrival, start, status)
        elif crashable:  # only instances that may crash or stop are found by a crash
            timer = Timeout(env, work)
            racing = self._racing
            racing[timer] = None
            yield timer
            if self._epoch != epoch:
                return self._fail(req, op, arrival, start)
            del racing[timer]
        else:
            yield Timer(env, work)
        plan = self._plans.get(op, self._default_plan)
        if plan is None:
            status = OK
            self._release()
        elif crashable:
            if not self._hold:
                self._release()
            calls = env.process(self._run(req, op, plan))
            racing = self._racing
            racing[calls] = None
            yield calls
            if self._epoch != epoch:  # the reply has nowhere to go; the callees carry on
                if not self._hold:
                    self.served_total -= 1  # released early, but it ends failed, not served
                return self._fail(req, op, arrival, start)
            del racing[calls]
            status = cast(int, calls.value)
            if self._hold:
                self._release()
        else:
            single = self._single.get(op, self._default_single)
            if self._hold:
                status = yield from (self._run(req, op, plan) if single is None
                                     else single(req, op))
                self._release()
            else:
                self._release()
                status = yield from (self._run(req, op, plan) if single is None
                                     else single(req, op))
        rec = self._rec
        if rec is not None:
            rec.span_id.append(req.id)
            rec.span_instance.append(self._code)
            rec.span_op.append(op)
            rec.span_arrival.append(arrival)
            rec.span_start.append(start)
            rec.span_end.append(env._now)
            rec.span_status.append(status)
        return status

    def _span(self, req: Request, op: str, arrival: float, start: float, end: float,
              status: int) -> None:
        if self._rec is not None:
            self._rec.span(req.id, self._code, op, arrival, start, end, status)

    def _reject(self, req: Request, op: str, arrival: float) -> int:
        self.rejected_total += 1
        self._span(req, op, arrival, math.nan, arrival, REJECTED)
        return REJECTED

    def _drop_cancelled(self, req: Request, op: str, arrival: float, start: float) -> int:
        """A hedged copy nobody waits for any more: hand the worker on without working."""
        self._release()
        self.served_total -= 1  # released, but nothing was served
        self.cancelled_total += 1
        self._span(req, op, arrival, start, start, CANCELLED)
        return CANCELLED

    def _fail(self, req: Request, op: str, arrival: float, start: float) -> int:
        self.failed_total += 1
        self._span(req, op, arrival, start, self.env._now, ERROR)
        return ERROR

    # ---- faults -------------------------------------------------------------------------
    def prepare_faults(self, kinds: set[str]) -> None:
        self._crashable = "crash" in kinds

    def crash(self, black_hole: bool) -> None:
        now = self.env._now
        # close the integrals of everything the crash drops
        self._busy_area += self.busy * now
        self._queue_area += self.queue_length * now
        self._system_area += self.in_system * now
        self.busy = 0
        self.in_system = 0
        void_jobs(self)
        if self._internals is not None:
            self._internals.crash()
        # (``is not None``: a shared processor's len() is its queue, 0 below its capacity)
        shared = self._shared.crash() if self._shared is not None else ()
        for ev in [*self._queue.drain(), *shared]:
            ev.succeed()
        if self._racing:  # woken when the crash event is, as a race with it would be
            self._crash_event.callbacks.append(partial(cut_short, self._racing))
            self._racing = {}
        self._go_down(black_hole)

    def recover(self) -> None:
        self.up = True
        self._update_faulted()

    def _release(self) -> None:
        now = self.env._now
        self._busy_area += now
        self._system_area += now
        self.in_system -= 1
        self.served_total += 1
        nxt = self._queue.pop(now) if self._queue else None
        if nxt is not None:
            nxt.succeed()
        else:
            self.busy -= 1
            if self._on_idle is not None and not self.in_system:  # a drain waits for this
                self._idle()

    def leave_system(self, now: float) -> None:
        """A request that holds no worker leaves unserved (or, shared, done) at ``now``."""
        self.in_system -= 1
        self._system_area += now
        if self._on_idle is not None and not self.in_system:  # a drain waits for this
            self._idle()

    def _run(self, req: Request, op: str, plan: _Plan) -> Generator[Event, Any, int]:
        env = self.env
        for step in plan:
            if not isinstance(step, list):
                status = yield from step(req, op)
            else:  # branches run concurrently; the step ends with the slowest
                join = Join(env, [call(req, op) for call in step])
                statuses: list[int] = yield join.event
                status = next((s for s in statuses if s != OK), OK)
            if status != OK:
                compensation = self._compensations.get(op, self._compensations.get("*"))
                if compensation is not None:
                    yield from self._run_all(req, op, compensation)
                return status
        return OK

    def _run_all(self, req: Request, op: str, plan: _Plan) -> Generator[Event, Any, None]:
        """Run every step whatever its outcome (compensations must not stop half-way)."""
        env = self.env
        for step in plan:
            if not isinstance(step, list):
                yield from step(req, op)
            else:
                yield Join(env, [call(req, op) for call in step]).event
