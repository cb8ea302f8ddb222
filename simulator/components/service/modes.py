"""What a service instance does beyond "wait in the queue, then work": leaving the queue
unserved, preemptive-resume priority and processor sharing.

Functions of a :class:`~simulator.components.service.service.Service` (its first argument),
so that the service's hot path stays one module and these modes stay out of it.

Preemptive resume: the requests doing their local work are :class:`Job`\\ s in
``Service._working``. An arrival of a more important class that finds every worker busy
takes the worker of the least important of them (the last started among equals): the victim's
elapsed work is deducted from what it has left, its completion timer is voided (a generation
number, as SimPy timeouts cannot be cancelled) and it re-enters the queue at the head of its
class; when a worker passes to it again it works for what it had left.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, cast

from simpy import Event, Timeout

from simulator.components.service.disciplines import Priority, Waiter
from simulator.messages import BAULKED, DROPPED, ERROR, EXPIRED, OK, REJECTED, RENEGED, Request

if TYPE_CHECKING:
    from simulator.components.service.service import Service

#: statuses of leaving a queue unserved -> name of the gauge counting them (``<name>_total``)
LEAVING = {DROPPED: "dropped", EXPIRED: "expired", RENEGED: "reneged", BAULKED: "baulked"}


class Job:
    """A request doing preemptible local work: what it has left and since when it runs."""

    __slots__ = ("done", "generation", "remaining", "req", "since")

    def __init__(self, req: Request, work: float) -> None:
        self.req = req
        self.remaining = work
        self.since = 0.0
        self.generation = 0
        self.done: Event | None = None


# ---- leaving the queue unserved -------------------------------------------------------
def left(svc: Service, req: Request, op: str, arrival: float, start: float,
          status: int) -> int:
    """Count and record a request that leaves without (more) service with ``status``."""
    svc.left_total[status] += 1
    svc._span(req, op, arrival, start, svc.env._now, status)
    return status


def renege(svc: Service, w: Waiter) -> None:
    """Patience ran out: leave the queue, unless already served, dropped or crashed."""
    if not w.triggered:
        svc._queue.remove(w)
        w.succeed(RENEGED)


# ---- preemptive resume ----------------------------------------------------------------
def void_jobs(svc: Service) -> None:
    """A crash: the jobs doing local work are gone (their timers must do nothing)."""
    for job in svc._working:
        job.generation += 1
    svc._working.clear()


def preempt(svc: Service, req: Request, now: float) -> bool:
    """Give ``req`` the worker of a less important request doing local work, if any."""
    victim = None
    for job in svc._working:
        if job.req.priority > req.priority and (
                victim is None or (job.req.priority, job.since)
                >= (victim.req.priority, victim.since)):
            victim = job
    if victim is None:
        return False
    svc._working.remove(victim)
    victim.remaining -= now - victim.since
    victim.generation += 1  # its completion timer no longer counts
    w = Waiter(svc.env, victim.req, now)
    queue = svc._queue
    assert isinstance(queue, Priority)
    queue.join_front(w)
    svc._busy_area += now  # the victim's busy time ends; the arrival's starts at once
    svc._queue_area -= now
    assert victim.done is not None
    victim.done.succeed(w)
    return True


def work_preemptible(svc: Service, req: Request, work: float, epoch: int
                      ) -> Generator[Event, Any, int]:
    """Do ``work`` seconds of local work, preempted and resumed as more important requests
    come; OK when done, ERROR after a crash, or the status of leaving the queue (a
    resumed request whose deadline passed while it waited again)."""
    env = svc.env
    job = Job(req, work)
    while True:
        job.since = env._now
        job.done = done = Event(env)
        generation = job.generation
        svc._working.append(job)

        def finish(_ev: Event, job: Job = job, generation: int = generation) -> None:
            if job.generation == generation and job.done is not None \
                    and not job.done.triggered:
                svc._working.remove(job)
                job.done.succeed()

        Timeout(env, job.remaining).callbacks.append(finish)
        if svc._crashable:  # a crash cuts the wait short (service.cut_short)
            racing = svc._racing
            racing[done] = None
            yield done
            if svc._epoch != epoch:
                return ERROR
            del racing[done]
        else:
            yield done
        waiter = done.value
        if waiter is None:
            return OK
        outcome = yield waiter  # back in the queue until a worker passes to it again
        if svc._epoch != epoch:
            return ERROR
        now = env._now
        svc._queue_area += now
        if outcome is not None:
            svc.leave_system(now)
            return cast(int, outcome)  # a leaving status
        svc._busy_area -= now


# ---- processor sharing ----------------------------------------------------------------
def share(svc: Service, now: float, before: int, after: int) -> None:
    """Busy and queue integrals of a shared processor as its population changes by one."""
    c = svc.workers
    if after > before:
        if before < c:
            svc.busy += 1
            svc._busy_area -= now
        else:
            svc._queue_area -= now
    elif after < c:
        svc.busy -= 1
        svc._busy_area += now
    else:
        svc._queue_area += now


def share_work(svc: Service, req: Request, op: str, arrival: float, work: float,
                epoch: int) -> Generator[Event, Any, int]:
    """Serve ``req`` under processor sharing, then run its downstream calls."""
    env = svc.env
    shared = svc._shared
    assert shared is not None
    if shared.n >= svc._queue_limit:
        svc.rejected_total += 1
        svc._span(req, op, arrival, math.nan, arrival, REJECTED)
        return REJECTED
    svc.in_system += 1
    svc._system_area -= arrival
    yield shared.join(work)
    if svc._epoch != epoch:
        return svc._fail(req, op, arrival, arrival)
    plan = svc._plans.get(op, svc._default_plan)
    status = OK
    if plan is not None and svc._hold:  # counts in the system until its calls end
        status = yield from run_watched(svc, req, op, plan, epoch)
        if status < 0:
            return svc._fail(req, op, arrival, arrival)
    svc.served_total += 1
    svc.leave_system(env._now)
    if plan is not None and not svc._hold:
        status = yield from run_watched(svc, req, op, plan, epoch)
        if status < 0:
            svc.served_total -= 1
            return svc._fail(req, op, arrival, arrival)
    svc._span(req, op, arrival, arrival, env._now, status)
    return status


def run_watched(svc: Service, req: Request, op: str, plan: Any, epoch: int
                 ) -> Generator[Event, Any, int]:
    """The calls of ``plan``, racing a crash when the instance may crash (-1: crashed)."""
    if not svc._crashable:
        return (yield from svc._run(req, op, plan))
    env = svc.env
    calls = env.process(svc._run(req, op, plan))
    racing = svc._racing
    racing[calls] = None  # a crash cuts the wait short (service.cut_short)
    yield calls
    if svc._epoch != epoch:
        return -1
    del racing[calls]
    return cast(int, calls.value)
